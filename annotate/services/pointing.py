"""A take's pointing data (traces and points) read from JSON into typed values, and checked.

Pure: no sessions, no files. Intake calls it in two steps, because the time checks need the take's
decoded duration: `parse_pointing` (size, JSON, shape, coordinates, order, caps) and `check_labels`
before any audio is stored, `check_times` after decoding. Reviewer corrections go through
`parse_points` and the same checks. Every refusal is a PointingRejected with a stable code (the
wire format and the codes are in docs/architecture.md, "Pointing: narrate and point modes").
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from annotate.errors import InvalidInput, VoicecapError
from db.models import ProjectMode

WIRE_VERSION = 1
MAX_LABEL_CHARS = 200


class PointingRejected(VoicecapError):
    """Pointing data we will not store; nothing of the take is kept."""

    code = "pointing_malformed"
    status = 422


@dataclass(frozen=True)
class PointingLimits:
    max_points: int
    max_trace_samples: int
    max_bytes: int
    time_tolerance_seconds: float


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    t: float | None  # seconds on the take's audio clock; None for a point a reviewer added
    label: str | None  # None in narrate mode

    def to_json(self) -> dict[str, Any]:
        return {"x": self.x, "y": self.y, "t": self.t, "label": self.label}


Sample = tuple[float, float, float]  # x, y, t


@dataclass(frozen=True)
class Pointing:
    traces: tuple[tuple[Sample, ...], ...]
    points: tuple[Point, ...]
    absent_labels: tuple[str, ...]

    @property
    def sample_count(self) -> int:
        return sum(len(stroke) for stroke in self.traces)

    def segments_json(self) -> list[list[list[float]]]:
        return [[list(sample) for sample in stroke] for stroke in self.traces]

    def points_json(self) -> list[dict[str, Any]]:
        return [point.to_json() for point in self.points]


def limits_from(settings: Any) -> PointingLimits:
    """The caps from the settings object (typed loosely so this module needs nothing but the values)."""
    return PointingLimits(
        max_points=settings.pointing_max_points,
        max_trace_samples=settings.pointing_max_trace_samples,
        max_bytes=settings.pointing_max_kb * 1024,
        time_tolerance_seconds=settings.pointing_time_tolerance_seconds,
    )


# ------------------------------------------------------------------------------------------ parsing


def parse_pointing(raw: bytes, limits: PointingLimits) -> Pointing:
    """The upload's `pointing` part: {"version": 1, "traces", "points", "absent_labels"}."""
    if len(raw) > limits.max_bytes:
        raise too_large(limits)
    data = _load_json(raw)
    if not isinstance(data, dict):
        raise _malformed("the pointing data must be a JSON object")
    unknown = set(data) - {"version", "traces", "points", "absent_labels"}
    if unknown:
        raise _malformed(f"unknown field(s) {', '.join(sorted(map(repr, unknown)))}")
    if data.get("version", WIRE_VERSION) != WIRE_VERSION:
        raise _malformed(f"version {data.get('version')!r} is not understood; send version {WIRE_VERSION}")
    traces = _traces(data.get("traces", []), limits)
    points = _points(data.get("points", []), limits, timed=True, where="points")
    absent = _labels(data.get("absent_labels", []), "absent_labels")
    return Pointing(traces=traces, points=points, absent_labels=absent)


def parse_points(
    points: Any, absent_labels: Any, limits: PointingLimits
) -> tuple[tuple[Point, ...], tuple[str, ...]]:
    """A reviewer's corrected points: the same shape, but a point may have t null (added in review)."""
    return _points(points, limits, timed=False, where="points"), _labels(absent_labels, "absent_labels")


def too_large(limits: PointingLimits) -> PointingRejected:
    return PointingRejected(
        f"The pointing data is larger than the limit of {limits.max_bytes // 1024} KB.",
        code="pointing_too_large",
        status=413,
    )


def _load_json(raw: bytes) -> Any:
    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=refuse_constant)
    except UnicodeDecodeError:
        raise _malformed("the pointing data is not UTF-8 text") from None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise _malformed(f"the pointing data is not valid JSON ({exc})") from None
    except RecursionError:
        raise _malformed("the pointing data is nested too deeply") from None


