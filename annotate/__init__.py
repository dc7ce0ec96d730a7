"""voicecap's domain services, HTTP API and CLI."""
