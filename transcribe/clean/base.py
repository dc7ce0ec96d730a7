"""The Cleaner interface: a spoken transcript in, a written caption out, with its provenance.

Like Label Studio's ML backend `predict`, the interface is tiny so any cleaner plugs in by name
(settings.cleaner). A batch call returns one result or one exception per input, in order, so one
bad transcript never sinks its neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CleanResult:
    text: str
    cleaner: str  # "rules" | "llm"
    model: str = ""
    prompt_version: str = ""
    # Every token spent on this caption, retries of malformed answers included (they cost money too).
    prompt_tokens: int = 0
    completion_tokens: int = 0


class CleanError(Exception):
    """A cleaning attempt failed; the queue retries it later (up to settings.max_attempts)."""

    permanent = False

    def __init__(self, message: str, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


class PermanentCleanError(CleanError):
    """Retrying cannot help (bad credentials, unknown model, empty transcript): fail the row at once."""

    permanent = True


class Cleaner(Protocol):
    name: str
    model: str
    prompt_version: str
    merge_prompt_version: str  # "" when the cleaner cannot merge
    can_merge: bool  # whether merge_many writes one caption from several transcripts
    can_translate: bool  # whether it writes a caption in another language than the one spoken

    def clean(self, transcript: str) -> CleanResult: ...

    def clean_many(
        self,
        transcripts: Sequence[str],
        languages: Sequence[str | None] | None = None,
        caption_languages: Sequence[str | None] | None = None,
    ) -> list[CleanResult | Exception]:
        """One result per transcript; `languages` (a code or None each, the language spoken) picks
        filler tables; the caption is written in its `caption_languages` entry where one is given and
        the cleaner can translate, else in the language spoken (English where none is given)."""
        ...

    def merge_many(
        self,
        groups: Sequence[Sequence[str]],
        languages: Sequence[str | None] | None = None,
        caption_languages: Sequence[str | None] | None = None,
    ) -> list[CleanResult | Exception]: ...

    def close(self) -> None: ...