def _traces(value: Any, limits: PointingLimits) -> tuple[tuple[Sample, ...], ...]:
    if not isinstance(value, list):
        raise _malformed("traces must be a list of strokes")
    total = sum(len(stroke) for stroke in value if isinstance(stroke, list))
    if total > limits.max_trace_samples:
        raise PointingRejected(
            f"The trace has {total} samples; at most {limits.max_trace_samples} are accepted.",
            code="pointing_too_many_samples",
        )
    strokes: list[tuple[Sample, ...]] = []
    previous_end: float | None = None
    for s, stroke in enumerate(value):
        if not isinstance(stroke, list) or not stroke:
            raise _malformed(f"traces[{s}] must be a non-empty list of [x, y, t] samples")
        samples: list[Sample] = []
        for i, sample in enumerate(stroke):
            where = f"traces[{s}][{i}]"
            if not isinstance(sample, list) or len(sample) != 3:
                raise _malformed(f"{where} must be [x, y, t]")
            x, y, t = (_number(v, where) for v in sample)
            _check_inside(x, y, where)
            if samples and t <= samples[-1][2]:
                raise PointingRejected(
                    f"{where} is timed {t:g} s, not after the sample before it ({samples[-1][2]:g} s).",
                    code="pointing_not_monotonic",
                )
            samples.append((x, y, t))
        if previous_end is not None and samples[0][2] < previous_end:
            raise PointingRejected(
                f"traces[{s}] starts at {samples[0][2]:g} s, before the stroke before it ended "
                f"({previous_end:g} s); strokes must be in time order.",
                code="pointing_not_monotonic",
            )
        previous_end = samples[-1][2]
        strokes.append(tuple(samples))
    return tuple(strokes)


def _points(value: Any, limits: PointingLimits, *, timed: bool, where: str) -> tuple[Point, ...]:
    if not isinstance(value, list):
        raise _malformed(f"{where} must be a list")
    if len(value) > limits.max_points:
        raise PointingRejected(
            f"There are {len(value)} points; at most {limits.max_points} are accepted.",
            code="pointing_too_many_points",
        )
    points: list[Point] = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise _malformed(f"{at} must be an object {{x, y, t, label}}")
        unknown = set(item) - {"x", "y", "t", "label"}
        if unknown:
            raise _malformed(f"{at} has unknown field(s) {', '.join(sorted(map(repr, unknown)))}")
        if "x" not in item or "y" not in item:
            raise _malformed(f"{at} needs x and y")
        x, y = _number(item["x"], at), _number(item["y"], at)
        _check_inside(x, y, at)
        raw_t = item.get("t")
        if raw_t is None and timed:
            raise _malformed(f"{at} needs t, the time of the point in seconds")
        t = None if raw_t is None else _number(raw_t, at)
        label = item.get("label")
        if label is not None:
            label = _label(label, f"{at}.label")
        points.append(Point(x=x, y=y, t=t, label=label))
    return tuple(points)


