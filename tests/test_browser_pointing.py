"""Pointing on the annotator's page (issue 13), in a real Chromium whose microphone is a WAV file, against
the real app over HTTP (SQLite; the upload's checks are tested on both databases by the API tests).

narrate: mouse moves and clicks over a zoomed and panned image while the fake microphone speaks; the
stored trace must lie on the path the mouse took, in image coordinates, sampled at 20 Hz or more and
timed inside the take. point: touch taps on a phone, with undo, remove, a dragged marker and "None in
this image"; the stored points are the ones left on screen. A re-recorded take's trace is discarded.
An EXIF-rotated photo maps the pointer to the picture as seen. Screenshots land in
tests/support/browser.SCREENSHOTS.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from PIL import ImageDraw, ImageOps
from sqlalchemy import select

from annotate.services.ingest import ingest_bytes
from db.models import Image, PointSet, ProjectMode, Recording, Trace
from tests.support.browser import (
    DESKTOP,
    PHONE,
    logged_in_page,
    module_browser,
    policy_problems,
    shot,
)
from tests.support.databases import sqlite_url
from tests.test_assignments import add_images, make_project

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse"
# The decoded take may end before the browser's clock stops: by up to one 20 ms Opus frame on an idle
# machine, by ~0.1 s when the test machine is busy (intake allows VOICECAP_POINTING_TIME_TOLERANCE_SECONDS).
LAST_FRAME_S = 0.15
ON_PATH_PX = 2.0  # a sample may sit this far from the path the mouse took (sub-pixel events, rounding)

RECTS = """() => {
  const i = document.getElementById('image').getBoundingClientRect();
  const v = document.getElementById('viewport').getBoundingClientRect();
  return {left: i.left, top: i.top, width: i.width, height: i.height,
          vleft: v.left, vtop: v.top, vright: v.right, vbottom: v.bottom};
}"""


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


browser = module_browser()


def pointing_project(session, blobs, make_user, mode: str, labels: list[str] | None = None, images: int = 2):
    project = make_project(session, name=f"{mode} scenes", min_seconds=2, max_seconds=30)
    project.mode = ProjectMode(mode)
    project.labels = labels or []
    if images:
        add_images(session, blobs, project, images)
    make_user("ann", password=PASSWORD)
    session.commit()
    return project


def open_task(browser, server: str, screen: dict) -> Any:
    page = logged_in_page(browser, server, "ann", PASSWORD, **screen)
    page.goto(f"{server}/task")
    page.wait_for_function("document.body.dataset.state === 'idle'")
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")
    return page


def rects(page) -> dict[str, float]:
    return dict(page.evaluate(RECTS))


def to_image(rect: dict[str, float], x: float, y: float) -> tuple[float, float]:
    return (x - rect["left"]) / rect["width"], (y - rect["top"]) / rect["height"]


def to_screen(rect: dict[str, float], x: float, y: float) -> tuple[float, float]:
    return rect["left"] + x * rect["width"], rect["top"] + y * rect["height"]


def glide(
    page, path: list[tuple[float, float]], step_px: float = 8.0, pause_ms: int = 10
) -> list[tuple[float, float]]:
    """Move the mouse along `path` a few px at a time, at a person's pace; returns every position."""
    visited = [path[0]]
    page.mouse.move(*path[0])
    for (x0, y0), (x1, y1) in itertools.pairwise(path):
        steps = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / step_px))
        for k in range(1, steps + 1):
            at = (x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps)
            page.mouse.move(*at)
            visited.append(at)
            page.wait_for_timeout(pause_ms)
    return visited


def distance_to_path(point: tuple[float, float], path: list[tuple[float, float]]) -> float:
    px, py = point
    best = math.inf
    for (ax, ay), (bx, by) in itertools.pairwise(path):
        dx, dy = bx - ax, by - ay
        length = dx * dx + dy * dy
        u = 0.0 if length == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length))
        best = min(best, math.hypot(px - (ax + u * dx), py - (ay + u * dy)))
    return best


def start_recording(page) -> None:
    page.keyboard.press("Space")
    page.wait_for_function("document.body.dataset.state === 'recording'")


def stop_recording(page) -> None:
    page.keyboard.press("Space")
    page.wait_for_function("document.body.dataset.state === 'take'", timeout=10_000)


