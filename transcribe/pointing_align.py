"""What a take's words point at: pure code, no sessions (transcribe/stages/pointing.py stores it).

Given a transcript's words ({start, end, word, probability}), the trace's strokes ([[x, y, t], ...]),
the current points ({x, y, t, label}), the labels asked for (empty in narrate mode), the language and
the link window (VOICECAP_POINTING_LINK_WINDOW_SECONDS), `align` computes:

- `words`: per word, [first, last] flat sample index (over all strokes, in order) of the trace drawn
  between the word's start and end, both ends included; None when no sample falls in that span;
- the noun phrases (transcribe/noun_phrases.py: a run of content words, a label's mention in point mode);
- `links`: per point, in the point set's order, the phrase spoken nearest its time, at most `window`
  seconds away (0 while the phrase is being said, else to its nearer end; a tie goes to the earlier
  phrase). A labelled point links to a phrase of its own label if one is in the window, else to an
  unlabelled one, never to another label's. A point with no time (a reviewer added it) links by label
  only: to its label's first mention that says a count, else its first mention;
- `counts`: each phrase said with a count ("three garden chairs", "3 chairs", "a pair of", "no people")
  against the points: in point mode, for a label's mention, the points carrying that label (a label
  counted in several mentions also agrees when the counts add up to its points); for an unlabelled
  phrase, the points linked to it, checked only when at least one is (a narrator who said "three boats"
  without clicking has not pointed at them). `count_mismatch` is any disagreement.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from transcribe.noun_phrases import Span, chunk, label_matcher, label_mentions, phrase_table, tokenize


@dataclass(frozen=True)
class Phrase:
    word_start: int
    word_end: int  # inclusive
    text: str
    label: str | None
    start: float  # seconds: its first word's start
    end: float  # its last word's end
    spoken: int | float | None  # the count said with it


@dataclass
class Alignment:
    words: list[list[int] | None]
    phrases: list[Phrase]
    links: list[dict[str, Any]] = field(default_factory=list)
    counts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count_mismatch(self) -> bool:
        return any(not count["agrees"] for count in self.counts)


def align(
    words: Sequence[Mapping[str, Any]],
    segments: Sequence[Sequence[Sequence[float]]],
    points: Sequence[Mapping[str, Any]],
    labels: Sequence[str] = (),
    language: str | None = None,
    window: float = 3.0,
) -> Alignment:
    phrases = find_phrases(words, labels, language)
    links = link_points(points, phrases, window)
    return Alignment(
        words=word_trace_ranges(words, segments),
        phrases=phrases,
        links=links,
        counts=check_counts(phrases, points, links),
    )


def word_trace_ranges(
    words: Sequence[Mapping[str, Any]], segments: Sequence[Sequence[Sequence[float]]]
) -> list[list[int] | None]:
    """Per word, [first, last] flat index of the trace samples timed within [start, end], or None."""
    times = [sample[2] for stroke in segments for sample in stroke]
    ranges: list[list[int] | None] = []
    if times != sorted(times):  # intake refuses this; a slow exact answer rather than a wrong one
        return [_scan(times, word) for word in words]
    for word in words:
        start, end = word.get("start"), word.get("end")
        if start is None or end is None:
            ranges.append(None)
            continue
        first = bisect_left(times, start)
        last = bisect_right(times, end) - 1
        ranges.append([first, last] if first <= last else None)
    return ranges


def _scan(times: list[float], word: Mapping[str, Any]) -> list[int] | None:
    start, end = word.get("start"), word.get("end")
    if start is None or end is None:
        return None
    inside = [k for k, t in enumerate(times) if start <= t <= end]
    return [inside[0], inside[-1]] if inside else None


def find_phrases(
    words: Sequence[Mapping[str, Any]], labels: Sequence[str] = (), language: str | None = None
) -> list[Phrase]:
    tokens = tokenize(str(word.get("word", "")) for word in words)
    table = phrase_table(language)
    mentions = label_mentions(tokens, label_matcher(tuple(labels), language)) if labels else []
    return [_phrase(span, tokens.text, words) for span in chunk(tokens, table, mentions)]


def _phrase(span: Span, text: list[str], words: Sequence[Mapping[str, Any]]) -> Phrase:
    return Phrase(
        word_start=span.start,
        word_end=span.end,
        text=" ".join(text[span.start : span.end + 1]),
        label=span.label,
        start=float(words[span.start].get("start") or 0.0),
        end=float(words[span.end].get("end") or 0.0),
        spoken=span.spoken,
    )


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.casefold() == b.casefold()


def link_points(
    points: Sequence[Mapping[str, Any]], phrases: Sequence[Phrase], window: float
) -> list[dict[str, Any]]:
    groups = _Groups(phrases)
    links = []
    for index, point in enumerate(points):
        label = point.get("label") or None
        t = point.get("t")
        chosen: int | None = None
        distance: float | None = None
        if t is None:
            chosen = _by_label(phrases, label)
        else:
            found = groups.nearest(float(t), window, label.casefold()) if label else None
            found = found or groups.nearest(float(t), window, None)
            if found:
                chosen, distance = found
        phrase = phrases[chosen] if chosen is not None else None
        links.append(
            {
                "point": index,
                "phrase": phrase.text if phrase else None,
                "word_start": phrase.word_start if phrase else None,
                "word_end": phrase.word_end if phrase else None,
                "distance_s": round(distance, 3) if phrase and distance is not None else None,
            }
        )
    return links


class _Groups:
    """The phrases per label (None: unlabelled), in time order, for finding the nearest by bisection."""

    def __init__(self, phrases: Sequence[Phrase]) -> None:
        self.phrases = phrases
        self.members: dict[str | None, list[int]] = {}
        for k, phrase in enumerate(phrases):
            key = phrase.label.casefold() if phrase.label is not None else None
            self.members.setdefault(key, []).append(k)
        self.starts = {key: [phrases[k].start for k in ks] for key, ks in self.members.items()}
        self.ends = {key: [phrases[k].end for k in ks] for key, ks in self.members.items()}
        # Bisection needs phrases that follow each other in time; Whisper's words do, but if a
        # transcript's times ever overlap, every phrase of the group is measured instead.
        self.ordered = {
            key: all(phrases[k].start <= phrases[k].end for k in ks)
            and all(phrases[a].end <= phrases[b].start for a, b in pairwise(ks))
            for key, ks in self.members.items()
        }

    def nearest(self, t: float, window: float, key: str | None) -> tuple[int, float] | None:
        """The phrase of the group nearest to t within the window, and how far; a tie goes to the earlier."""
        members = self.members.get(key)
        if not members:
            return None
        if self.ordered[key]:
            # In time order, the phrases within the window are those ending at or after t - window up
            # to those starting at or before t + window: one slice, usually a phrase or two.
            low = bisect_left(self.ends[key], t - window)
            high = bisect_right(self.starts[key], t + window)
            candidates = members[low:high]
        else:
            candidates = members
        best: tuple[int, float] | None = None
        for k in candidates:
            phrase = self.phrases[k]
            distance = (
                0.0 if phrase.start <= t <= phrase.end else min(abs(t - phrase.start), abs(t - phrase.end))
            )
            if distance <= window and (best is None or distance < best[1]):
                best = (k, distance)
        return best


def _by_label(phrases: Sequence[Phrase], label: str | None) -> int | None:
    if not label:
        return None
    mentions = [k for k, phrase in enumerate(phrases) if _same(phrase.label, label)]
    counted = [k for k in mentions if phrases[k].spoken is not None]
    return (counted or mentions or [None])[0]


def check_counts(
    phrases: Sequence[Phrase], points: Sequence[Mapping[str, Any]], links: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    linked: dict[int, int] = {}
    for link in links:
        if link["word_start"] is not None:
            linked[link["word_start"]] = linked.get(link["word_start"], 0) + 1
    carrying: dict[str, int] = {}
    for point in points:
        if point.get("label"):
            key = str(point["label"]).casefold()
            carrying[key] = carrying.get(key, 0) + 1
    said: dict[str, float] = {}  # per label, the counts of its mentions added up
    for phrase in phrases:
        if phrase.label is not None and phrase.spoken is not None:
            key = phrase.label.casefold()
            said[key] = said.get(key, 0) + phrase.spoken
    counts = []
    for phrase in phrases:
        if phrase.spoken is None:
            continue
        if phrase.label is not None:
            key = phrase.label.casefold()
            pointed = carrying.get(key, 0)
            agrees = phrase.spoken == pointed or said[key] == pointed
        else:
            pointed = linked.get(phrase.word_start, 0)
            if not pointed:
                continue
            agrees = phrase.spoken == pointed
        counts.append(
            {
                "phrase": phrase.text,
                "label": phrase.label,
                "word_start": phrase.word_start,
                "word_end": phrase.word_end,
                "spoken": phrase.spoken,
                "pointed": pointed,
                "agrees": agrees,
            }
        )
    return counts