def _labels(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _malformed(f"{where} must be a list of labels")
    labels = [_label(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return tuple(dict.fromkeys(labels))


def _label(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_LABEL_CHARS:
        raise _malformed(f"{where} must be a non-empty label of at most {MAX_LABEL_CHARS} characters")
    return " ".join(value.split())  # as normalize_labels keeps a project's labels


def _number(value: Any, where: str) -> float:
    # bool is an int in Python, and true is no coordinate; JSON integers may be too big for a float.
    if not isinstance(value, bool) and isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise _malformed(f"{where} holds {json.dumps(value)[:40]}, not a number")


def _check_inside(x: float, y: float, where: str) -> None:
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise PointingRejected(
            f"{where} is at ({x:g}, {y:g}), outside the image (x and y run from 0 to 1).",
            code="pointing_out_of_image",
        )


def _malformed(detail: str) -> PointingRejected:
    return PointingRejected(f"The pointing data is malformed: {detail}.", code="pointing_malformed")


# ------------------------------------------------------------------------------------------- checks


def check_expected(mode: ProjectMode, present: bool) -> None:
    """Pointing data goes with narrate and point takes, never with describe ones."""
    if mode is ProjectMode.describe and present:
        raise PointingRejected(
            "This project takes spoken descriptions only; send the take without pointing data.",
            code="pointing_not_expected",
        )
    if mode is not ProjectMode.describe and not present:
        raise PointingRejected(
            f"This is a {mode.value} project: a take must come with its pointing data (a multipart "
            "upload with a `pointing` part).",
            code="pointing_missing",
        )


def check_labels(
    mode: ProjectMode,
    labels: Sequence[str],
    points: Sequence[Point],
    absent_labels: Sequence[str],
) -> None:
    """Labels must be the image's; in point mode every label is answered (points, or absent)."""
    asked = set(labels)
    for i, point in enumerate(points):
        if point.label is None:
            if mode is ProjectMode.point:
                raise _malformed(f"points[{i}] needs a label (one of {_listing(labels)})")
        elif point.label not in asked:
            raise PointingRejected(
                f"points[{i}] is labelled {point.label!r}, which this image does not ask for "
                f"({_listing(labels)}).",
                code="pointing_unknown_label",
            )
    for label in absent_labels:
        if label not in asked:
            raise PointingRejected(
                f"absent_labels names {label!r}, which this image does not ask for ({_listing(labels)}).",
                code="pointing_unknown_label",
            )
    pointed = {point.label for point in points if point.label is not None}
    both = sorted(pointed & set(absent_labels))
    if both:
        raise _malformed(f"{_listing(both)} pointed at and also marked as not in the image")
    if mode is ProjectMode.point:
        unanswered = [label for label in labels if label not in pointed and label not in absent_labels]
        if unanswered:
            raise PointingRejected(
                f"Point at every {_listing(unanswered)} in the image, or mark it as not there.",
                code="pointing_incomplete",
            )


def check_times(
    traces: Sequence[Sequence[Sample]], points: Sequence[Point], duration: float, tolerance: float
) -> None:
    """Every time lies on the take's clock: from -tolerance to its duration + tolerance."""
    low, high = -tolerance, duration + tolerance
    for s, stroke in enumerate(traces):
        # Strokes are checked in order and increase, so the first and last sample bound the stroke.
        for i in (0, len(stroke) - 1):
            t = stroke[i][2]
            if not low <= t <= high:
                raise _outside(f"traces[{s}][{i}]", t, duration)
    for i, point in enumerate(points):
        if point.t is not None and not low <= point.t <= high:
            raise _outside(f"points[{i}]", point.t, duration)


def _outside(where: str, t: float, duration: float) -> PointingRejected:
    return PointingRejected(
        f"{where} is timed {t:g} s, outside the take (0 to {duration:.2f} s).",
        code="pointing_time_outside_take",
    )


def _listing(labels: Sequence[str]) -> str:
    return ", ".join(repr(label) for label in labels) or "no labels"


def effective_labels(image_labels: Sequence[str] | None, project_labels: Sequence[str]) -> list[str]:
    """What an image asks to point at: its own labels (from the ingest manifest), else the project's."""
    return [str(label) for label in (image_labels if image_labels is not None else project_labels)]


def normalize_labels(values: Sequence[Any], where: str = "labels") -> list[str]:
    """Labels as a project or image keeps them: trimmed, inner whitespace collapsed, blanks dropped,
    duplicates dropped (first kept). A label that is not text, or too long, is InvalidInput."""
    out: dict[str, None] = {}
    for value in values:
        if not isinstance(value, str):
            raise InvalidInput(f"{where}: every label must be text, not {json.dumps(value)[:40]}.")
        label = " ".join(value.split())
        if len(label) > MAX_LABEL_CHARS:
            raise InvalidInput(f"{where}: the label {label[:40]!r}… is over {MAX_LABEL_CHARS} characters.")
        if label:
            out[label] = None
    return list(out)
