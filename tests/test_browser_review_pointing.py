"""The review page with a point-mode take, in a real Chromium against the real app over HTTP.

The take is boats.wav with its real Whisper words; its trace, points and alignment are seeded so every
expected position and time is known: the points are drawn where their coordinates put them on the
displayed (letterboxed, then zoomed) image, the pointer follows the trace as the audio plays and seeks,
a hovered point lights its phrase, a drag and a Delete save version 2 with exact coordinates while
version 1 stays, and a save behind which someone else saved is refused with a message. SQLite only:
the routes underneath are tested on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.models import PointSet, ProjectMode, Recording
from tests.support import factories
from tests.support.browser import PHONE, module_browser, policy_problems, shot
from tests.support.databases import sqlite_url
from tests.support.review_seed import BOATS_WORDS, IMAGES, PASSWORD, add_take

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 600, 400  # coffee.jpg: wider than tall, so the overlay must letterbox like the image
LABELS = ["boat", "tree", "house"]
STEP = 0.05  # 20 Hz


def _stroke(t0: float, t1: float, start: tuple[float, float], end: tuple[float, float]) -> list[list[float]]:
    """A straight stroke at 20 Hz: where it is at time t is a line's worth of arithmetic."""
    n = round((t1 - t0) / STEP)
    return [
        [
            round(start[0] + (end[0] - start[0]) * i / n, 6),
            round(start[1] + (end[1] - start[1]) * i / n, 6),
            round(t0 + i * STEP, 6),
        ]
        for i in range(n + 1)
    ]


# Stroke 1 (0-4 s) runs from (0.1, 0.2) to (0.5, 0.6); the pointer is off the image from 4 to 5 s; stroke 2
# (5-9 s) runs from (0.8, 0.3) to (0.4, 0.3).
SEGMENTS = [_stroke(0.0, 4.0, (0.1, 0.2), (0.5, 0.6)), _stroke(5.0, 9.0, (0.8, 0.3), (0.4, 0.3))]
POINTS = [
    factories.point_values(0.2, 0.7, 2.2, "boat"),
    factories.point_values(0.3, 0.72, 2.3, "boat"),
    factories.point_values(0.42, 0.68, 2.4, "boat"),
    factories.point_values(0.75, 0.25, 5.8, "tree"),
    factories.point_values(0.6, 0.5, 8.3, "house"),
]
WORDS = [w["word"].strip() for w in BOATS_WORDS]
THREE_RED_BOATS = (WORDS.index("three"), WORDS.index("boats"))
TWO_TALL_TREES = (WORDS.index("two"), WORDS.index("trees"))
SMALL_WHITE_HOUSE = (WORDS.index("small"), WORDS.index("house"))


def _word_ranges() -> list[list[int] | None]:
    """Per word, the [first, last] flat trace sample drawn while it was spoken (the alignment's shape)."""
    flat = [sample for stroke in SEGMENTS for sample in stroke]
    ranges: list[list[int] | None] = []
    for word in BOATS_WORDS:
        inside = [i for i, (_, _, t) in enumerate(flat) if word["start"] <= t <= word["end"]]
        ranges.append([inside[0], inside[-1]] if inside else None)
    return ranges


def _link(point: int, phrase: str, words: tuple[int, int], distance: float) -> dict[str, Any]:
    return {
        "point": point,
        "phrase": phrase,
        "word_start": words[0],
        "word_end": words[1],
        "distance_s": distance,
    }


@dataclass
class Take:
    recording: Recording
    lead_id: int
    describe_caption_id: int
    narrate_recording: Recording
    narrate_caption_id: int


# The narrate take: its picture is stored on its side (EXIF orientation 6), so as displayed it is 451x300.
NARRATE_POINTS = [factories.point_values(0.3, 0.4, 1.5), factories.point_values(0.7, 0.6, 6.0)]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


browser = module_browser(mic=None)


