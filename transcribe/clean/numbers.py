"""Spoken numbers: find runs of number words ("twenty-five", "two thousand and five"), read their
value, and write 10 and above as digits (house style: one to nine in words, 10+ in digits).

Shared by the rules cleaner (normalising) and the faithfulness guard (comparing counts whatever
their spelling), so "four" in a transcript supports "4" in a caption and the reverse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9,
}  # fmt: skip
TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # fmt: skip
SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
NUMBER_WORDS = {**UNITS, **TEENS, **TENS, "hundred": 100, **SCALES}
# Words that name a count without being a numeral; they support a digit in a caption.
COUNT_WORDS = {"pair": 2, "couple": 2, "dozen": 12, "single": 1, "both": 2, "twice": 2}


def word_alternation(words: Iterable[str]) -> str:
    """A regex matching any of `words`, written as a trie ("t(?:en|wo|hree…)"): Python's re tries
    alternatives one by one, so sharing prefixes makes a long word list about twice as fast."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def render(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + render(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return render(trie)


_WORD = word_alternation(NUMBER_WORDS)
# A run: number words joined by spaces/hyphens, with "and" allowed only between number words.
# An optional leading "a " counts when a scale follows ("a hundred", "a thousand").
# The leading lookahead lets re jump to candidate letters instead of trying every position.
NUMBER_RUN = re.compile(
    rf"(?=[abefhmnostzABEFHMNOSTZ])\b(?:a\s+(?=(?:hundred|thousand|million)\b))?(?:{_WORD})\b(?:(?:[\s-]+|\s+and\s+)(?:{_WORD})\b)*",
    re.IGNORECASE,
)
DIGITS = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?![\d,]*\d)|(?<![\w.])\d+(?:\.\d+)?(?!\w)")


def parse_number_words(run: str) -> int | None:
    """The value of a run of number words, or None when it is not one well-formed number
    ("two three" is two numbers, "nineteen eighty" a year-like phrase: both left alone)."""
    words = [w for w in re.split(r"[\s-]+", run.lower()) if w]
    if words and words[0] == "a":
        words[0] = "one"
    total = current = 0
    last = ""
    for i, word in enumerate(words):
        if word == "and":
            if last not in ("hundred", "scale") or i == len(words) - 1:
                return None
            continue
        if word in UNITS:
            if last in ("unit", "teen"):
                return None
            current += UNITS[word]
            last = "unit"
        elif word in TEENS:
            if last in ("unit", "teen", "ten"):
                return None
            current += TEENS[word]
            last = "teen"
        elif word in TENS:
            if last in ("unit", "teen", "ten"):
                return None
            current += TENS[word]
            last = "ten"
        elif word == "hundred":
            if last not in ("unit", "teen") or current >= 100:
                return None
            current *= 100
            last = "hundred"
        elif word in SCALES:
            if current == 0 or last == "scale":
                return None
            total += current * SCALES[word]
            current = 0
            last = "scale"
        else:
            return None
    return total + current


def _digits_value(text: str) -> float:
    value = float(text.replace(",", ""))
    return int(value) if value.is_integer() else value


@dataclass(frozen=True)
class NumberMention:
    start: int
    end: int
    surface: str
    value: float
    # False for a word read alone out of a run that is not one number ("twelve fifteen").
    whole: bool = True


_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_SINGLE = re.compile(rf"\b(?:{_WORD})\b", re.IGNORECASE)


def _split_run(start: int, run: str) -> Iterator[NumberMention]:
    """One run of number words as numbers: whole if it parses, else split at "and" ("five and
    twenty three" is two numbers), else word by word."""
    value = parse_number_words(run)
    if value is not None:
        yield NumberMention(start, start + len(run), run, value)
        return
    pieces: list[tuple[int, int]] = []
    position = 0
    for match in _AND.finditer(run):
        pieces.append((position, match.start()))
        position = match.end()
    pieces.append((position, len(run)))
    merged: list[tuple[int, int]] = []
    for piece in pieces:
        if merged and parse_number_words(run[merged[-1][0] : piece[1]]) is not None:
            merged[-1] = (merged[-1][0], piece[1])
        else:
            merged.append(piece)
    for begin, end in merged:
        part = run[begin:end]
        value = parse_number_words(part) if len(merged) > 1 else None
        if value is not None:
            yield NumberMention(start + begin, start + end, part, value)
            continue
        for word in _SINGLE.finditer(part):
            lower = word.group().lower()
            if lower != "hundred" and lower not in SCALES:
                at = start + begin + word.start()
                yield NumberMention(at, at + len(word.group()), word.group(), NUMBER_WORDS[lower], False)


def find_numbers(text: str) -> list[NumberMention]:
    """Every number in `text`, spelled or in digits, in order of appearance."""
    mentions = [m for run in NUMBER_RUN.finditer(text) for m in _split_run(run.start(), run.group())]
    for match in DIGITS.finditer(text):
        mentions.append(
            NumberMention(match.start(), match.end(), match.group(), _digits_value(match.group()))
        )
    return sorted(mentions, key=lambda m: m.start)


def _to_digits(match: re.Match[str]) -> str:
    run = match.group()
    value = parse_number_words(run)
    if value is not None:  # the common case, without building mentions
        return str(value) if value >= 10 else run
    out, position = [], 0
    for mention in _split_run(0, run):
        out.append(run[position : mention.start])
        big = mention.whole and mention.value >= 10
        out.append(str(mention.value) if big else mention.surface)
        position = mention.end
    out.append(run[position:])
    return "".join(out)


def normalise_numbers(text: str) -> str:
    """Write spelled numbers of 10 and more as digits; leave one to nine (and anything ambiguous)."""
    return NUMBER_RUN.sub(_to_digits, text)