def submit_and_wait(page) -> None:
    first = page.get_attribute("#image", "data-image-id")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "prev => document.body.dataset.state === 'done' || (document.body.dataset.state === 'idle' && "
        "document.getElementById('image').dataset.imageId !== prev)",
        arg=first,
        timeout=30_000,
    )


def stored(session) -> tuple[Recording, Trace | None, PointSet | None]:
    session.expire_all()
    recording = session.scalars(select(Recording)).one()
    trace = session.scalar(select(Trace).where(Trace.recording_id == recording.id))
    points = session.scalar(select(PointSet).where(PointSet.recording_id == recording.id))
    session.commit()  # end the read: SQLite's BEGIN IMMEDIATE would block the server's writes
    return recording, trace, points


# narrate at 1440x900: zoom in, pan, then trace and click while speaking.
def test_narrate_trace_lies_on_the_mouse_path_of_a_zoomed_panned_image(
    browser, server, session, blobs, make_user
) -> None:
    pointing_project(session, blobs, make_user, "narrate")
    page = open_task(browser, server, DESKTOP)
    assert page.is_visible("#pointing")
    fitted = rects(page)
    page.click("#zoom-in")
    page.click("#zoom-in")
    view = rects(page)
    middle = ((view["vleft"] + view["vright"]) / 2, (view["vtop"] + view["vbottom"]) / 2)
    page.mouse.move(*middle)
    page.mouse.down()
    page.mouse.move(middle[0] - 140, middle[1] - 70, steps=10)  # a drag pans, it is no click
    page.mouse.up()
    rect = rects(page)
    assert rect["width"] > 1.5 * fitted["width"], "two zoom-ins make the image about 1.56x as large"
    # The visible part of the image, 12 px in from its edges.
    left, right = (
        max(rect["left"], rect["vleft"]) + 12,
        min(rect["left"] + rect["width"], rect["vright"]) - 12,
    )
    top, bottom = max(rect["top"], rect["vtop"]) + 12, min(rect["top"] + rect["height"], rect["vbottom"]) - 12
    assert right - left > 300 and bottom - top > 200
    assert rect["left"] < rect["vleft"] or rect["top"] < rect["vtop"], "the image is not panned past the edge"

    def at(fx: float, fy: float) -> tuple[float, float]:
        return left + fx * (right - left), top + fy * (bottom - top)

    page.mouse.move(*at(0.1, 0.2))
    page.mouse.move(*at(0.5, 0.5))  # moves before recording are not kept
    page.mouse.move(*at(0.1, 0.2))
    start_recording(page)
    page.wait_for_timeout(300)  # resting: still sampled
    began = time.monotonic()
    stroke1 = glide(page, [at(0.1, 0.2), at(0.9, 0.3), at(0.5, 0.9)])
    moved_for = time.monotonic() - began
    shot(page, "pointing-narrate-1440x900-tracing")
    # Out of the viewport (over the side panel) and back: a second stroke.
    outside = (view["vright"] + 40, (view["vtop"] + view["vbottom"]) / 2)
    exit_path = glide(page, [at(0.5, 0.9), (at(1.0, 0.9)[0] + 12, at(1.0, 0.9)[1]), outside], step_px=20)
    page.wait_for_timeout(200)
    stroke2 = glide(page, [at(0.3, 0.6), at(0.6, 0.6)])
    clicks = [at(0.6, 0.6), at(0.25, 0.35)]
    for click in clicks:
        page.mouse.move(*click)
        page.mouse.click(*click)
        page.wait_for_timeout(150)
    stop_recording(page)
    shot(page, "pointing-narrate-1440x900-take")
    glide(page, [at(0.2, 0.2), at(0.8, 0.8)], step_px=30)  # after the take: not kept
    assert page.inner_text("#pointing-status").startswith("Traced")
    submit_and_wait(page)

    recording, trace, point_set = stored(session)
    assert trace is not None and point_set is not None
    segments = trace.segments
    assert trace.sample_count == sum(len(s) for s in segments)
    assert len(segments) >= 2, "leaving the image ends a stroke"
    path = stroke1 + exit_path + [stroke2[0]] + stroke2 + clicks
    samples = [sample for segment in segments for sample in segment]
    times = [t for _, _, t in samples]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[0] >= 0 and times[-1] <= recording.duration_seconds + LAST_FRAME_S
    for x, y, _ in samples:
        assert 0 <= x <= 1 and 0 <= y <= 1
        miss = distance_to_path(to_screen(rect, x, y), path)
        assert miss <= ON_PATH_PX, f"sample ({x}, {y}) is {miss:.1f} px from where the mouse went"
    # The first stroke: from the resting start to the end of the glide, at 20 Hz or more throughout.
    first = segments[0]
    assert distance_to_path(to_screen(rect, *first[0][:2]), [at(0.1, 0.2)] * 2) <= ON_PATH_PX
    end = at(0.5, 0.9)
    assert any(math.dist(to_screen(rect, x, y), end) <= ON_PATH_PX for x, y, _ in first)
    span = first[-1][2] - first[0][2]
    assert len(first) / span >= 20, f"{len(first)} samples in {span:.2f} s"
    # Steady, not bursts: a rare long gap is the page's main thread stalling on a busy test machine.
    gaps = [b[2] - a[2] for a, b in itertools.pairwise(first)]
    assert sum(gap > 0.1 for gap in gaps) <= len(gaps) / 20, sorted(gaps)[-10:]
    assert span >= moved_for + 0.2  # the rest before the glide is in it too
    # The clicks are points (no label), where the mouse clicked, timed inside the take.
    assert len(point_set.points) == 2
    for point, click in zip(point_set.points, clicks, strict=True):
        expected = to_image(rect, *click)
        assert point["label"] is None
        assert abs(point["x"] - expected[0]) < 2e-4 and abs(point["y"] - expected[1]) < 2e-4
        assert 0 < point["t"] <= recording.duration_seconds
    assert point_set.points[0]["t"] < point_set.points[1]["t"]
    assert point_set.absent_labels == []
    assert page.errors == []


