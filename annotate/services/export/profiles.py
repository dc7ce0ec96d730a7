"""Export profiles: which columns a row has. `full` is every field of fields.ROW; `pixmo-cap` is exactly
PixMo-Cap's columns (allenai/pixmo-cap: image_url, caption, transcripts) plus `image_sha256`, so code
written for PixMo-Cap reads a voicecap export unchanged.

A profile shapes a row after it is built and counted, so the counts in the manifest mean the same for every
profile. Its Parquet schema is a fields.Struct like ROW, so JSONL, Parquet and the dataset card agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from annotate.services.export.fields import ROW, STRING, ListOf, Struct

Row = dict[str, Any]


@dataclass(frozen=True)
class Profile:
    name: str
    struct: Struct  # the columns, in order, with their types
    shape: Callable[[Row], Row] | None  # full row -> this profile's row; None: the full row as it is
    describes: str


def _pixmo_cap(row: Row) -> Row:
    # With --with-media image_url is the image's path relative to the export (RowBuilder decides).
    return {
        "image_url": row["image_url"],
        "caption": row["caption"],
        "transcripts": row["transcripts"],
        "image_sha256": row["sha256"],
    }


PIXMO_CAP = Struct(
    (("image_url", STRING), ("caption", STRING), ("transcripts", ListOf(STRING)), ("image_sha256", STRING))
)
PROFILES: dict[str, Profile] = {
    "full": Profile("full", ROW, None, "every caption with its provenance, recordings and the latest review"),
    "pixmo-cap": Profile(
        "pixmo-cap",
        PIXMO_CAP,
        _pixmo_cap,
        "PixMo-Cap's columns (image_url, caption, transcripts) and image_sha256",
    ),
}