@pytest.fixture
def take(session, blobs) -> Take:
    """A point-mode take with trace, version 1 of its points and its alignment (saying "two tall green
    trees" with one tree pointed at: a count mismatch); after it in the queue a describe take, then a
    narrate take (unlabelled points, not aligned yet) on an EXIF-rotated picture."""
    project = factories.add_project(session, "Harbour points", min_seconds=5.0, max_seconds=120.0)
    project.mode = ProjectMode.point
    project.labels = LABELS
    lead = factories.add_user(session, "lena", "lead", PASSWORD)
    ann = factories.add_user(session, "ann", "annotator", PASSWORD)
    picture = IMAGES / "coffee.jpg"
    image = factories.add_image(
        session,
        project,
        blobs=blobs,
        data=picture,
        source="coffee.jpg",
        width=WIDTH,
        height=HEIGHT,
        done_count=1,
    )
    recording, transcript, _ = add_take(session, blobs, image, ann)
    factories.add_trace(session, recording, SEGMENTS)
    points = factories.add_point_set(session, recording, POINTS)
    factories.add_pointing_alignment(
        session,
        transcript,
        points,
        words=_word_ranges(),
        links=[
            _link(0, "three red boats", THREE_RED_BOATS, 0.3),
            _link(1, "three red boats", THREE_RED_BOATS, 0.1),
            _link(2, "three red boats", THREE_RED_BOATS, 0.0),
            _link(3, "two tall green trees", TWO_TALL_TREES, 0.1),
            _link(4, "a small white house", SMALL_WHITE_HOUSE, 0.0),
        ],
        counts=[
            {"phrase": "three red boats", "label": "boat", "spoken": 3, "pointed": 3, "agrees": True},
            {"phrase": "two tall green trees", "label": "tree", "spoken": 2, "pointed": 1, "agrees": False},
        ],
        count_mismatch=True,
    )
    plain = factories.add_project(session, "Plain", min_seconds=5.0, max_seconds=120.0)
    other = factories.add_image(
        session, plain, blobs=blobs, data=IMAGES / "rocket.jpg", source="rocket.jpg", width=640, height=427
    )
    _, _, describe_caption = add_take(session, blobs, other, ann)
    narrate = factories.add_project(session, "Narrated", min_seconds=5.0, max_seconds=120.0)
    narrate.mode = ProjectMode.narrate
    rotated = IMAGES / "chelsea_exif_rotated.jpg"
    cat = factories.add_image(
        session, narrate, blobs=blobs, data=rotated, source=rotated.name, width=451, height=300, done_count=1
    )
    narrated, _, narrate_caption = add_take(session, blobs, cat, ann)
    factories.add_trace(session, narrated, SEGMENTS)
    factories.add_point_set(session, narrated, NARRATE_POINTS)
    session.commit()
    return Take(
        recording=recording,
        lead_id=lead.id,
        describe_caption_id=describe_caption.id,
        narrate_recording=narrated,
        narrate_caption_id=narrate_caption.id,
    )


@pytest.fixture
def page(browser, server, take) -> Iterator[Any]:
    # wait_for_function evals in the page, which the CSP forbids; test_browser_csp.py runs under it
    context = browser.new_context(viewport={"width": 1400, "height": 950}, bypass_csp=True)
    response = context.request.post(f"{server}/api/auth/login", data={"name": "lena", "password": PASSWORD})
    assert response.ok, response.text()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server}/review")
    page.wait_for_selector("#overlay .pt")
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")
    yield page
    assert errors == []  # no uncaught script error
    context.close()


# Where the image's pixels are on screen: the <img> box letterboxed by object-fit: contain, computed from
# the image alone (not from the overlay under test).
IMAGE_BOX = """() => {
  const img = document.getElementById('image');
  const r = img.getBoundingClientRect();
  const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
  return {left: r.left + (r.width - img.naturalWidth * s) / 2,
          top: r.top + (r.height - img.naturalHeight * s) / 2,
          width: img.naturalWidth * s, height: img.naturalHeight * s};
}"""