# A re-recorded take starts clean: the first take's trace and points are never sent.
def test_rerecorded_take_discards_its_trace(browser, server, session, blobs, make_user) -> None:
    pointing_project(session, blobs, make_user, "narrate")
    page = open_task(browser, server, DESKTOP)
    rect = rects(page)

    def at(fx: float, fy: float) -> tuple[float, float]:
        return to_screen(rect, fx, fy)

    start_recording(page)
    glide(page, [at(0.6, 0.6), at(0.9, 0.9)])
    page.mouse.click(*at(0.8, 0.8))
    page.wait_for_timeout(1500)
    stop_recording(page)
    page.mouse.move(rect["vright"] + 50, rect["vtop"] + 5)
    page.click("#rerecord")
    page.wait_for_function("document.body.dataset.state === 'recording'")
    glide(page, [at(0.1, 0.1), at(0.4, 0.4)])
    page.wait_for_timeout(1500)
    page.mouse.move(rect["vright"] + 50, rect["vtop"] + 5)
    stop_recording(page)
    submit_and_wait(page)

    recording, trace, point_set = stored(session)
    assert trace is not None and trace.sample_count > 10
    for x, y, t in (sample for segment in trace.segments for sample in segment):
        assert x <= 0.401 and y <= 0.401, "a sample of the discarded take was sent"
        assert t <= recording.duration_seconds + LAST_FRAME_S
    assert point_set is not None and point_set.points == []
    assert page.errors == []


def touch_drag(page, start: tuple[float, float], end: tuple[float, float], steps: int = 12) -> None:
    cdp = page.context.new_cdp_session(page)

    def send(kind: str, points: list[tuple[float, float]]) -> None:
        cdp.send(
            "Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y} for x, y in points]}
        )

    send("touchStart", [start])
    for k in range(1, steps + 1):
        send(
            "touchMove",
            [(start[0] + (end[0] - start[0]) * k / steps, start[1] + (end[1] - start[1]) * k / steps)],
        )
        page.wait_for_timeout(16)
    send("touchEnd", [])
    cdp.detach()


