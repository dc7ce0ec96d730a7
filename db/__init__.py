"""voicecap's storage layer: settings, models, sessions, migrations, the blob store and the work queue."""
