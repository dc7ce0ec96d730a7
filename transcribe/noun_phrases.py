"""Noun phrases in a transcript's words, without a tagger: what a point can be linked to.

The chunker is a documented heuristic, driven by one table per language
(transcribe/clean/languages/phrases/<code>.toml):

- a *phrase* is a maximal run of content words inside one clause: words that are neither function
  words, determiners, numbers nor listed verbs (the table's `stopwords`), with no clause punctuation
  (, . ; : ! ?) between them. "three red boats on a calm lake" has the phrases "red boats" and "calm lake";
- a *label mention* (point mode) is a phrase for that label: the label's words in order, each one
  singular or plural ("garden chair", "garden chairs", "gardenchairs"), case-insensitive, even where
  a word of it is a stopword. A run holding a mention is cut there: the words before it go with the
  mention ("red garden chairs" is one phrase for "garden chair"), the words after it start a phrase;
- the *lead* of a phrase is the run of determiners, numbers and `lead_words` right before it in the
  same clause ("three of the", "a pair of"); its count is the number it says ("three", "3", "a pair",
  "a dozen", "twenty five"), read by transcribe/clean/numbers.py, or 0 for "no", "none", "zero", or
  for "none" said right after the phrase ("chairs: none"). "a" and "the" say no count.

A language without a table has no stopwords: each clause is one phrase, and only digits are counts.
English spelled numbers are read by numbers.py ("twenty five", "two dozen"); another language's table
lists its spelled counts as whole words (`number_words`: "tres" = 3, "zwölf" = 12), enough for the
counts people point at.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from itertools import product
from pathlib import Path
from typing import Any

from transcribe.clean.languages import base_language
from transcribe.clean.numbers import COUNT_WORDS, NUMBER_WORDS, find_numbers

TABLE_DIR = Path(__file__).parent / "clean" / "languages" / "phrases"
# Stripped from both ends of a word; a word that ends in CLAUSE_END ends its clause.
PUNCTUATION = string.punctuation + "“”‘’«»¿¡…—–·"
CLAUSE_END = frozenset(',.;:!?…—–)"”»')


@dataclass(frozen=True)
class PhraseTable:
    code: str
    stop: frozenset[str]  # never in a phrase: stopwords, determiners, lead words, numbers
    lead: frozenset[str]  # may stand before a phrase and be read for its count
    zero_words: frozenset[str]  # a lead holding one of these counts 0
    zero_after: frozenset[str]  # said right after a phrase, these count 0
    spelled_numbers: bool  # spelled numbers are read by numbers.py (English)
    plural_suffixes: tuple[str, ...]
    plural_endings: tuple[tuple[str, str], ...]
    irregular_plurals: dict[str, tuple[str, ...]]
    number_words: dict[str, int] = field(default_factory=dict)  # spelled counts, one word each


def _strings(code: str, data: dict[str, Any], key: str) -> frozenset[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(word, str) and word.strip() for word in value):
        raise ValueError(f"phrase table {code}.toml: {key} must be a list of non-empty strings")
    return frozenset(word.strip().lower() for word in value)


def _table(code: str, data: dict[str, Any]) -> PhraseTable:
    determiners = _strings(code, data, "determiners")
    lead_words = _strings(code, data, "lead_words")
    zero_words = _strings(code, data, "zero_words")
    spelled = bool(data.get("spelled_numbers", False))
    numbers = frozenset(NUMBER_WORDS) | frozenset(COUNT_WORDS) if spelled else frozenset()
    number_words = _number_words(code, data)
    lead = determiners | lead_words | zero_words | numbers | frozenset(number_words)
    endings = data.get("plural_endings", [])
    irregular = data.get("irregular_plurals", {})
    return PhraseTable(
        code=code,
        stop=_strings(code, data, "stopwords") | lead,
        lead=lead,
        zero_words=zero_words,
        zero_after=_strings(code, data, "zero_after"),
        spelled_numbers=spelled,
        plural_suffixes=tuple(sorted(_strings(code, data, "plural_suffixes"))),
        plural_endings=tuple((str(a).lower(), str(b).lower()) for a, b in endings),
        irregular_plurals={str(k).lower(): tuple(str(v).lower() for v in vs) for k, vs in irregular.items()},
        number_words=number_words,
    )


def _number_words(code: str, data: dict[str, Any]) -> dict[str, int]:
    value = data.get("number_words", {})
    if not isinstance(value, dict) or not all(
        isinstance(word, str) and word.strip() and isinstance(n, int) and n >= 0 for word, n in value.items()
    ):
        raise ValueError(f"phrase table {code}.toml: number_words must map words to counts (whole numbers)")
    return {word.strip().lower(): n for word, n in value.items()}


# No table: no stopwords (a clause is a phrase), "s"/"es" plurals, digits as the only counts.
FALLBACK = PhraseTable("", frozenset(), frozenset(), frozenset(), frozenset(), False, ("es", "s"), (), {})


@cache
def phrase_table(language: str | None) -> PhraseTable:
    """The chunker's table for a language code ("en-GB" reads en.toml), or FALLBACK."""
    code = base_language(language)
    path = TABLE_DIR / f"{code}.toml"
    if not code.isalpha() or not path.is_file():
        return FALLBACK
    return _table(code, tomllib.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Tokens:
    """A transcript's words as the chunker sees them, one entry per word (same indices)."""

    text: list[str]  # the word without surrounding punctuation, as spoken
    norm: list[str]  # lower case, curly apostrophes straight; "" for a word of punctuation only
    ends_clause: list[bool]  # punctuation after this word (or none of it is a word)


def tokenize(words: Iterable[str]) -> Tokens:
    text: list[str] = []
    norm: list[str] = []
    ends: list[bool] = []
    for word in words:
        bare, lower, end = _token(word)
        text.append(bare)
        norm.append(lower)
        ends.append(end)
    return Tokens(text, norm, ends)


@lru_cache(maxsize=1 << 16)  # a describer's vocabulary is small: most words are read once per process
def _token(word: str) -> tuple[str, str, bool]:
    raw = word.strip()
    bare = raw.strip(PUNCTUATION)
    return bare, bare.lower().replace("’", "'"), not bare or raw[-1] in CLAUSE_END


def is_digits(token: str) -> bool:
    """ "3", "12", "1,000", "2.5": a number written in digits."""
    return bool(token) and token[0].isdigit() and token.replace(",", "").replace(".", "", 1).isdigit()


def plural_forms(word: str, table: PhraseTable) -> set[str]:
    """A word's singular and plural forms, either way ("chair" <-> "chairs", "person" -> "people")."""
    forms = {word}
    forms.update(word + suffix for suffix in table.plural_suffixes)
    forms.update(word[: -len(one)] + many for one, many in table.plural_endings if word.endswith(one))
    forms.update(table.irregular_plurals.get(word, ()))
    # A label written in the plural ("people", "chairs") also matches its singular.
    forms.update(one for one, many in table.irregular_plurals.items() if word in many)
    forms.update(word[: -len(suffix)] for suffix in table.plural_suffixes if word.endswith(suffix))
    return forms


@dataclass(frozen=True)
class LabelMatcher:
    """Every spoken form of a set of labels, keyed by its first word; the longest form is tried first."""

    forms: dict[str, list[tuple[tuple[str, ...], str]]]


@cache
def label_matcher(labels: tuple[str, ...], language: str | None) -> LabelMatcher:
    table = phrase_table(language)
    forms: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for label in labels:
        words = tuple(tokenize(label.split()).norm)
        words = tuple(w for w in words if w)
        if not words:
            continue
        # Any word may carry the plural: English marks the last ("deck chairs"), Spanish and French
        # the first ("sillas de jardín"); the few extra forms this accepts are harmless.
        for spoken in product(*(sorted(plural_forms(word, table)) for word in words)):
            variants = {spoken}
            if len(spoken) > 1:  # "garden chairs" may be heard as "gardenchairs" or "garden-chairs"
                variants |= {("".join(spoken),), ("-".join(spoken),)}
            for variant in variants:
                forms.setdefault(variant[0], []).append((variant, label))
    for options in forms.values():
        options.sort(key=lambda option: -len(option[0]))
    return LabelMatcher(forms)


def label_mentions(tokens: Tokens, matcher: LabelMatcher) -> list[tuple[int, int, str]]:
    """(first word, last word, label) of each label mention, left to right, never overlapping."""
    found: list[tuple[int, int, str]] = []
    norm, ends = tokens.norm, tokens.ends_clause
    i, count = 0, len(norm)
    while i < count:
        options = matcher.forms.get(norm[i])
        matched = None
        if options:
            for sequence, label in options:
                last = i + len(sequence) - 1
                if (
                    last < count
                    and tuple(norm[i : last + 1]) == sequence
                    and not any(ends[i:last])  # a mention stays inside its clause
                ):
                    matched = (i, last, label)
                    break
        if matched:
            found.append(matched)
            i = matched[1] + 1
        else:
            i += 1
    return found


@dataclass(frozen=True)
class Span:
    start: int  # first word
    end: int  # last word (inclusive)
    label: str | None
    spoken: int | float | None  # the count said with it, if any


def chunk(tokens: Tokens, table: PhraseTable, mentions: Sequence[tuple[int, int, str]] = ()) -> list[Span]:
    """The phrases of a transcript, in order (see the module's docstring for the rule)."""
    norm, ends = tokens.norm, tokens.ends_clause
    stop = table.stop
    content = [bool(word) and word not in stop and not is_digits(word) for word in norm]
    mention_at: dict[int, tuple[int, str]] = {}
    for first, last, label in mentions:
        mention_at[first] = (last, label)
        for k in range(first, last + 1):
            content[k] = True
    spans: list[Span] = []
    count = len(norm)
    i = 0
    while i < count:
        if not content[i]:
            i += 1
            continue
        start = i  # a run: content words up to a non-content word or a clause end
        while True:
            if i in mention_at:
                last, label = mention_at[i]
                spans.append(_span(tokens, table, start, last, label))
                i = last + 1
                start = i
                if i >= count or not content[i] or ends[last]:
                    break
                continue
            if ends[i] or i + 1 >= count or not content[i + 1]:
                spans.append(_span(tokens, table, start, i, None))
                i += 1
                break
            i += 1
    return spans


def _span(tokens: Tokens, table: PhraseTable, start: int, end: int, label: str | None) -> Span:
    return Span(start, end, label, spoken_count(tokens, table, start, end))


def spoken_count(tokens: Tokens, table: PhraseTable, start: int, end: int) -> int | float | None:
    """The count said before the phrase at [start, end] (or "none" right after it), or None."""
    norm, ends = tokens.norm, tokens.ends_clause
    j = start - 1
    while j >= 0 and not ends[j] and (norm[j] in table.lead or is_digits(norm[j])):
        j -= 1
    lead = norm[j + 1 : start]
    value = _lead_value(lead, table) if lead else None
    if value is None and end + 1 < len(norm) and norm[end + 1] in table.zero_after:
        return 0
    return value


def _lead_value(lead: list[str], table: PhraseTable) -> int | float | None:
    for k in range(len(lead) - 1, -1, -1):  # the count nearest the phrase wins: "two of the three boats"
        word = lead[k]
        if is_digits(word):
            return _number(float(word.replace(",", "")))
        if table.spelled_numbers and word in COUNT_WORDS:
            before = _spelled_before(lead, k)  # "two dozen"
            return COUNT_WORDS[word] * (before if before is not None else 1)
        if table.spelled_numbers and word in NUMBER_WORDS:
            return _spelled_before(lead, k + 1)
        if word in table.number_words:
            return table.number_words[word]
        if word in table.zero_words:
            return 0
    return None


def _spelled_before(lead: list[str], stop: int) -> int | float | None:
    """The spelled number ending just before lead[stop] ("twenty five", "a hundred"), if any."""
    text = " ".join(lead[:stop])
    mentions = find_numbers(text)
    if mentions and mentions[-1].end == len(text):
        return _number(mentions[-1].value)
    return None


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