def pinch(page, centre: tuple[float, float], start_gap: float, end_gap: float, steps: int = 10) -> None:
    """Two fingers moving apart (zoom in) or together around `centre`, through CDP touch events."""
    cdp = page.context.new_cdp_session(page)

    def fingers(gap: float) -> list[dict[str, float]]:
        return [
            {"x": centre[0] - gap / 2, "y": centre[1], "id": 1},
            {"x": centre[0] + gap / 2, "y": centre[1], "id": 2},
        ]

    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": fingers(start_gap)})
    for k in range(1, steps + 1):
        gap = start_gap + (end_gap - start_gap) * k / steps
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": fingers(gap)})
        page.wait_for_timeout(16)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def label_count(page, label: str) -> int:
    return int(page.inner_text(f"li[data-label='{label}'] .label-count"))


# point on a 390x844 phone: taps, undo, remove, a dragged marker, "None in this image".
def test_point_mode_taps_on_a_phone(browser, server, session, blobs, make_user) -> None:
    pointing_project(session, blobs, make_user, "point", labels=["boat", "person", "tree"])
    page = open_task(browser, server, PHONE)
    assert page.inner_text("#pointing-status").startswith("3 of 3 labels")
    shot(page, "pointing-point-390x844-idle")

    def spot(fx: float, fy: float) -> tuple[tuple[int, int], tuple[float, float]]:
        """Where (fx, fy) of the image is on screen now (whole CSS px, as a finger lands), and what
        that spot is in image coordinates. Tapping a button may scroll the page, so ask each time."""
        page.locator("#viewport").scroll_into_view_if_needed()
        rect = rects(page)
        x, y = to_screen(rect, fx, fy)
        screen = (round(x), round(y))
        return screen, to_image(rect, *screen)

    def tap_image(fx: float, fy: float) -> tuple[float, float]:
        screen, expected = spot(fx, fy)
        page.touchscreen.tap(*screen)
        page.wait_for_timeout(120)
        return expected

    page.tap("#record")
    page.wait_for_function("document.body.dataset.state === 'recording'")
    page.tap("li[data-label='boat'] .label-pick")
    boat_a = tap_image(0.2, 0.3)
    boat_b = tap_image(0.45, 0.35)
    tap_image(0.7, 0.4)
    assert label_count(page, "boat") == 3
    page.tap("#pointing-undo")  # takes back the third boat
    assert label_count(page, "boat") == 2
    tap_image(0.8, 0.7)
    assert label_count(page, "boat") == 3
    tap_image(0.8, 0.7)  # a tap on a marker selects it ...
    page.tap("#pointing-remove")  # ... and Remove takes it away
    assert label_count(page, "boat") == 2
    page.tap("li[data-label='tree'] .label-pick")
    tap_image(0.3, 0.75)
    page.wait_for_timeout(400)
    page.tap("#record")
    page.wait_for_function("document.body.dataset.state === 'take'", timeout=10_000)
    assert page.is_disabled("#submit"), "submit before every label is answered"
    (start, _), (end, tree_to) = spot(0.3, 0.75), spot(0.55, 0.8)
    touch_drag(page, start, end)  # moved after recording
    assert label_count(page, "tree") == 1
    shot(page, "pointing-point-390x844-unanswered")
    page.tap("li[data-label='person'] .label-none")
    assert page.get_attribute("li[data-label='person'] .label-none", "aria-pressed") == "true"
    assert page.inner_text("#pointing-status") == "Every label is answered."
    assert page.is_enabled("#submit")
    shot(page, "pointing-point-390x844-answered")
    page.tap("#submit")
    page.wait_for_function("document.getElementById('saved').hidden === false", timeout=30_000)

    recording, trace, point_set = stored(session)
    assert point_set is not None and point_set.version == 1
    assert point_set.absent_labels == ["person"]
    expected = [("boat", boat_a), ("boat", boat_b), ("tree", tree_to)]
    assert [p["label"] for p in point_set.points] == [label for label, _ in expected]
    for point, (_, (x, y)) in zip(point_set.points, expected, strict=True):
        assert abs(point["x"] - x) < 2e-4 and abs(point["y"] - y) < 2e-4, (point, x, y)
    boats, tree = point_set.points[:2], point_set.points[2]
    assert all(0 < p["t"] < recording.duration_seconds for p in boats)  # placed while recording
    assert boats[0]["t"] < boats[1]["t"] < tree["t"]
    assert trace is None or trace.segments == []  # point mode traces nothing
    assert page.errors == []


