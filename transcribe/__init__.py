"""Speech-to-text for voicecap: audio decoding, Whisper engines, transcript checks and the worker."""
