"""The faithfulness guard: does a caption say only what the speaker said?

Every content word of the caption (a word that is not a function word or caption boilerplate such as
"image" or "depicts") must occur in the transcript, compared by a light stem so "boats" supports
"boat" and "parked" supports "parking"; numbers are compared by value, so "four" supports "4".
The share of unsupported content words decides the flag. Separately, every number the speaker
settled on (self-corrections resolved by the rules cleaner) must survive into the caption, and a
caption that keeps under half of the speaker's content words is flagged as a summary.

Without a part-of-speech tagger this errs towards listing too much (an adjective the model added is
listed like a noun); that is the safe side for a review queue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from transcribe.clean.numbers import COUNT_WORDS, NUMBER_WORDS, find_numbers
from transcribe.clean.rules import clean_text


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words: articles, pronouns, prepositions, conjunctions, auxiliaries, common adverbs.
STOPWORDS = _word_set(
    """
    a an the this that these those there here it its it's itself they them their theirs themselves
    he him his she her hers we us our you your i me my mine one ones someone something anything everything
    nothing some any each every all both either neither none no not nor only own same such other another
    and or but so yet if then than as because while although though whereas whether also too very just
    of in on at by for with about against between into through during before after above below to from
    up down out off over under again further once onto upon within without along across around behind
    beside besides near next toward towards among beneath underneath inside outside throughout via per
    be is are was were been being am have has had having do does did doing will would shall should can
    could may might must ought 's 're 've 'd 'll n't isn't aren't wasn't weren't don't doesn't didn't
    can't couldn't won't wouldn't there's here's that's what's what which who whom whose when where why
    how whatever whichever more most less least much many few several lot lots bit kind sort type
    really quite rather pretty fairly slightly somewhat almost nearly about approximately roughly
    maybe perhaps probably possibly likely seemingly apparently clearly
    """
)
# Words a written caption uses to frame what it describes; they assert no visual fact.
CAPTION_FRAMING = _word_set(
    """
    image picture photo photograph photography snapshot shot scene view frame depict depicts depicted
    depicting show shows shown showing feature features featured featuring display displays displayed
    displaying capture captures captured capturing visible appear appears appearing seen see seems seem
    overall composition include includes including included contain contains containing containment
    present presents located situated positioned placed
    additionally also furthermore moreover notably which whole entire
    """
)
MIN_COVERAGE = 0.5  # below this share of the speaker's content words kept, a caption is flagged
# Scripts written without spaces (Chinese, Japanese kana and kanji): each character is a token, so
# "一只猫" is checked character by character against "我看到一只猫". Every other script: runs of letters
# (any alphabet: "fenêtre", "Küche", "قارب"), with an apostrophe inside ("it's", "l'eau").
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Combining marks (decomposed accents, Arabic short vowels) are not \w in Python's re, yet belong to the word.
_LETTERS = rf"(?:[^\W\d_{_CJK}]|[\u0300-\u036f\u064b-\u0652\u0670])+"
WORD = re.compile(rf"[{_CJK}]|{_LETTERS}(?:['’]{_LETTERS})?")
# Arabic: short vowels and tatweel are optional in writing, alef has several spellings, and "the",
# "and", "with" and "like" are written onto the word ("والقارب" = "and the boat").
_ARABIC_MARKS = re.compile("[\u064b-\u0652\u0670\u0640]")
_ARABIC_PREFIX = re.compile("^(?:وال|بال|كال|فال|لل|ال|و)(?=...)")
_ALEF = str.maketrans("أإآ", "ااا")
IRREGULAR = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose", "leaves": "leaf", "knives": "knife",
    "shelves": "shelf", "wolves": "wolf", "halves": "half", "lives": "life", "loaves": "loaf",
    "grey": "gray", "colour": "color", "colours": "color", "coloured": "color",
}  # fmt: skip


def stem(word: str) -> str:
    """A small suffix stripper, applied to both sides, so inflections of one word compare equal."""
    if "\u0600" <= word[:1] <= "\u06ff":
        return _ARABIC_PREFIX.sub("", _ARABIC_MARKS.sub("", word).translate(_ALEF))
    word = IRREGULAR.get(word, word).replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes", "zes")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed", "ly"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # sitting -> sitt -> sit
            break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


@dataclass(frozen=True)
class FaithfulnessReport:
    score: float  # 1.0 = every content word of the caption is supported by the transcript
    unsupported_words: list[str]  # caption words the transcript never says, in order, once each
    missing_numbers: list[str]  # numbers the speaker settled on that the caption lost
    content_words: int
    flagged: bool
    flags: list[str] = field(default_factory=list)
    # Share of the speaker's content words (after self-corrections) the caption kept, by stem; a
    # caption that summarises instead of transcribing every fact scores low.
    coverage: float = 1.0


def _numbers(text: str, skip_one: bool) -> dict[float, str]:
    """Value -> first surface form. "one"/"a" as words are skipped when asked: "the red one" is no count."""
    found: dict[float, str] = {}
    for mention in find_numbers(text):
        if skip_one and mention.surface.lower() in ("one", "a"):
            continue
        found.setdefault(mention.value, mention.surface)
    return found


def _content_words(text: str) -> list[str]:
    return [
        word
        for word in WORD.findall(text.lower())
        if word not in STOPWORDS and word not in CAPTION_FRAMING and word not in NUMBER_WORDS
    ]


def check(
    caption: str, transcripts: str | list[str], threshold: float, language: str | None = None
) -> FaithfulnessReport:
    """Compare a caption with the transcript(s) it was written from (several for a merged caption).

    `language` is the transcripts' (default English): it decides how self-corrections are read."""
    sources = [transcripts] if isinstance(transcripts, str) else list(transcripts)
    source_text = "\n".join(sources)
    supported = {stem(word) for word in WORD.findall(source_text.lower())}
    # Numbers compare with what the speaker settled on: "three, no, four" supports 4, not 3.
    settled_texts = [clean_text(source, language=language) for source in sources]
    source_values = {value for text in settled_texts for value in _numbers(text, skip_one=False)} | {
        value for word, value in COUNT_WORDS.items() if word in supported or stem(word) in supported
    }

    unsupported: list[str] = []
    seen: set[str] = set()
    content = _content_words(caption)
    for word in content:
        if stem(word) not in supported and word not in seen:
            seen.add(word)
            unsupported.append(word)
    unsupported_count = sum(1 for word in content if stem(word) not in supported)
    caption_numbers = _numbers(caption, skip_one=True)
    for value, surface in caption_numbers.items():
        if value not in source_values and surface not in seen:
            seen.add(surface)
            unsupported.append(surface)
            unsupported_count += 1
    total = len(content) + len(caption_numbers)

    # Numbers said (after self-corrections) must all appear; one/a are too ambiguous to demand.
    settled: dict[float, str] = {}
    for text in settled_texts:
        settled.update(_numbers(text, skip_one=True))
    caption_values = set(_numbers(caption, skip_one=False))
    missing = [surface for value, surface in settled.items() if value not in caption_values]

    score = 1.0 - unsupported_count / total if total else (1.0 if caption.strip() else 0.0)
    said = {stem(word) for text in settled_texts for word in _content_words(text)}
    kept = said & {stem(word) for word in WORD.findall(caption.lower())}
    coverage = len(kept) / len(said) if said else 1.0
    flags: list[str] = []
    if not caption.strip():
        flags.append("empty")
    elif coverage < MIN_COVERAGE:
        flags.append("low_coverage")
    if unsupported and 1.0 - score > threshold:
        flags.append("unsupported_words")
    if missing:
        flags.append("numbers_lost")
    return FaithfulnessReport(
        score=round(score, 4),
        unsupported_words=unsupported,
        missing_numbers=missing,
        content_words=total,
        flagged=bool(flags),
        flags=flags,
        coverage=round(coverage, 4),
    )
