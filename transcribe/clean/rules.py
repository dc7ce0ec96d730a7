"""The offline cleaner: deterministic regular-expression passes over a spoken transcript.

It only ever deletes words, re-cases letters, tidies punctuation and writes spelled numbers of 10+
as digits; it never adds a word (tests/test_rules_cleaner.py checks that on every case). Each pass is
a precompiled pattern, so a 90-second transcript takes well under a millisecond.

Order matters: self-corrections with a clear restart go first (a filler's commas may be what marks
one: "red, no, um, blue"), then fillers (so "a, um, a boat" becomes a repeat), stutters and repeats,
discourse fillers, the remaining self-corrections (a filler inside the marker hid them: "or, um,
rather"), numbers, punctuation and case. Every output is a fixpoint: cleaning it again changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from transcribe.clean.base import CleanResult
from transcribe.clean.languages import LanguageTable, base_language, language_table
from transcribe.clean.numbers import NUMBER_WORDS, normalise_numbers, word_alternation

RULES_VERSION = "rules-v1"

_I = re.IGNORECASE


def _starts_with(chars: str) -> str:
    """A lookahead on a pattern's possible first characters. Python's re then jumps between those
    characters instead of trying the whole pattern at every position (3-5x faster on long text)."""
    return f"(?=[{chars.lower()}{chars.upper()}])"


# Pauses Whisper writes as an ellipsis: mid-sentence ("a... a dog") they are a gap, not a stop.
ELLIPSIS_MID = re.compile(r"\s*(?:\.{2,}|…)\s*(?=[a-z])")
ELLIPSIS = re.compile(r"\s*(?:\.{2,}|…)")

# Hesitation sounds. Between commas ("there is, um, a boat") they go with the commas.
_FILLERS = r"(?:uh-huh|mm-hmm|u+h+m*|u+m+|e+r+m+|e+r+|a+h+|h+m+|m+h*m+)"
FILLER_COMMA = re.compile(rf", ?{_FILLERS}\b(?: ?,)?", _I)
_FILLER_WORD = re.compile(_FILLERS, _I)
FILLER = re.compile(rf"{_starts_with('uemah')}(?<![\w'’]){_FILLERS}\b,? ?", _I)

# Stutters: a fragment then the word it started ("th- the", "b-b-boat"); "t-shirt" survives.
FRAGMENT_SPACED = re.compile(r"\b(\w{1,4})- (?=\1)", _I)
FRAGMENT_JOINED = re.compile(r"\b([^\W\d])-(?:\1-)*(?=\1\w)", _I)
# The same one to three words said again ("the the", "in the, in the corner"); not digits.
# Possessive quantifiers: a word never gives back letters, which halves the backtracking.
_W = r"[^\W\d]\w*+(?:['’]\w++)?+"
REPEAT = re.compile(rf"\b({_W}(?: {_W}){{0,2}})(?:,? \1\b)+", _I)  # spaces are single by then

# Self-corrections: "<reparandum>, <marker>, <repair>". Markers that are also ordinary words ("no",
# "wait", "actually") need commas on both sides; the others only the one before.
CORRECTION = re.compile(
    r", ?(?:(?:no|wait|no wait|wait no|actually|no sorry|sorry no) ?,"
    r"|(?:sorry|i mean|or rather|scratch that|correction|let me correct that)\b ?,?) ?",
    _I,
)
CORRECTION_WINDOW = 6  # the reparandum lies within this many words before the marker

COLOURS = frozenset(
    {
        "red", "orange", "yellow", "green", "blue", "purple", "violet", "pink", "brown", "black", "white",
        "grey", "gray", "beige", "tan", "gold", "golden", "silver", "maroon", "navy", "teal", "turquoise",
        "cyan", "magenta", "crimson", "olive", "lavender", "cream", "ivory",
    }
)  # fmt: skip
# "actually" only marks a correction between two words of one kind ("three, actually, four").
_TYPED_ONLY = re.compile(r", ?actually ?,", _I)  # fullmatch on the stripped marker

# Discourse fillers that carry no visual fact, each with the words that must occur for it to run (a
# substring test costs far less than a scan; () = always run, for scans that start with a literal and
# so are cheap anyway). They repeat until nothing changes, since one removal can expose another ("you
# like, know"). The text carries a leading ". " while they run, so a sentence start is always right
# after "[.?!] ". "like" goes only where it cannot mean "resembling".
_NUMBER = word_alternation(NUMBER_WORDS)
_OPENERS = ("and so", "so", "okay", "ok", "alright", "all right", "well", "yeah", "right", "let's see",
            "let me see", "what else", "i mean")  # fmt: skip


DISCOURSE: list[tuple[tuple[str, ...], re.Pattern[str], str]] = [
    (("basically", "literally"), re.compile(r"\b(?:basically|literally)\b ?,? ?", _I), " "),
    (("like,", "like ,"), re.compile(rf"{_starts_with(',l')}(?:, ?|(?<![\w'’]))like ?, ?", _I), " "),
    ((), re.compile(r"([.?!]) like ", _I), r"\1 "),
    (
        ("and like ", "but like ", "just like "),
        re.compile(rf"{_starts_with('abj')}\b(and|but|just) like ", _I),
        r"\1 ",
    ),
    (("like ",), re.compile(rf"{_starts_with('l')}(?<![\w'’])like (?=(?:{_NUMBER}|\d)\b)", _I), ""),
    (("you know", "i mean"), re.compile(r", ?(?:you know|i mean)\b ?(?:,|(?=[.?!]|$))", _I), " "),
    (
        ("you know", "i mean"),
        re.compile(rf"{_starts_with('yi')}(?<![\w'’])(?:you know|i mean)\b ?(?:,|(?=[.?!]|$))", _I),
        " ",
    ),
    (
        (),
        re.compile(rf"([.?!]) (?:{'|'.join(_OPENERS)}) ?[,.?]+ ?", _I),
        r"\1 ",
    ),
    (
        (". so ", ". okay", ". alright", ". and so "),
        re.compile(r"^\. (?:okay so|so|okay|alright|and so) ", _I),
        ". ",
    ),
]
STANDALONE_I = re.compile(r"i(?<![\w'’]i)(?=\s|['’](?:m|ll|ve|d)\b|[,.?!]|$)")

# Punctuation tidying, applied in order (each starts with a literal, so each scan is quick).
TIDY = [
    (re.compile(r" +([,.;:?!])"), r"\1"),
    (re.compile(r"([,;:])(?: ?[,;:])+"), r"\1"),
    (re.compile(r"[,;:] ?([.?!])"), r"\1"),
    (re.compile(r"([.?!])(?: ?[,;:.])+"), r"\1"),
]
SENTENCE_START = re.compile(r"([.?!] )([a-z])")


def _number_or_colour(word: str) -> str:
    word = word.lower().strip(".,;:?!")
    if word in COLOURS:
        return "colour"
    if word in NUMBER_WORDS or word.isdigit():
        return "number"
    return ""


def _resolve_correction(text: str, match: re.Match[str], restart_only: bool) -> tuple[str, int] | None:
    """Delete the reparandum and the marker; returns the new text and where to search on.

    restart_only leaves corrections without a restart for a later pass, when fillers that may sit in
    the reparandum ("grey, you know, or rather, beige") are gone."""
    before = text[: match.start()]
    after = text[match.end() :]
    repair = after.split(maxsplit=3)
    if not repair:
        return None
    repair = [word for word in repair[:3] if not _FILLER_WORD.fullmatch(word.strip(".,;:?!"))] or repair
    first_repair = repair[0].strip(".,;:?!").lower()
    # The reparandum cannot cross a sentence boundary.
    boundary = max(before.rfind(". "), before.rfind("? "), before.rfind("! "))
    clause_start = boundary + 2 if boundary >= 0 else 0
    # Only the last few words matter: look at a bounded tail, so a long clause costs no more.
    tail = len(before) - 400
    if tail > clause_start:
        clause_start = before.find(" ", tail) + 1 or tail
    words = list(re.finditer(r"\S+", before[clause_start:]))[-CORRECTION_WINDOW:]
    if not words:
        return None
    repair_kind = _number_or_colour(first_repair)
    cut: int | None = None
    # Restart: the repair begins with a word (or a word of the same kind) said just before.
    bares = [word.group().strip(".,;:?!").lower() for word in words]
    for i in range(len(words) - 1, -1, -1):
        bare = bares[i]
        if bare == first_repair or (repair_kind and _number_or_colour(bare) == repair_kind):
            while i > 0 and bares[i - 1] == bare:  # a stuttered reparandum: "two, two, no, three"
                i -= 1
            cut = clause_start + words[i].start()
            break
    if cut is None:
        if restart_only or _TYPED_ONLY.fullmatch(match.group().strip()):
            return None  # "actually" without a like-for-like repair is not a correction
        cut = clause_start + words[-1].start()  # one-word repair: "a cat, sorry, dog"
    return before[:cut] + after, cut


def _remove_corrections(text: str, restart_only: bool = False) -> str:
    position = 0
    while True:
        match = CORRECTION.search(text, position)
        if match is None:
            return text
        resolved = _resolve_correction(text, match, restart_only)
        if resolved is None:
            position = match.end()
            continue
        text, position = resolved


def _drop_discourse_fillers(text: str) -> str:
    """Each pattern whose keywords occur; again while something changed, since one removal can
    expose another ("you know, and like there's")."""
    for _ in range(3):
        lower = text.lower()
        changed = False
        for keywords, pattern, replacement in DISCOURSE:
            if not keywords or any(keyword in lower for keyword in keywords):
                text, count = pattern.subn(replacement, text)
                if count:  # re-single the spaces so later literal patterns see "you know"
                    changed = True
                    text = " ".join(text.split())
                    lower = text.lower()
        if not changed:
            break
        text = _tidy(text)  # so the next round sees ". so", not ". . so"
    return text


def _tidy(text: str) -> str:
    for pattern, replacement in TIDY:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def _drop_fragments(text: str) -> str:
    if "-" not in text:
        return text
    return FRAGMENT_JOINED.sub("", FRAGMENT_SPACED.sub("", text))


def _drop_repeats(text: str) -> str:
    """Repeats, until none is left: "in the, in in the" needs two passes (the first finds "in in")."""
    for _ in range(4):
        text, count = REPEAT.subn(r"\1", text)
        if not count:
            break
    return text


def clean_text(text: str, numbers: bool = True, language: str | None = None) -> str:
    """Clean one spoken transcript into written prose (see the module docstring for the passes).

    numbers=False leaves spelled numbers as spoken (the tests use it to check that every word of the
    result is a word of the input). `language` (default English) picks the passes: English's own, a
    language table's (transcribe/clean/languages/), or for a language with neither only tidying."""
    text = " ".join(text.split())
    if not text:
        return ""
    if base_language(language) != "en":
        table = language_table(language)
        return _clean_with_table(text, table) if table else _tidy(text)
    if ".." in text or "…" in text:
        text = ELLIPSIS_MID.sub(" ", text)
        text = ELLIPSIS.sub(".", text)
    if "," in text:  # before fillers, whose commas may mark a correction ("red, no, um, blue")
        text = _remove_corrections(text, restart_only=True)
    text = FILLER_COMMA.sub("", text)
    # A sentinel sentence end, so "sentence start" is always "after [.?!] "; the final lstrip drops it.
    text = ". " + FILLER.sub("", text).lstrip(" ,;:.?!")
    text = _drop_repeats(_drop_fragments(text))
    before_discourse = text
    text = _drop_discourse_fillers(text)
    if text != before_discourse:  # a removal can join a stutter: "the, like, the", "th- you know, the"
        text = _drop_repeats(_drop_fragments(text))
    if "," in text:  # and after: a filler inside the marker hid it ("or, um, rather", "or you know, rather")
        text = _remove_corrections(text)
    if numbers:
        text = normalise_numbers(text)
    text = _tidy(text).lstrip(" ,;:.?!").rstrip(" ,;:")
    if not text:
        return ""
    text = STANDALONE_I.sub("I", text)
    text = text[0].upper() + SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text[1:])
    if text[-1] not in ".?!":
        text += "."
    return text


