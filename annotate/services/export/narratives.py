"""`--format localized-narratives`: one JSON line per recording in Localized Narratives' format.

The fields are exactly those of Localized Narratives' loader (google/localized-narratives,
`LocalizedNarrative`): dataset_id, image_id, annotator_id, caption, timed_caption, traces,
voice_recording. `caption` is the recording's transcript and `timed_caption` its word timings as
utterances; `traces` the pointer's strokes while narrating (narrate mode; empty for other takes), each a
list of {x, y, t} with x and y in 0..1 of the image and t on the audio's clock, as in Localized
Narratives. `annotator_id` must be an integer: it is
made from the annotator's pseudonym (the first 60 bits of its sha256), so no user name or id leaves.

Word timings (`Transcript.words`) are read only here, one query a window, by the newest transcript of
each recording, as the rows themselves are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.engine import Engine

from annotate.services.export.fields import _loads
from annotate.services.export.pointing import timed_caption
from annotate.services.export.selection import reader
from db.models import Transcript

FORMAT = "localized-narratives"


def annotator_number(pseudonym: str) -> int:
    return int(hashlib.sha256(pseudonym.encode()).hexdigest()[:15], 16)


def load_words(engine: Engine, recording_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """recording id -> the words of its newest transcript."""
    if not recording_ids:
        return {}
    query = (
        select(Transcript.recording_id, cast(Transcript.words, Text))
        .where(Transcript.recording_id.in_(recording_ids))
        .order_by(Transcript.recording_id, Transcript.revision)
    )
    with reader(engine).connect() as conn:
        # Ordered by revision: the last row seen for a recording is its newest transcript.
        return {recording_id: _loads(words) if words else [] for recording_id, words in conn.execute(query)}


def narratives(
    row: dict[str, Any],
    words: dict[int, list[dict[str, Any]]],
    voice: Callable[[dict[str, Any]], str],
) -> list[dict[str, Any]]:
    """The Localized Narratives lines of one export row (one per recording); `voice(recording)` says
    where its audio is (a path in or outside the export, or a signed link)."""
    return [
        {
            "dataset_id": f"voicecap/{row['project']}",
            "image_id": str(row["image_id"]),
            "annotator_id": annotator_number(recording["annotator"]),
            "caption": recording["transcript"],
            "timed_caption": timed_caption(words.get(recording["id"], [])),
            "traces": recording["traces"],
            "voice_recording": voice(recording),
        }
        for recording in row["recordings"]
    ]
