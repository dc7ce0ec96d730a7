"""Per-language tables of the rules cleaner: one TOML file per language, named by its ISO 639-1 code.

A table lists the language's hesitation sounds, its discourse markers and the words it may repeat on
purpose (see es.toml); this module turns each list into the patterns the cleaner runs. English needs
no table: its passes (self-corrections, "like", spelled numbers) are written out in rules.py.
A language with neither a table nor English's passes is only tidied (spaces and punctuation).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE_DIR = Path(__file__).parent
_I = re.IGNORECASE
COMMA = "[,،]"  # Latin and Arabic commas
SENTENCE_END = "[.?!؟]"
_NOT_WORD_AFTER = r"(?![\w'’])"
_NOT_WORD_BEFORE = r"(?<![\w'’])"


@dataclass(frozen=True)
class LanguageTable:
    code: str
    name: str
    hesitations: tuple[str, ...]
    markers: tuple[str, ...]
    keep_repeats: tuple[str, ...]
    hesitation_in_commas: re.Pattern[str]  # ", eh," -> "" (the commas go with it)
    hesitation: re.Pattern[str]  # "eh" anywhere, as a whole word
    marker_in_commas: re.Pattern[str]  # ", o sea," or ", quoi." -> " "
    marker_question: re.Pattern[str]  # ", ¿sabes? Hay" -> ". Hay"; ", ¿sabes?, en" -> " en"
    marker_at_start: re.Pattern[str]  # ". Bueno, hay" -> ". hay"
    repeat: re.Pattern[str]  # one to three words said again, except keep_repeats


def _alternation(words: tuple[str, ...]) -> str:
    # Longest first, so "o sea que" wins over "o sea"; spaces match any run of spaces.
    ordered = sorted(set(words), key=len, reverse=True)
    return "|".join(re.escape(word).replace(r"\ ", " +") for word in ordered)


def _words(code: str, data: dict[str, object], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(word, str) and word.strip() for word in value):
        raise ValueError(f"language table {code}.toml: {key} must be a list of non-empty strings")
    return tuple(word.strip() for word in value)


def _compile(code: str, data: dict[str, object]) -> LanguageTable:
    hesitations = _words(code, data, "hesitations")
    markers = _words(code, data, "markers")
    keep = _words(code, data, "keep_repeats")
    never = r"(?!)"  # an empty list matches nothing
    hes = _alternation(hesitations) or never
    mark = _alternation(markers) or never
    word = r"[^\W\d]\w*+(?:['’]\w++)?+"
    keep_guard = rf"(?!(?:{_alternation(keep)}){_NOT_WORD_AFTER})" if keep else ""
    return LanguageTable(
        code=code,
        name=str(data.get("name", code)),
        hesitations=hesitations,
        markers=markers,
        keep_repeats=keep,
        hesitation_in_commas=re.compile(rf"{COMMA} ?(?:{hes}){_NOT_WORD_AFTER}(?: ?{COMMA})?", _I),
        hesitation=re.compile(rf"{_NOT_WORD_BEFORE}(?:{hes}){_NOT_WORD_AFTER}{COMMA}? ?", _I),
        marker_in_commas=re.compile(
            rf"{COMMA} ?(?:{mark}){_NOT_WORD_AFTER} ?(?:{COMMA}|(?={SENTENCE_END}|$))", _I
        ),
        marker_question=re.compile(rf"{COMMA} ?¿(?:{mark})\?(?: ?{COMMA})?", _I),
        marker_at_start=re.compile(rf"({SENTENCE_END} )(?:{mark}){_NOT_WORD_AFTER} ?{COMMA} ?", _I),
        repeat=re.compile(rf"(?<!\w){keep_guard}({word}(?: {word}){{0,2}})(?:{COMMA}? \1(?!\w))+", _I),
    )


def base_language(language: str | None) -> str:
    """ "es-MX" -> "es"; empty means English (the default of projects and of older transcripts)."""
    return (language or "en").replace("_", "-").split("-")[0].lower()


@cache
def language_table(language: str | None) -> LanguageTable | None:
    """The table for a language code, or None when no table ships for it."""
    code = base_language(language)
    path = TABLE_DIR / f"{code}.toml"
    if not re.fullmatch(r"[a-z]{2,3}", code) or not path.is_file():
        return None
    return _compile(code, tomllib.loads(path.read_text(encoding="utf-8")))


# English names, for prompts that ask a model to write "in <language>" (the LLM cleaner).
LANGUAGE_NAMES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French", "hi": "Hindi",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese",
    "ru": "Russian", "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
}  # fmt: skip


def language_name(language: str | None) -> str:
    """ "es-MX" -> "Spanish"; a table's own name, else the code itself for a language we do not know."""
    code = base_language(language)
    table = language_table(code)
    return LANGUAGE_NAMES.get(code) or (table.name if table else code)


def shipped_languages() -> list[str]:
    return sorted(path.stem for path in TABLE_DIR.glob("*.toml"))