def rotated_jpeg() -> bytes:
    """A 200x300 portrait picture with a red square around (0.25, 0.75), stored as 300x200 landscape
    pixels with EXIF orientation 6 (rotate 90° clockwise to view), as phones save photos."""
    seen = PILImage.new("RGB", (200, 300), (235, 235, 235))
    ImageDraw.Draw(seen).rectangle((30, 205, 70, 245), fill=(220, 0, 0))
    stored = seen.transpose(PILImage.Transpose.ROTATE_90)  # what the camera wrote
    exif = PILImage.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    check = ImageOps.exif_transpose(PILImage.open(io.BytesIO(buffer.getvalue())))
    assert check.size == (200, 300) and check.getpixel((50, 225))[0] > 180
    return buffer.getvalue()


# An EXIF-rotated photo: the pointer maps to the picture as seen (and as images.width/height measure it).
def test_exif_rotated_image_maps_correctly(
    browser, server, session, blobs, make_user, engine, settings
) -> None:
    project = pointing_project(session, blobs, make_user, "narrate", images=0)
    summary = ingest_bytes(engine, blobs, settings, project, [("phone-photo.jpg", rotated_jpeg())])
    assert summary.added == 1
    image = session.scalars(select(Image)).one()
    session.commit()
    assert (image.width, image.height) == (200, 300)
    page = open_task(browser, server, DESKTOP)
    natural = page.evaluate(
        "() => { const i = document.getElementById('image'); return [i.naturalWidth, i.naturalHeight]; }"
    )
    assert natural == [200, 300]
    rect = rects(page)
    red = to_screen(rect, 0.25, 0.75)
    pixel = (
        PILImage.open(io.BytesIO(page.screenshot())).convert("RGB").getpixel((round(red[0]), round(red[1])))
    )
    assert pixel[0] > 180 and pixel[1] < 80 and pixel[2] < 80, (
        f"no red square where (0.25, 0.75) is drawn: {pixel}"
    )
    start_recording(page)
    glide(page, [to_screen(rect, 0.2, 0.7), to_screen(rect, 0.3, 0.8)])
    page.mouse.click(*red)
    page.wait_for_timeout(2200)
    page.mouse.move(rect["vright"] + 50, rect["vtop"] + 5)
    stop_recording(page)
    shot(page, "pointing-narrate-exif-rotated")
    submit_and_wait(page)

    _, trace, point_set = stored(session)
    assert point_set is not None
    [point] = point_set.points
    assert abs(point["x"] - 0.25) < 0.004 and abs(point["y"] - 0.75) < 0.004  # within a pixel of the image
    samples = [s for segment in trace.segments for s in segment] if trace else []
    assert samples and all(0.19 <= x <= 0.31 and 0.69 <= y <= 0.81 for x, y, _ in samples)
    assert page.errors == []


READ_OUTBOX = """async () => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("voicecap-outbox", 1);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const items = await new Promise((resolve, reject) => {
    const request = db.transaction("takes").objectStore("takes").getAll();
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  db.close();
  const out = [];
  for (const item of items) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", item.data));
    const sha256 = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
    out.push({uuid: item.uuid, pointing: item.pointing, size: item.data.byteLength, sha256});
  }
  return out;
}"""


# The outbox keeps the pointing JSON beside the audio: after a failed upload and a reload, the retry
# sends the same pair, and what is stored is exactly what was kept.
def test_retry_after_reload_sends_the_same_pointing(browser, server, session, blobs, make_user) -> None:
    pointing_project(session, blobs, make_user, "narrate")
    page = open_task(browser, server, DESKTOP)
    rect = rects(page)
    page.route("**/api/recordings/**", lambda route: route.abort("connectionrefused"))
    start_recording(page)
    glide(page, [to_screen(rect, 0.2, 0.2), to_screen(rect, 0.7, 0.6)])
    page.mouse.click(*to_screen(rect, 0.7, 0.6))
    page.wait_for_timeout(1500)
    stop_recording(page)
    page.keyboard.press("Enter")
    page.wait_for_selector("#outbox-state:has-text('1 take waiting')", timeout=15_000)
    [kept] = page.evaluate(READ_OUTBOX)
    assert kept["pointing"] and json.loads(kept["pointing"])["traces"]

    page.reload()
    page.wait_for_selector("#outbox-state:has-text('1 take waiting')", timeout=15_000)
    assert page.evaluate(READ_OUTBOX) == [kept]  # the same take, the same pointing, after the reload
    page.unroute("**/api/recordings/**")
    page.wait_for_function("document.getElementById('saved').hidden === false", timeout=30_000)

    recording, trace, point_set = stored(session)
    sent = json.loads(kept["pointing"])
    assert recording.client_uuid == kept["uuid"] and recording.size_bytes == kept["size"]
    assert hashlib.sha256(blobs.read_bytes(recording.original_key)).hexdigest() == kept["sha256"]
    assert trace is not None and point_set is not None
    assert trace.segments == sent["traces"]
    assert point_set.points == sent["points"] and len(sent["points"]) == 1
    assert page.evaluate(READ_OUTBOX) == []