def _screen(page, x: float, y: float) -> tuple[float, float]:
    box = page.evaluate(IMAGE_BOX)
    return box["left"] + x * box["width"], box["top"] + y * box["height"]


def _marker_centre(page, index: int) -> tuple[float, float]:
    box = page.locator(f'#overlay .pt[data-index="{index}"] .pt-dot').bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _assert_markers_at(page, points: list[dict[str, Any]]) -> None:
    assert page.locator("#overlay .pt").count() == len(points)
    for index, point in enumerate(points):
        expected = _screen(page, point["x"], point["y"])
        assert _marker_centre(page, index) == pytest.approx(expected, abs=1.0), (index, point)


def _pointer(page) -> dict[str, Any]:
    return page.evaluate(
        """() => { const p = document.getElementById('pointer');
          return {visible: p.getAttribute('visibility') === 'visible',
                  x: Number(p.dataset.x), y: Number(p.dataset.y),
                  t: document.getElementById('audio').currentTime}; }"""
    )


def _trace_at(t: float) -> tuple[float, float] | None:
    for stroke in SEGMENTS:
        if stroke[0][2] <= t <= stroke[-1][2]:
            f = (t - stroke[0][2]) / (stroke[-1][2] - stroke[0][2])
            (x0, y0, _), (x1, y1, _) = stroke[0], stroke[-1]
            return x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
    return None


def _seek(page, t: float) -> None:
    page.evaluate(f"(a => {{ a.pause(); a.currentTime = {t}; }})(document.getElementById('audio'))")
    page.wait_for_function(f"Math.abs(document.getElementById('audio').currentTime - {t}) < 0.001")


def _versions(session, recording_id: int) -> list[PointSet]:
    session.expire_all()
    return list(
        session.scalars(
            select(PointSet).where(PointSet.recording_id == recording_id).order_by(PointSet.version)
        )
    )


def test_points_are_drawn_where_they_are_with_labels_numbers_links_and_the_count_flag(page, take) -> None:
    _assert_markers_at(page, POINTS)
    labels = page.locator("#overlay .pt-tag .pt-label").all_text_contents()
    numbers = page.locator("#overlay .pt .pt-number").all_text_contents()
    assert list(zip(labels, numbers, strict=True)) == [
        ("boat", "1"),
        ("boat", "2"),
        ("boat", "3"),
        ("tree", "1"),
        ("house", "1"),
    ]
    counts = page.locator("#point-counts").inner_text()
    assert "boat 3 points" in counts and "tree 1 point" in counts and "house 1 point" in counts
    flags = page.locator("#point-flags").inner_text()
    assert "count mismatch" in flags and "said 2 for “two tall green trees” but pointed at 1" in flags

    # Hovering a point lights the phrase it is linked to, and only that.
    page.locator('#overlay .pt[data-index="3"] .pt-dot').hover()
    assert page.locator("#transcript .word.linked").all_inner_texts() == ["two", "tall", "green", "trees"]
    assert "tree ↔ “two tall green trees”" in page.locator("#point-status").inner_text()
    page.locator('#overlay .pt[data-index="1"] .pt-dot').hover()
    assert page.locator("#transcript .word.linked").all_inner_texts() == ["three", "red", "boats"]
    # And the other way: a word of a phrase lights its points.
    page.locator("#transcript .word", has_text="trees").hover()
    assert [n.get_attribute("data-index") for n in page.locator("#overlay .pt.hot").all()] == ["3"]

    # The whole trace on demand: one line per stroke.
    assert page.locator("#trace-all").is_hidden()
    page.locator("#trace-toggle").check()
    assert page.locator("#trace-all polyline").count() == 2
    shot(page, "review-pointing-points")

    # Zoomed, the image is larger and the points scale with it.
    before = page.evaluate(IMAGE_BOX)["width"]
    page.locator("#item").focus()
    page.keyboard.press("z")
    page.wait_for_function(f"document.getElementById('image').getBoundingClientRect().width > {before + 50}")
    _assert_markers_at(page, POINTS)
    shot(page, "review-pointing-zoomed")
    page.keyboard.press("Escape")

    # The describe take next in the queue has no points panel.
    page.keyboard.press("j")
    page.wait_for_function(
        f"document.getElementById('item-title').textContent === 'Caption #{take.describe_caption_id}'"
    )
    hidden = "['pointing', 'overlay'].every((id) => document.getElementById(id).hasAttribute('hidden'))"
    page.wait_for_function(hidden)


