"""Text normalisation for word error rate: compare what was said, not how it was punctuated.

Lowercase, drop punctuation, and write numbers as digits ("twenty seven" and "27" both become "27"),
so an engine is not charged for a style choice. Used by the engine tests and bench/engines.py.
"""

from __future__ import annotations

import re

_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
)
_TEN_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety"
_UNITS = {word: value for value, word in enumerate(_UNIT_WORDS.split())}
_TENS = {word: 10 * value for value, word in enumerate(_TEN_WORDS.split(), start=2)}
_SCALES = {"hundred": 100, "thousand": 1000}


def normalize_text(text: str) -> str:
    """Lowercase, strip punctuation and spell numbers as digits; words separated by single spaces."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"[^\w\s']|_", " ", text)
    text = text.replace("'", "")
    return " ".join(_numbers_as_digits(text.split()))


def _numbers_as_digits(words: list[str]) -> list[str]:
    out: list[str] = []
    total: int | None = None  # thousands read so far; None when not inside a number
    current = 0  # the part below a thousand
    for word in words:
        if word in _UNITS or word in _TENS:
            value = _UNITS.get(word, _TENS.get(word, 0))
            if total is not None and not _extends(current, value):
                out.append(str(total + current))  # "two three" is two numbers
                total, current = None, 0
            total = total or 0
            current += value
        elif word in _SCALES and total is not None:
            if _SCALES[word] == 100:
                current = max(current, 1) * 100
            else:
                total, current = (total + max(current, 1)) * 1000, 0
        elif word == "and" and total is not None and current and current % 100 == 0:
            continue  # "one hundred and five"
        else:
            if total is not None:
                out.append(str(total + current))
                total, current = None, 0
            out.append(word)
    if total is not None:
        out.append(str(total + current))
    return out


def _extends(current: int, value: int) -> bool:
    """Whether a number word continues the number read so far ("twenty" + "seven", "hundred" + "five")."""
    if current % 100 == 0:
        return value < 100
    return current % 100 >= 20 and current % 10 == 0 and value < 10


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of normalised texts (jiwer, a test/bench dependency)."""
    import jiwer

    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))