_SENTENCE_START_ANY = re.compile(r"([.?!؟] )(\w)")
_FINAL = ".?!؟…"


def _question_marker(match: re.Match[str]) -> str:
    # Mid-clause (commas on both sides) it was an aside; else it ended the sentence it was tagged on.
    return " " if match.group().rstrip().endswith((",", "،")) else "."


def _clean_with_table(text: str, table: LanguageTable) -> str:
    """Another language's transcript: its hesitations and markers, stutters and repeats, punctuation
    and case. Numbers stay as spoken: the number pass knows English words only."""
    if ".." in text or "…" in text:
        text = ELLIPSIS.sub(".", ELLIPSIS_MID.sub(" ", text))
    text = table.hesitation_in_commas.sub("", text)
    text = ". " + table.hesitation.sub("", text).lstrip(" ,،;:.?!")
    text = _drop_fragments(text)
    for _ in range(3):  # one removal can expose another (", bueno, pues, hay")
        before = text
        text = table.marker_question.sub(_question_marker, text)
        text = table.marker_in_commas.sub(" ", text)
        text = _tidy(table.marker_at_start.sub(r"\1", text))
        text = table.repeat.sub(r"\1", text)
        if text == before:
            break
    text = _tidy(text).lstrip(" ,،;:.?!").rstrip(" ,،;:")
    if not text:
        return ""
    text = text[0].upper() + _SENTENCE_START_ANY.sub(lambda m: m.group(1) + m.group(2).upper(), text[1:])
    return text if text[-1] in _FINAL else text + "."