def test_the_pointer_follows_the_trace_as_the_take_plays_and_seeks(page) -> None:
    page.wait_for_function("document.getElementById('audio').readyState >= 1")
    page.evaluate("document.getElementById('audio').play()")
    page.wait_for_function("document.getElementById('audio').currentTime >= 1.0")
    during = _pointer(page)
    assert during["visible"]
    expected = _trace_at(during["t"])
    assert expected is not None
    # The pointer is drawn on each frame: at most a frame or two behind the clock read after it.
    assert during["x"] == pytest.approx(expected[0], abs=0.02)  # 0.2 s of the stroke at most
    assert during["y"] == pytest.approx(expected[1], abs=0.02)
    shot(page, "review-pointing-playing")

    # Paused at known times: exactly on the trace, with the word being spoken lit.
    _seek(page, 2.0)
    page.wait_for_function("document.getElementById('pointer').dataset.x === '0.3000'")
    assert _pointer(page) == {"visible": True, "x": 0.3, "y": 0.4, "t": pytest.approx(2.0, abs=0.001)}
    assert page.locator("#transcript .word.now").inner_text() == "red"  # 1.94-2.18 s
    # "three red boats" is being said: the three boats it is linked to are lit.
    assert [n.get_attribute("data-index") for n in page.locator("#overlay .pt.spoken").all()] == [
        "0",
        "1",
        "2",
    ]
    # The trace drawn while "red" was spoken: samples 1.95-2.15 s.
    assert page.locator("#trace-word polyline").count() == 1

    _seek(page, 4.6)  # between the strokes: the pointer was off the image
    page.wait_for_function("document.getElementById('pointer').getAttribute('visibility') === 'hidden'")

    _seek(page, 7.0)
    page.wait_for_function("document.getElementById('pointer').dataset.x === '0.6000'")
    assert _pointer(page) == {"visible": True, "x": 0.6, "y": 0.3, "t": pytest.approx(7.0, abs=0.001)}
    assert page.locator("#transcript .word.now").inner_text() == "next"  # 6.88-7.24 s
    assert page.locator("#overlay .pt.spoken").count() == 0
    shot(page, "review-pointing-seeked")


