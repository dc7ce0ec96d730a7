"""What an export row holds, as tables: to export another caption field, add one `Field` to CAPTIONS.

A caption, a recording (with its newest transcript) and a review are each a FieldTable: their fields in
the order they appear in a JSONL row. A field names the SQL it is read with, its Parquet type, and, where
the database value is not the exported one, how it becomes it. Everything else is made from the tables:

- the SELECT list of each window query (records.py), in table order;
- the slotted row class that query's rows are unpacked into, positionally (records.py);
- the function that turns a row into its JSON object (rows.py), compiled once from the table into one
  dict literal (as `dataclasses` writes `__init__`), so a million rows cost what hand-written code costs:
  no loop over fields, no lookup by name;
- the Parquet schema (parquet.py), from ROW, whose nested types are the tables.

A field without a column is not read from the database: RowBuilder passes it in (`chosen`, `audio_path`).
A field without a Parquet type is read for the export's own use (grouping, media) and not exported. The
top-level fields (ROW) are computed by RowBuilder.row, which writes them in ROW's order (a test checks).

Parquet types are names here, not pyarrow objects, so a JSONL export never imports pyarrow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, make_dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, cast, func, type_coerce

from db.models import Caption, Recording, Review, Transcript, User

try:  # JSON columns are read as text and parsed here: orjson is several times faster than the drivers' json
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is optional
    from json import loads as _loads

INT64, FLOAT64, BOOL, STRING = "int64", "float64", "bool", "string"


@dataclass(frozen=True)
class ListOf:
    item: ParquetType


@dataclass(frozen=True)
class Struct:
    fields: tuple[tuple[str, ParquetType], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _type in self.fields)


ParquetType = str | ListOf | Struct


@dataclass(frozen=True)
class Field:
    """One exported (or internally needed) value of a caption, recording or review."""

    name: str  # key in the JSON object and the Parquet struct; attribute of the row class
    parquet: ParquetType | None  # None: read for the export's own use, not exported
    column: Any = None  # the SQL it is read with; None: RowBuilder passes it in
    to_json: Callable[[Any], Any] | None = None  # database value -> exported value, where they differ


class FieldTable:
    """A record's fields in JSON order, and what is made from them (see the module docstring)."""

    def __init__(self, name: str, *fields: Field) -> None:
        for f in fields:
            if not f.name.isidentifier() or (f.column is None and f.parquet is None):
                raise ValueError(f"{name}.{f.name}: a field needs an identifier name and a column or a type")
        self.name = name
        self.fields = fields
        read = [f for f in fields if f.column is not None]
        self.exported = tuple(f for f in fields if f.parquet is not None)
        self.names = tuple(f.name for f in self.exported)
        self.columns = tuple(f.column for f in read)  # the SELECT list, in row-class order
        self.struct = Struct(tuple((f.name, f.parquet) for f in self.exported if f.parquet is not None))
        self.row_class: type = make_dataclass(f"{name}Row", [(f.name, Any) for f in read], slots=True)
        self.row_class.__module__ = __name__
        self.json_source, self.to_json = _compile_to_json(name, self.exported)


def _compile_to_json(name: str, exported: tuple[Field, ...]) -> tuple[str, Callable[..., dict[str, Any]]]:
    """`def to_json(row, *, <fields RowBuilder passes>): return {"id": row.id, ...}`, written from the table.

    One dict literal with one attribute read (and a converter call where the table names one) per field.
    """
    namespace: dict[str, Any] = {}
    passed: list[str] = []
    items: list[str] = []
    for index, f in enumerate(exported):
        if f.column is None:
            passed.append(f.name)
            value = f.name
        else:
            value = f"row.{f.name}"
        if f.to_json is not None:
            namespace[f"_convert{index}"] = f.to_json
            value = f"_convert{index}({value})"
        items.append(f"{f.name!r}: {value}")
    parameters = ", ".join(["row", *(["*", *passed] if passed else [])])
    source = f"def {name.lower()}_to_json({parameters}):\n    return {{{', '.join(items)}}}\n"
    exec(compile(source, f"<export field table {name}>", "exec"), namespace)
    return source, namespace[f"{name.lower()}_to_json"]


def _or_empty(column: Any) -> Any:
    """The column, with NULL read as "" (in SQL: nothing to do per row in Python)."""
    return func.coalesce(column, "")


def _flag_list(text: str | None) -> list[str]:
    """A caption's flags (a JSON list) as strings."""
    if not text or text == "[]":
        return []
    return [f if isinstance(f, str) else str(f) for f in _loads(text)]


def _segments(text: str | None) -> list[dict[str, Any]]:
    """A transcript's segments as a dataset needs them: span and text (scores stay in the database)."""
    return [
        {"start": float(s.get("start", 0.0)), "end": float(s.get("end", 0.0)), "text": str(s.get("text", ""))}
        for s in (_loads(text) if text else None) or []
        if isinstance(s, dict)
    ]


