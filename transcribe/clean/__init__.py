"""Transcript cleaning: spoken transcripts become dense, faithful written captions.

`load_cleaner(settings)` picks the cleaner named by settings.cleaner: "rules" (offline, instant,
deterministic) or "llm" (any OpenAI-compatible chat endpoint); `faithfulness.check` flags captions that
say what the speaker did not. Pure text in, text out: the clean processor that reads transcripts and
writes Caption rows for the worker is transcribe/stages/clean.py.
"""

from __future__ import annotations

from db.settings import Settings, get_settings
from transcribe.clean.base import Cleaner, CleanError, CleanResult, PermanentCleanError
from transcribe.clean.faithfulness import FaithfulnessReport, check
from transcribe.clean.rules import RulesCleaner, clean_text

__all__ = [
    "CleanError",
    "CleanResult",
    "Cleaner",
    "FaithfulnessReport",
    "PermanentCleanError",
    "RulesCleaner",
    "check",
    "clean_text",
    "load_cleaner",
]


def load_cleaner(settings: Settings | None = None) -> Cleaner:
    settings = settings or get_settings()
    if settings.cleaner == "rules":
        return RulesCleaner()
    if settings.cleaner == "llm":
        from transcribe.clean.llm import LLMCleaner  # imports openai; only when asked for

        return LLMCleaner(settings)
    raise ValueError(f"unknown cleaner {settings.cleaner!r}; known: rules, llm")