# The pointing page under the real Content-Security-Policy (no bypass): only selectors and actions.
def test_point_mode_works_under_the_csp(browser, server, session, blobs, make_user) -> None:
    pointing_project(session, blobs, make_user, "point", labels=["boat"])
    context = browser.new_context(**DESKTOP)
    response = context.request.post(f"{server}/api/auth/login", data={"name": "ann", "password": PASSWORD})
    assert response.ok
    page = context.new_page()
    problems = policy_problems(page)
    page.goto(f"{server}/task")
    page.wait_for_selector("body[data-state='idle'][data-pointing-mode='point']")
    page.wait_for_selector("#image[data-image-id]")
    page.keyboard.press("Space")
    page.wait_for_selector("body[data-state='recording']")
    box = page.locator("#image").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # the one label is picked
    page.wait_for_selector("li[data-label='boat'][data-answered='true']")
    page.wait_for_timeout(2200)
    page.keyboard.press("Space")
    page.wait_for_selector("body[data-state='take']", timeout=10_000)
    assert page.is_enabled("#submit")
    assert problems == []
    context.close()


# narrate on a phone: one finger traces, a tap points, two fingers pinch-zoom (and neither trace nor point).
def test_narrate_with_a_finger_on_a_phone(browser, server, session, blobs, make_user) -> None:
    pointing_project(session, blobs, make_user, "narrate")
    page = open_task(browser, server, PHONE)
    page.tap("#record")
    page.wait_for_function("document.body.dataset.state === 'recording'")
    page.locator("#viewport").scroll_into_view_if_needed()
    rect = rects(page)
    start, end = to_screen(rect, 0.2, 0.3), to_screen(rect, 0.8, 0.6)
    touch_drag(page, start, end, steps=40)
    tap = to_screen(rect, 0.5, 0.8)
    page.touchscreen.tap(*tap)
    page.wait_for_timeout(200)
    zoom_before = page.inner_text("#zoom-level")
    pinch(page, to_screen(rect, 0.5, 0.5), 60, 160)
    assert int(page.inner_text("#zoom-level").rstrip("%")) > int(zoom_before.rstrip("%")), (
        "the pinch zooms in"
    )
    page.wait_for_timeout(1500)
    page.tap("#record")
    page.wait_for_function("document.body.dataset.state === 'take'", timeout=10_000)
    shot(page, "pointing-narrate-390x844-take")
    page.tap("#submit")
    page.wait_for_function("document.getElementById('saved').hidden === false", timeout=30_000)

    recording, trace, point_set = stored(session)
    assert trace is not None and point_set is not None
    finger = trace.segments[0]
    assert len(finger) >= 20
    for x, y, _ in finger:
        assert distance_to_path(to_screen(rect, x, y), [start, end]) <= ON_PATH_PX
    assert math.dist(to_screen(rect, *finger[0][:2]), start) <= ON_PATH_PX
    assert math.dist(to_screen(rect, *finger[-1][:2]), end) <= ON_PATH_PX
    assert len(finger) / (finger[-1][2] - finger[0][2]) >= 20
    # The tap is a point (and a one-sample stroke); the pinch left no point (its first finger, down
    # before the second, may leave one sample).
    [point] = point_set.points
    expected = to_image(rect, *tap)
    assert abs(point["x"] - expected[0]) < 2e-4 and abs(point["y"] - expected[1]) < 2e-4
    assert 0 < point["t"] <= recording.duration_seconds + LAST_FRAME_S
    assert page.errors == []
