"""The processors the worker drives, one per queue stage, and everything that reads or writes rows for them.

The rule: code that reads or writes database rows for the worker lives here; transcribe/clean/ is pure
text in, text out, and transcribe/engines/ is audio in, text out.

- base.py: the `StageProcessor` and `Sweep` protocols the worker loop drives, `PermanentError`
- factory.py: builds the processors named by `--stages` from settings
- transcribe.py: `TranscribeProcessor`, the "transcribe" stage (WAV in, Transcript row out)
- clean.py: `CleanProcessor`, the "clean" stage (Transcript in, Caption row out)
- merge.py: `MergeSweep`, the clean processor's idle-time sweep that writes merged captions per image
- captions.py: Caption rows from cleaner results (provenance, faithfulness flags, dedupe keys)
- pointing.py: `align_recording`, a narrate or point take's alignment (words to trace, points to
  phrases, spoken counts) upserted with its `count_mismatch` flag; the transcribe stage calls it
"""

from transcribe.stages.base import PermanentError, StageProcessor, Sweep, describe_error

__all__ = ["PermanentError", "StageProcessor", "Sweep", "describe_error"]
