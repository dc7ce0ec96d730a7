"""Points and traces as datasets write them: PixMo-Points' per-label groups, Molmo's point text, Localized
Narratives' traces. Pure functions of stored values; records.py reads them, rows.py and the formats call
these.

Stored: a point is {x, y, t, label} with x and y in 0..1 of the image as displayed; a trace is strokes of
[x, y, t]. Exported:

- `points` (PixMo-Points' shape): per label one group {label, points: [{x, y}], count,
  collection_method, recording_id}, x and y in percent of width and height rounded to one decimal (as
  Molmo's loader reads PixMo-Points: `point_scale=100`), count = number of points; a label answered
  "none in this image" is a group with count 0. collection_method is "pointing" for a labelled point
  (point mode) and "narrate" for a click while narrating (narrate mode: such points have no label).
- `points_text`: Molmo's `points_to_text` (allenai/molmo, olmo/data/data_formatter.py): one point is
  `<point x="12.3" y="45.6" alt="deck chair">deck chair</point>`, several are `<points x1=".." y1=".."
  x2=".." y2=".." alt="..">..</points>`, points sorted by x then y, one line per labelled group with
  points. Unlabelled (narrate) points have no referring expression and are left out of it.
- `traces` (Localized Narratives): a list of strokes, each a list of {x, y, t}, x and y in 0..1.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import escape
from typing import Any

try:  # the stored renderings are written as the export writes its rows: compact UTF-8 JSON
    from orjson import dumps as _orjson_dumps
    from orjson import loads as _loads

    def dumps_text(value: Any) -> str:
        return _orjson_dumps(value).decode()

except ImportError:  # pragma: no cover - orjson is optional
    import json
    from json import loads as _loads

    def dumps_text(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


POINTING, NARRATE = "pointing", "narrate"
PIXMO_POINTS = "pixmo-points"  # the export format: PixMo-Points' rows, one per (image, label, take)


def percent(value: Any) -> float:
    """0..1 of the image -> percent, one decimal (Python's round, as Molmo rounds)."""
    return round(float(value) * 100.0, 1)


def take_points(
    points: list[Any], absent: list[Any], recording_id: int, text_lines: list[str]
) -> list[dict[str, Any]]:
    """One take's current point set as PixMo-Points groups: labels in the order first pointed at, then
    the labels answered "none" (count 0), each once; appends the take's Molmo lines (`points_text`, one
    per labelled group with points, in group order) to text_lines. One pass over the stored points for
    both, as it runs for every exported take; the same values as label_groups and points_text."""
    by_label: dict[Any, tuple[list[dict[str, float]], list[tuple[float, float]]]] = {}
    for point in points:
        label = point.get("label")
        x = round(point["x"] * 100.0, 1)  # as percent()
        y = round(point["y"] * 100.0, 1)
        same = by_label.get(label)
        if same is None:
            by_label[label] = ([{"x": x, "y": y}], [(x, y)])
        else:
            same[0].append({"x": x, "y": y})
            same[1].append((x, y))
    groups = []
    for label, (placed, coordinates) in by_label.items():
        groups.append(
            {
                "label": label,
                "points": placed,
                "count": len(placed),
                "collection_method": NARRATE if label is None else POINTING,
                "recording_id": recording_id,
            }
        )
        if label is not None:
            text_lines.append(_molmo_line(coordinates, label))
    for label in absent:
        if label not in by_label:
            by_label[label] = ([], [])
            groups.append(
                {
                    "label": label,
                    "points": [],
                    "count": 0,
                    "collection_method": POINTING,
                    "recording_id": recording_id,
                }
            )
    return groups


def point_set_export(points: list[Any], absent: list[Any], recording_id: int) -> tuple[str, str | None]:
    """A point set as the export writes it, stored beside it at write time (point_sets.export_groups and
    points_text) so an export passes it through instead of rebuilding it per take: its groups as compact
    JSON, and its Molmo lines joined by newlines (None: no labelled points). A change to what take_points
    writes needs a migration that recomputes the stored columns (as 0010 filled them)."""
    lines: list[str] = []
    groups = take_points(points, absent, recording_id, lines)
    return dumps_text(groups), "\n".join(lines) if lines else None


def label_groups(points: list[Any], absent: list[Any], recording_id: int) -> list[dict[str, Any]]:
    """One take's current point set as PixMo-Points groups (take_points without the Molmo text)."""
    return take_points(points, absent, recording_id, [])


@lru_cache(maxsize=4096)
def _attribute_and_text(label: str) -> tuple[str, str]:
    """A label escaped for the alt attribute and for the element's text (labels repeat: cached)."""
    return escape(label), escape(label, quote=False)


def molmo_points(points: list[dict[str, float]], label: str) -> str:
    """Molmo's rendering of one label's points (in percent), as its data formatter writes them: rounded to
    one decimal and sorted by x * 10000 + y, which for percentages is by x, then y."""
    return _molmo_line([(round(p["x"], 1), round(p["y"], 1)) for p in points], label)


# "%0.1f" of every one-decimal percentage in 0.1..100.0 (k / 10 is the float round() gives for it), so
# the per-point formatting is a lookup. 0.0 is left out: -0.0 equals it as a key but prints "-0.0".
_ONE_DECIMAL = {k / 10: f"{k / 10:0.1f}" for k in range(1, 1001)}


def _molmo_line(coordinates: list[tuple[float, float]], label: str) -> str:
    """molmo_points from (x, y) already rounded to one decimal (rounding again changes nothing)."""
    alt, text = _attribute_and_text(label)
    known = _ONE_DECIMAL.get  # a miss (0.0, -0.0, outside 0..100) is formatted as Molmo formats it
    if len(coordinates) == 1:
        x, y = coordinates[0]
        xy = f'x="{known(x) or f"{x:0.1f}"}" y="{known(y) or f"{y:0.1f}"}"'
        return f'<point {xy} alt="{alt}">{text}</point>'
    coordinates.sort()
    joined = " ".join(
        f'x{i}="{known(x) or f"{x:0.1f}"}" y{i}="{known(y) or f"{y:0.1f}"}"'
        for i, (x, y) in enumerate(coordinates, start=1)
    )
    return f'<points {joined} alt="{alt}">{text}</points>'


def points_text(groups: list[dict[str, Any]]) -> str | None:
    """The row's labelled points as Molmo text, one line per group with points; None when there are none."""
    lines = [molmo_points(g["points"], g["label"]) for g in groups if g["count"] and g["label"] is not None]
    return "\n".join(lines) if lines else None


def trace_strokes(segments: list[Any] | None) -> list[list[dict[str, float]]]:
    """Stored strokes of [x, y, t] as Localized Narratives' traces: strokes of {x, y, t}."""
    return [
        [{"x": float(x), "y": float(y), "t": float(t)} for x, y, t in stroke]
        for stroke in segments or []
        if isinstance(stroke, list)
    ]


# A number as json.dumps stores a float that orjson writes back unchanged: plain notation (orjson writes
# 1e-05 as 0.00001), no trailing zero but ".0", at most 15 significant digits (so it is the shortest text
# of its float, which both write). Anything else (an int, 1e-05, 0.10) takes the parsing path.
_NUMBER = r"-?(?:0\.(?:0|0{0,3}[1-9](?:\d{0,10}[1-9])?)|[1-9]\d{0,6}\.(?:0|\d{0,7}[1-9]))"
_SAMPLE = rf"{_NUMBER}, {_NUMBER}, {_NUMBER}"  # without its brackets
# One or more strokes of one or more samples, as one flat repeat (samples, each followed by the next
# sample's or the next stroke's opening): several times faster in `re` than strokes nested in samples.
CANONICAL_STROKES = re.compile(rf"\[\[\[(?:{_SAMPLE}(?:\], \[|\]\], \[\[))*+{_SAMPLE}\]\]\]")
_Y_SEPARATOR = re.compile(r", (?=[-0-9.]+, )")  # the first ", " inside a sample


def strokes_json(stored: str | None) -> str:
    """trace_strokes of a trace's stored text, as compact JSON. Stored as json.dumps writes it (the usual
    case), the text is rewritten by str.replace and one regex with a fixed replacement (no Python per
    sample); otherwise it is parsed and built as trace_strokes does. The same bytes either way."""
    if not stored or stored == "[]":
        return "[]"
    if CANONICAL_STROKES.fullmatch(stored) is None:
        return dumps_text(trace_strokes(_loads(stored)))
    text = stored[3:-3].replace("]], [[", '}],[{"x":').replace("], [", '},{"x":')
    text = _Y_SEPARATOR.sub(',"y":', text).replace(", ", ',"t":')
    return '[[{"x":' + text + "}]]"


def timed_caption(words: list[Any]) -> list[dict[str, Any]]:
    """A transcript's words as Localized Narratives' timed_caption: utterances with their times."""
    return [
        {
            "utterance": str(w.get("word", "")).strip(),
            "start_time": float(w.get("start", 0.0)),
            "end_time": float(w.get("end", 0.0)),
        }
        for w in words
        if isinstance(w, dict) and str(w.get("word", "")).strip()
    ]


def pixmo_points_lines(row: dict[str, Any], image_url: str | None) -> list[dict[str, Any]]:
    """The PixMo-Points rows of one export row (fields.PIXMO_POINTS_ROW's columns): one per labelled
    group, so per image, label and take; unlabelled (narrate) points have no row."""
    return [
        {
            "image_url": image_url,
            "image_sha256": row["sha256"],
            "points": group["points"],
            "count": group["count"],
            "label": group["label"],
            "collection_method": group["collection_method"],
        }
        for group in row["points"]
        if group["label"] is not None
    ]