CONFIDENCE = Struct(
    (
        ("low_word_share", FLOAT64),
        ("mean_logprob", FLOAT64),
        ("unsure", BOOL),
        ("detected_language", STRING),
        ("detected_probability", FLOAT64),
        ("escalated_from", STRING),
    )
)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _confidence(text: str | None) -> dict[str, Any]:
    """Transcript.confidence (transcribe/cascade.py) as the figures a data lead filters on; None where a
    transcript made before they were measured has none. `escalated_from`: the first-pass model when the
    confidence cascade re-transcribed the take."""
    figures = (_loads(text) if text else None) or {}
    cascade = figures.get("cascade")
    first = cascade.get("first") if isinstance(cascade, dict) else None
    return {
        "low_word_share": _number(figures.get("low_word_share")),
        "mean_logprob": _number(figures.get("mean_logprob")),
        "unsure": bool(figures["unsure"]) if "unsure" in figures else None,
        "detected_language": figures.get("detected_language") or "",
        "detected_probability": _number(figures.get("detected_probability")),
        "escalated_from": str(first.get("model", "")) if isinstance(first, dict) else "",
    }


_iso = datetime.isoformat

CAPTIONS = FieldTable(
    "Caption",
    Field("id", INT64, Caption.id),
    Field("kind", STRING, type_coerce(Caption.kind, String)),
    Field("status", STRING, type_coerce(Caption.status, String)),
    Field("chosen", BOOL),  # whether this caption speaks for the image
    Field("text", STRING, Caption.text),
    Field("cleaner", STRING, Caption.cleaner),
    Field("model", STRING, _or_empty(Caption.model)),
    Field("prompt_version", STRING, _or_empty(Caption.prompt_version)),
    Field("recording_id", INT64, Caption.recording_id),
    Field("transcript_id", INT64, Caption.transcript_id),
    Field("parent_id", INT64, Caption.parent_id),
    Field("faithfulness", FLOAT64, Caption.faithfulness),
    Field("flagged", BOOL, Caption.flagged),
    Field("flags", ListOf(STRING), cast(Caption.flags, Text), _flag_list),
    Field("created_at", STRING, Caption.created_at, _iso),
    Field("image_id", None, Caption.image_id),
)

SEGMENT = Struct((("start", FLOAT64), ("end", FLOAT64), ("text", STRING)))
# Localized Narratives' shapes (export/pointing.py): a trace sample, and a word of timed_caption.
TIMED_POINT = Struct((("x", FLOAT64), ("y", FLOAT64), ("t", FLOAT64)))
TIMED_UTTERANCE = Struct((("utterance", STRING), ("start_time", FLOAT64), ("end_time", FLOAT64)))
# PixMo-Points' shapes: a point in percent, and one label's points in one take.
POINT = Struct((("x", FLOAT64), ("y", FLOAT64)))
# `--format pixmo-points`: exactly allenai/pixmo-points' columns (its dataset card), in its order.
PIXMO_POINTS_ROW = Struct(
    (
        ("image_url", STRING),
        ("image_sha256", STRING),
        ("points", ListOf(POINT)),
        ("count", INT64),
        ("label", STRING),
        ("collection_method", STRING),
    )
)
LABEL_POINTS = Struct(
    (
        ("label", STRING),
        ("points", ListOf(POINT)),
        ("count", INT64),
        ("collection_method", STRING),
        ("recording_id", INT64),
    )
)

# A live recording with its newest transcript (one row of recordings JOIN users JOIN transcripts).
RECORDINGS = FieldTable(
    "Recording",
    Field("id", INT64, Recording.id),
    Field("annotator", STRING, User.pseudonym),  # a pseudonym: no user name ever leaves in an export
    Field("seconds", FLOAT64, Recording.duration_seconds, float),
    Field("language", STRING, _or_empty(Transcript.language)),
    Field("transcript", STRING, Transcript.text),
    Field("segments", ListOf(SEGMENT), cast(Transcript.segments, Text), _segments),
    Field("engine", STRING, _or_empty(Transcript.engine)),
    Field("model", STRING, _or_empty(Transcript.model)),
    Field("confidence", CONFIDENCE, cast(Transcript.confidence, Text), _confidence),
    Field("transcript_flags", ListOf(STRING), cast(Transcript.flags, Text), _flag_list),
    Field("traces", ListOf(ListOf(TIMED_POINT))),  # the pointer's strokes (narrate mode), else []
    # Word timings, for takes with a trace (they tie words to it); else null: words are read only then.
    Field("timed_caption", ListOf(TIMED_UTTERANCE)),
    Field("audio_path", STRING),  # where the audio is on this machine, or its copy in the export
    Field("content_type", STRING, Recording.content_type),
    Field("created_at", STRING, Recording.created_at, _iso),
    Field("image_id", None, Recording.image_id),
    Field("original_key", None, Recording.original_key),
)

REVIEWS = FieldTable(
    "Review",
    Field("caption_id", INT64, Review.caption_id),
    Field("decision", STRING, type_coerce(Review.decision, String)),
    Field("reviewer", STRING, User.pseudonym),
    Field("reason", STRING, _or_empty(Review.reason)),
    Field("source", STRING, Review.source),
    Field("created_at", STRING, Review.created_at, _iso),
)

# One JSONL line / Parquet row per image: PixMo-Cap's fields first, then ours.
ROW = Struct(
    (
        ("image_url", STRING),
        ("caption", STRING),
        ("transcripts", ListOf(STRING)),
        ("image_path", STRING),
        ("image_id", INT64),
        ("sha256", STRING),
        ("width", INT64),
        ("height", INT64),
        ("split", STRING),
        ("project", STRING),
        ("caption_id", INT64),
        ("captions", ListOf(CAPTIONS.struct)),
        ("recordings", ListOf(RECORDINGS.struct)),
        ("review", REVIEWS.struct),
        ("points", ListOf(LABEL_POINTS)),  # every take's current point set, per label
        ("points_text", STRING),  # the labelled points as Molmo writes them
    )
)