def test_a_drag_and_a_delete_save_version_2_and_keep_version_1(page, take, session) -> None:
    page.locator("#points-edit").click()
    page.wait_for_selector("#point-editor:not([hidden])")
    assert page.locator("#point-save").is_disabled()  # nothing changed yet

    # Drag the second boat to the middle of the image.
    start = _marker_centre(page, 1)
    target = _screen(page, 0.5, 0.5)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 5, start[1] - 5)
    page.mouse.move(*target, steps=8)
    page.mouse.up()
    box = page.evaluate(IMAGE_BOX)
    moved_x = (target[0] - box["left"]) / box["width"]
    moved_y = (target[1] - box["top"]) / box["height"]

    # Select the house and delete it with the Delete key.
    page.locator('#overlay .pt[data-index="4"] .pt-dot').click()
    assert "selected" in (page.locator('#overlay .pt[data-index="4"]').get_attribute("class") or "")
    page.keyboard.press("Delete")
    assert page.locator("#overlay .pt").count() == 4
    assert "house none in this image" in page.locator("#point-counts").inner_text()
    page.locator("#point-note").fill("moved a boat, no house")
    shot(page, "review-pointing-editing")
    page.locator("#point-save").click()
    page.wait_for_function("document.querySelector('#point-versions li.shown button')?.textContent === 'v2'")

    v1, v2 = _versions(session, take.recording.id)
    assert (v1.version, v1.points, v1.absent_labels, v1.created_by) == (1, POINTS, [], None)
    assert v2.version == 2 and v2.created_by == take.lead_id and v2.note == "moved a boat, no house"
    assert v2.absent_labels == ["house"]
    assert [p for i, p in enumerate(v2.points) if i != 1] == [POINTS[0], POINTS[2], POINTS[3]]
    moved = v2.points[1]
    assert (moved["label"], moved["t"]) == ("boat", 2.3)
    # Where the mouse let go, to the pixel; stored with four decimals (a tenth of a pixel here).
    assert moved["x"] == pytest.approx(moved_x, abs=1 / box["width"])
    assert moved["y"] == pytest.approx(moved_y, abs=1 / box["height"])
    assert (round(moved["x"], 4), round(moved["y"], 4)) == (moved["x"], moved["y"])
    _assert_markers_at(page, v2.points)
    assert page.locator("#point-editor").is_hidden()

    # Version 1 stays in the history and can be looked at, read-only.
    history = page.locator("#point-versions").inner_text()
    assert "lena" in history and "moved a boat, no house" in history and "ann (annotator)" in history
    page.locator('#point-versions button[data-version="1"]').click()
    page.wait_for_selector("#pointing-viewing:not([hidden])")
    _assert_markers_at(page, POINTS)
    assert page.locator("#points-edit").is_disabled()
    shot(page, "review-pointing-version-1")
    page.locator("#pointing-viewing button").click()
    _assert_markers_at(page, v2.points)


def test_a_point_added_from_the_keyboard_and_a_stale_save(page, take, session) -> None:
    page.locator("#points-edit").click()
    page.locator("#point-label").select_option("tree")
    page.locator("#point-add").focus()
    page.keyboard.press("Enter")  # from the keyboard: a tree in the middle, selected
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    assert page.locator("#overlay .pt").count() == 6
    _assert_markers_at(page, [*POINTS, {"x": 0.505, "y": 0.55}])

    # Paging away and back (j, k) keeps the unsaved correction, as a caption's draft text is kept.
    page.keyboard.press("j")
    page.wait_for_function("document.getElementById('pointing').hasAttribute('hidden')")
    page.keyboard.press("k")
    page.wait_for_selector("#point-editor:not([hidden])")
    _assert_markers_at(page, [*POINTS, {"x": 0.505, "y": 0.55}])
    assert "unsaved corrections are back" in page.locator("#point-status").inner_text()

    # Someone else saves version 2 while this page corrects version 1.
    factories.add_point_set(session, take.recording, POINTS[:2], version=2, note="meanwhile")
    session.commit()
    page.locator("#point-save").click()
    page.wait_for_selector("#pointing-message:not([hidden])")
    text = page.locator("#pointing-message").inner_text()
    assert "someone else saved a newer version" in text and "now version 2" in text
    assert [s.version for s in _versions(session, take.recording.id)] == [1, 2]  # nothing overwritten
    assert page.locator("#point-editor").is_hidden()
    _assert_markers_at(page, POINTS[:2])  # the newest version is shown
    shot(page, "review-pointing-stale")


