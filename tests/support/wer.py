"""Text normalisation for word error rate: compare what was said, not how it was punctuated.

Lowercase, drop punctuation, and write numbers as digits ("twenty seven" and "27" both become "27"),
so an engine is not charged for a style choice. Numbers are read by the cleaners' own parser
(transcribe/clean/numbers.py). Used by the engine and worker tests and bench/engines.py; jiwer is a
test/bench dependency, so this lives with the tests.
"""

from __future__ import annotations

import re

from transcribe.clean.numbers import find_numbers


def normalize_text(text: str) -> str:
    """Lowercase, strip punctuation and spell numbers as digits; words separated by single spaces."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"[^\w\s']|_", " ", text)
    text = " ".join(text.replace("'", "").split())
    return _numbers_as_digits(text)


def _numbers_as_digits(text: str) -> str:
    """Every spelled number as digits, one to nine included ("two three" is two numbers: "2 3")."""
    out: list[str] = []
    position = 0
    for mention in find_numbers(text):
        if mention.surface[0].isdigit():
            continue  # already digits
        out.append(text[position : mention.start])
        out.append(str(mention.value))
        position = mention.end
    out.append(text[position:])
    return "".join(out)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of normalised texts."""
    import jiwer

    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))