class RulesCleaner:
    """The offline default: instant, deterministic, no model."""

    name = "rules"
    model = ""
    prompt_version = RULES_VERSION
    merge_prompt_version = ""
    can_merge = False
    can_translate = False  # it only deletes and re-cases words: a caption stays in the language spoken

    def clean(self, transcript: str, language: str | None = None) -> CleanResult:
        return CleanResult(
            text=clean_text(transcript, language=language),
            cleaner=self.name,
            model=self.model,
            prompt_version=RULES_VERSION,
        )

    def clean_many(
        self,
        transcripts: Sequence[str],
        languages: Sequence[str | None] | None = None,
        caption_languages: Sequence[str | None] | None = None,
    ) -> list[CleanResult | Exception]:
        """`caption_languages` is ignored: the rules cleaner cannot translate (see can_translate)."""
        languages = languages if languages is not None else [None] * len(transcripts)
        return [self.clean(text, language) for text, language in zip(transcripts, languages, strict=True)]

    def merge_many(
        self,
        groups: Sequence[Sequence[str]],
        languages: Sequence[str | None] | None = None,
        caption_languages: Sequence[str | None] | None = None,
    ) -> list[CleanResult | Exception]:
        raise NotImplementedError("the rules cleaner does not write merged captions; use the llm cleaner")

    def close(self) -> None:
        """Nothing to release."""