def test_a_narrate_take_on_a_rotated_picture_gets_a_point_added_by_a_click(page, take, session) -> None:
    page.goto(page.url.split("?")[0] + f"?caption={take.narrate_caption_id}")
    page.wait_for_function(
        f"document.getElementById('item-title').textContent === 'Caption #{take.narrate_caption_id}'"
    )
    page.wait_for_function("document.getElementById('image').naturalWidth === 451")  # EXIF applied
    page.wait_for_function("document.querySelectorAll('#overlay .pt').length === 2")
    _assert_markers_at(page, NARRATE_POINTS)
    assert page.locator("#overlay .pt-tag .pt-label").all_text_contents() == ["", ""]
    assert page.locator("#overlay .pt .pt-number").all_text_contents() == ["1", "2"]
    assert page.locator("#point-counts").inner_text().strip() == "2 points"
    assert page.locator("#point-flags").inner_text() == ""  # not aligned yet: no flag, nothing to link

    page.locator("#points-edit").click()
    assert page.locator("#point-label option").all_text_contents() == ["(no label)"]
    page.locator("#point-add").click()
    assert page.locator("#point-add").get_attribute("aria-pressed") == "true"
    page.mouse.click(*_screen(page, 0.25, 0.75))
    page.keyboard.press("Escape")  # stop adding (the focus is on the new point)
    assert page.locator("#point-add").get_attribute("aria-pressed") == "false"
    shot(page, "review-pointing-narrate")
    page.locator("#point-save").click()
    page.wait_for_function("document.querySelector('#point-versions li.shown button')?.textContent === 'v2'")

    v1, v2 = _versions(session, take.narrate_recording.id)
    assert v1.points == NARRATE_POINTS
    assert v2.points[:2] == NARRATE_POINTS and v2.absent_labels == [] and v2.created_by == take.lead_id
    added = v2.points[2]
    box = page.evaluate(IMAGE_BOX)
    assert (added["t"], added["label"]) == (None, None)
    assert added["x"] == pytest.approx(0.25, abs=1 / box["width"])
    assert added["y"] == pytest.approx(0.75, abs=1 / box["height"])


def test_the_pointing_view_works_under_the_real_csp(browser, server, take) -> None:
    """No bypass: the overlay, the swatches and the editor need no inline script or style."""
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    response = context.request.post(f"{server}/api/auth/login", data={"name": "lena", "password": PASSWORD})
    assert response.ok, response.text()
    page = context.new_page()
    problems = policy_problems(page)
    page.goto(f"{server}/review")
    page.wait_for_selector("#overlay .pt")  # only selectors and actions: eval is what the CSP forbids
    assert page.locator("#overlay .pt").count() == len(POINTS)
    page.locator("#trace-toggle").check()
    page.wait_for_selector("#trace-all polyline")
    page.locator("#points-edit").click()
    page.wait_for_selector("#point-editor:not([hidden])")
    page.locator('#overlay .pt[data-index="0"]').focus()
    page.keyboard.press("ArrowDown")
    page.wait_for_selector("#point-save:not([disabled])")
    context.close()
    assert problems == []


def test_on_a_phone_the_points_fit_the_image_and_a_tap_adds_one(browser, server, take, session) -> None:
    context = browser.new_context(**{**PHONE, "bypass_csp": True})
    response = context.request.post(f"{server}/api/auth/login", data={"name": "lena", "password": PASSWORD})
    assert response.ok, response.text()
    page = context.new_page()
    page.goto(f"{server}/review")
    page.wait_for_selector("#overlay .pt")
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")
    page.locator("#image").scroll_into_view_if_needed()
    _assert_markers_at(page, POINTS)
    page.locator("#points-edit").tap()
    page.locator("#point-label").select_option("house")
    page.locator("#point-add").tap()
    # Centred, so the tap is not under the sticky top bar.
    page.evaluate("document.getElementById('image').scrollIntoView({block: 'center'})")
    page.touchscreen.tap(*_screen(page, 0.9, 0.1))
    assert page.locator("#overlay .pt").count() == len(POINTS) + 1
    shot(page, "review-pointing-phone", full_page=True)
    page.locator("#point-save").tap()
    page.wait_for_function("document.querySelector('#point-versions li.shown button')?.textContent === 'v2'")
    added = _versions(session, take.recording.id)[1].points[-1]
    box = page.evaluate(IMAGE_BOX)
    assert (added["label"], added["t"]) == ("house", None)
    assert added["x"] == pytest.approx(0.9, abs=1 / box["width"])
    assert added["y"] == pytest.approx(0.1, abs=1 / box["height"])
    context.close()
