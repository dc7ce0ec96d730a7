"""The pure pointing alignment (transcribe/pointing_align.py) and its chunker (transcribe/noun_phrases.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from transcribe.noun_phrases import phrase_table, plural_forms
from transcribe.pointing_align import Phrase, align, find_phrases, link_points, word_trace_ranges

STEP = 0.5  # each test word lasts half a second, back to back


def words_of(text: str, start: float = 0.0) -> list[dict[str, Any]]:
    """Whisper-shaped words, one every STEP seconds from `start`."""
    return [
        {"start": start + k * STEP, "end": start + (k + 1) * STEP, "word": word, "probability": 0.9}
        for k, word in enumerate(text.split())
    ]


def point(t: float | None, label: str | None = None) -> dict[str, Any]:
    return {"x": 0.5, "y": 0.5, "t": t, "label": label}


def at(text: str, word: str) -> float:
    """The middle of the first word `word` in `text`, in seconds."""
    index = [w.strip(",.:").lower() for w in text.split()].index(word)
    return index * STEP + STEP / 2


# (transcript, labels, expected [(phrase text, label, spoken count)])
PHRASES = [
    ("three red boats on a calm lake", [], [("red boats", None, 3), ("calm lake", None, None)]),
    ("a pair of shoes", [], [("shoes", None, 2)]),
    ("there are 3 chairs", [], [("chairs", None, 3)]),
    ("I see no people here", [], [("people", None, 0)]),
    ("twenty five birds", [], [("birds", None, 25)]),
    ("a dozen eggs and two dozen apples", [], [("eggs", None, 12), ("apples", None, 24)]),
    ("the boat is red", [], [("boat", None, None), ("red", None, None)]),
    ("chairs: none", [], [("chairs", None, 0)]),
    ("none of the chairs", [], [("chairs", None, 0)]),
    ("a man holding an umbrella", [], [("man", None, None), ("umbrella", None, None)]),
    ("three, boats", [], [("boats", None, None)]),  # a count in another clause is not this phrase's
    (
        "three Garden Chairs on the pier",
        ["garden chair"],
        [("Garden Chairs", "garden chair", 3), ("pier", None, None)],
    ),
    ("one garden chair", ["garden chair"], [("garden chair", "garden chair", 1)]),
    (
        "two gardenchairs and 4 garden-chairs",
        ["garden chair"],
        [("gardenchairs", "garden chair", 2), ("garden-chairs", "garden chair", 4)],
    ),
    ("three red garden chairs", ["garden chair"], [("red garden chairs", "garden chair", 3)]),
    (
        "garden chairs wooden",
        ["garden chair"],
        [("garden chairs", "garden chair", None), ("wooden", None, None)],
    ),
    ("a garden, chairs", ["garden chair"], [("garden", None, None), ("chairs", None, None)]),
    ("two people and a child", ["person", "child"], [("people", "person", 2), ("child", "child", None)]),
    ("the spinning top", ["top"], [("spinning top", "top", None)]),  # "top" is a stopword, not in a label
    ("five boxes", ["box"], [("boxes", "box", 5)]),
    ("two knives", ["knife"], [("knives", "knife", 2)]),
    ("one person", ["people"], [("person", "people", 1)]),  # a label written in the plural
]


@pytest.mark.parametrize(("text", "labels", "expected"), PHRASES, ids=[case[0] for case in PHRASES])
def test_phrases_labels_and_counts(text: str, labels: list[str], expected: list[tuple]) -> None:
    phrases = find_phrases(words_of(text), labels, "en")
    assert [(p.text, p.label, p.spoken) for p in phrases] == expected


# Other tables: digits, the table's spelled counts and "no" words count ("una"/"eine", also "a", say
# no count); a label's plural may sit on its first word.
OTHER_LANGUAGES = [
    (
        "es",
        "Hay 3 sillas de jardín en el muelle y ningún barco.",
        ["silla de jardín", "barco"],
        [("sillas de jardín", "silla de jardín", 3), ("muelle", None, None), ("barco", "barco", 0)],
    ),
    (
        "fr",
        "Il y a 3 chaises longues sur la jetée et aucun bateau.",
        ["chaise longue", "bateau"],
        [("chaises longues", "chaise longue", 3), ("jetée", None, None), ("bateau", "bateau", 0)],
    ),
    (
        "de",
        "Es gibt 3 Stühle auf dem Steg und kein Boot.",
        ["Stuhl", "Boot"],
        [("Stühle", "Stuhl", 3), ("Steg", None, None), ("Boot", "Boot", 0)],
    ),
    ("es", "tres sillas", [], [("sillas", None, 3)]),
    ("es", "una silla y doce barcos", [], [("silla", None, None), ("barcos", None, 12)]),
    ("fr", "Je vois deux chaises et dix-huit bateaux", [], [("chaises", None, 2), ("bateaux", None, 18)]),
    ("de", "Ich sehe zwölf Boote und eine Möwe", [], [("Boote", None, 12), ("Möwe", None, None)]),
    ("sw", "viti 3 vyekundu, meza", [], [("viti", None, None), ("vyekundu", None, 3), ("meza", None, None)]),
    ("en-GB", "three boats", [], [("boats", None, 3)]),
]


@pytest.mark.parametrize(("language", "text", "labels", "expected"), OTHER_LANGUAGES)
def test_phrases_in_other_languages(
    language: str, text: str, labels: list[str], expected: list[tuple]
) -> None:
    phrases = find_phrases(words_of(text), labels, language)
    assert [(p.text, p.label, p.spoken) for p in phrases] == expected


def test_a_language_without_a_table_has_no_stopwords() -> None:
    assert phrase_table("sw").stop == frozenset()
    assert phrase_table("en").stop and phrase_table("es").stop


@pytest.mark.parametrize(
    ("word", "forms"),
    [
        ("chair", {"chairs"}),
        ("box", {"boxes"}),
        ("berry", {"berries"}),
        ("leaf", {"leaves"}),
        ("knife", {"knives"}),
        ("fish", {"fish"}),
        ("person", {"people", "persons"}),
        ("woman", {"women"}),
        ("people", {"person"}),
    ],
)
def test_plural_forms(word: str, forms: set[str]) -> None:
    assert forms <= plural_forms(word, phrase_table("en"))


def test_words_get_the_trace_drawn_while_they_were_said() -> None:
    words = words_of("a red boat here")  # 0-0.5, 0.5-1, 1-1.5, 1.5-2
    strokes = [[[0.1, 0.1, 0.2], [0.2, 0.1, 0.4], [0.3, 0.1, 0.5]], [[0.5, 0.5, 1.6], [0.6, 0.5, 1.9]]]
    # "boat" (1.0-1.5) falls in the gap between strokes; a sample at a boundary belongs to both words.
    assert word_trace_ranges(words, strokes) == [[0, 2], [2, 2], None, [3, 4]]
    assert word_trace_ranges(words, []) == [None, None, None, None]  # no trace at all


def test_word_ranges_match_a_brute_force_scan() -> None:
    rng = random.Random(7)
    for _ in range(50):
        times = sorted(rng.uniform(0, 10) for _ in range(rng.randint(0, 60)))
        strokes, cut = [], 0
        while cut < len(times):
            size = rng.randint(1, 10)
            strokes.append([[0.5, 0.5, t] for t in times[cut : cut + size]])
            cut += size
        words = [
            {"start": (s := rng.uniform(0, 10)), "end": s + rng.uniform(0, 1), "word": "w"} for _ in range(20)
        ]
        for word, got in zip(words, word_trace_ranges(words, strokes), strict=True):
            inside = [k for k, t in enumerate(times) if word["start"] <= t <= word["end"]]
            assert got == ([inside[0], inside[-1]] if inside else None)


def test_an_unsorted_trace_is_still_answered_exactly() -> None:
    words = words_of("boat")
    assert word_trace_ranges(words, [[[0.1, 0.1, 0.4], [0.1, 0.1, 0.9]], [[0.1, 0.1, 0.2]]]) == [[0, 2]]


TEXT = "there are three boats on the lake and one garden chair near two people"


def links(points: list[dict[str, Any]], labels: list[str] = (), window: float = 3.0) -> list[Any]:
    return [link["phrase"] for link in align(words_of(TEXT), [], points, labels, "en", window).links]


def test_points_link_to_the_phrase_spoken_nearest_their_time() -> None:
    assert links([point(at(TEXT, "boats")), point(at(TEXT, "lake") + 0.4), point(at(TEXT, "people"))]) == [
        "boats",
        "lake",
        "people",
    ]
    result = align(words_of(TEXT), [], [point(at(TEXT, "boats"))], [], "en", 3.0)
    assert result.links == [
        {"point": 0, "phrase": "boats", "word_start": 3, "word_end": 3, "distance_s": 0.0}
    ]


@pytest.mark.parametrize(("late", "linked"), [(1.5, "people"), (1.51, None)])
def test_the_link_window_edge(late: float, linked: str | None) -> None:
    end = len(TEXT.split()) * STEP  # "people" is the last word
    assert links([point(end + late)], window=1.5) == [linked]


def test_a_labelled_point_prefers_its_own_label_and_never_takes_another() -> None:
    labels = ["boat", "garden chair", "person"]
    # Said during "lake", but a boat: its own label's "boats" is within the window.
    assert links([point(at(TEXT, "lake"), "boat")], labels) == ["boats"]
    # A person clicked during "boats": no "person" mention within 1 s, and "boats" is another label's.
    assert links([point(at(TEXT, "boats"), "person")], labels, window=1.0) == [None]
    # An unlabelled phrase ("lake") is taken when the label has no mention in the window.
    assert links([point(at(TEXT, "lake"), "person")], labels, window=1.0) == ["lake"]


def test_reviewer_points_link_by_label_only() -> None:
    labels = ["boat", "garden chair"]
    result = align(words_of(TEXT), [], [point(None, "garden chair"), point(None)], labels, "en", 3.0)
    assert [(link["phrase"], link["distance_s"]) for link in result.links] == [
        ("garden chair", None),
        (None, None),
    ]


def test_spoken_counts_against_linked_points_in_narrate_mode() -> None:
    boats = at(TEXT, "boats")
    agree = align(words_of(TEXT), [], [point(boats)] * 3, [], "en", 3.0)
    assert agree.counts == [
        {
            "phrase": "boats",
            "label": None,
            "word_start": 3,
            "word_end": 3,
            "spoken": 3,
            "pointed": 3,
            "agrees": True,
        }
    ]
    assert not agree.count_mismatch
    short = align(words_of(TEXT), [], [point(boats)] * 2, [], "en", 3.0)
    assert [(c["spoken"], c["pointed"], c["agrees"]) for c in short.counts] == [(3, 2, False)]
    assert short.count_mismatch
    # Nothing pointed at a counted phrase: a narrator need not click, so nothing to check.
    assert align(words_of(TEXT), [], [], [], "en", 3.0).counts == []


@pytest.mark.parametrize(
    ("points", "expected", "mismatch"),
    [
        (["boat"] * 3 + ["garden chair"] + ["person"] * 2, [True, True, True], False),
        (["boat"] * 2 + ["garden chair"] + ["person"] * 2, [False, True, True], True),
        (["boat"] * 3 + ["person"] * 2, [True, False, True], True),  # "one garden chair", none pointed
        (["boat"] * 3 + ["garden chair"] + ["person"] * 3, [True, True, False], True),
    ],
)
def test_spoken_counts_against_points_carrying_the_label(points, expected, mismatch) -> None:
    # Points in point mode carry their label; when they were clicked does not change the count.
    labels = ["boat", "garden chair", "person"]
    result = align(words_of(TEXT), [], [point(0.1, label) for label in points], labels, "en", 3.0)
    assert [(c["label"], c["agrees"]) for c in result.counts] == list(
        zip(["boat", "garden chair", "person"], expected, strict=True)
    )
    assert result.count_mismatch is mismatch


def test_no_people_agrees_with_no_person_points() -> None:
    text = "a beach with no people"
    assert not align(words_of(text), [], [], ["person"], "en", 3.0).count_mismatch
    assert align(words_of(text), [], [point(1.0, "person")], ["person"], "en", 3.0).count_mismatch


def test_a_label_counted_in_several_mentions_agrees_when_they_add_up() -> None:
    text = "two garden chairs on the left and one garden chair on the right"
    points = [point(0.5, "garden chair")] * 3
    result = align(words_of(text), [], points, ["garden chair"], "en", 3.0)
    assert [(c["spoken"], c["pointed"], c["agrees"]) for c in result.counts] == [(2, 3, True), (1, 3, True)]
    assert align(words_of(text), [], points[:2], ["garden chair"], "en", 3.0).count_mismatch


def test_links_match_a_brute_force_search() -> None:
    """Linking bisects phrases in time order; it must choose what measuring every phrase chooses."""
    rng = random.Random(11)
    for trial in range(300):
        phrases, t = [], 0.0
        for k in range(rng.randint(0, 12)):
            t += rng.choice([0.0, rng.uniform(0, 2)])  # phrases may touch
            end = t + rng.choice([0.0, rng.uniform(0, 1)])
            label = rng.choice([None, "boat", "Boat", "chair"])
            phrases.append(Phrase(k, k, f"p{k}", label, t, end, None))
            t = end
        if trial % 10 == 0:
            rng.shuffle(phrases)  # out of time order: every phrase is measured
        points = [
            point(round(rng.uniform(-1, t + 1), 1), rng.choice([None, "boat", "chair", "dog"]))
            for _ in range(8)
        ]
        window = rng.choice([0.5, 1.0, 3.0])
        got = [link["word_start"] for link in link_points(points, phrases, window)]
        assert got == [brute_link(p, phrases, window) for p in points], trial


def brute_link(point: dict[str, Any], phrases: list[Phrase], window: float) -> int | None:
    def distance(phrase: Phrase) -> float:
        t = point["t"]
        return 0.0 if phrase.start <= t <= phrase.end else min(abs(t - phrase.start), abs(t - phrase.end))

    label = (point["label"] or "").casefold() or None
    for wanted in ([label] if label else []) + [None]:
        group = [
            p
            for p in phrases
            if (p.label.casefold() if p.label else None) == wanted and distance(p) <= window
        ]
        if group:
            nearest = min(distance(p) for p in group)
            return next(p.word_start for p in group if distance(p) == nearest)  # a tie: the earlier
    return None
