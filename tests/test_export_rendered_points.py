"""The pointing an export passes through unparsed gives the bytes the export built from stored values
before: point sets stored rendered (migration 0010) or not, and traces rewritten from their stored text
(export/pointing.strokes_json) or parsed, on both databases."""

from __future__ import annotations

import json
import random
import re

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from annotate.services.export import ExportFilter, SplitSpec
from annotate.services.export.pointing import _NUMBER, CANONICAL_STROKES, strokes_json, trace_strokes
from annotate.services.export.records import iter_records
from annotate.services.export.rows import RowBuilder, encode_line, iter_rows
from db.blobstore import BlobStore
from db.models import PointSet
from tests.support import factories
from tests.test_export import add_caption, add_image, add_recording
from tests.test_export_pointing import seed_pointing

P = factories.point_values


def _lines_before(engine, builder: RowBuilder, flt: ExportFilter) -> list[bytes]:
    """The rows as the export built them before 0010: from the parsed point sets and traces."""
    return [
        encode_line(builder.row(record))
        for records in iter_records(engine, flt)
        for record in records
        if record.chosen is not None
    ]


def _lines_now(engine, builder: RowBuilder, flt: ExportFilter) -> list[bytes]:
    return [encode_line(row) for rows in iter_rows(engine, builder, flt) for row in rows]


def test_rendered_pointing_gives_the_bytes_of_rows_built_from_stored_values(
    engine, session: Session, blobs: BlobStore
) -> None:
    seeded = seed_pointing(session, blobs)  # corrected points (version 2), "none" labels, a narrate click
    annotator = factories.add_user(session, "otto", "annotator")
    # A narrate take stored before 0010 (its set unrendered) whose trace holds ints and a number written
    # with an exponent: the parsing paths.
    image = add_image(session, blobs, seeded.narrate, 4)
    take, transcript = add_recording(session, blobs, image, annotator, "a gull")
    add_caption(session, image, "A gull.", status="approved", transcript=transcript)
    factories.add_trace(session, take, [[[0, 1, 0.5], [1e-05, 0.25, 2]], [[0.5, 0.5, 3.0]]])
    factories.add_point_set(session, take, [P(0.3, 0.7, 0.9), P(0.31, 0.69, 1.0)], rendered=False)
    # A point take with two labels, several points each, one of them sharing an x.
    image = add_image(session, blobs, seeded.point, 5)
    take, transcript = add_recording(session, blobs, image, annotator, "boats and a person")
    add_caption(session, image, "Boats and a person.", status="approved", transcript=transcript)
    points = [P(0.2, 0.8, 1.0, "boat"), P(0.2, 0.1, 1.2, "boat"), P(0.05, 0.5, 1.4, 'a "person" & <dog>')]
    factories.add_point_set(session, take, points, absent_labels=["deck chair", "boat"])
    session.commit()
    rendered = session.scalars(select(PointSet.export_groups)).all()
    assert sum(g is None for g in rendered) == 1 and len(rendered) == 5

    blob_store = blobs
    for project, images in ((seeded.point, 3), (seeded.narrate, 2)):
        flt = ExportFilter(project_id=project.id)
        before = _lines_before(engine, RowBuilder(project.name, blob_store, SplitSpec(100, 0, 0)), flt)
        assert len(before) == images
        for raw_json in (True, False):
            builder = RowBuilder(project.name, blob_store, SplitSpec(100, 0, 0), raw_json=raw_json)
            assert _lines_now(engine, builder, flt) == before, (project.name, raw_json)

    # Every set unrendered (a database just before 0010's backfill): the same bytes again.
    with engine.begin() as conn:
        conn.execute(update(PointSet).values(export_groups=None, points_text=None))
    flt = ExportFilter(project_id=seeded.point.id)
    before = _lines_before(engine, RowBuilder(seeded.point.name, blob_store, SplitSpec(100, 0, 0)), flt)
    builder = RowBuilder(seeded.point.name, blob_store, SplitSpec(100, 0, 0), raw_json=True)
    assert _lines_now(engine, builder, flt) == before


def _number(rng: random.Random) -> float | int:
    kind = rng.random()
    if kind < 0.1:
        return rng.choice([0, 1, 0.0, -0.0, 1.0, 1e-05, 0.0001, 0.00012, 1e16, 0.1 + 0.2, 123456.5, 2.5e-7])
    if kind < 0.2:
        return rng.uniform(0, 5000)  # 15-17 significant digits
    return round(rng.uniform(-0.5, 1.5) * 10 ** rng.randint(0, 4), rng.randint(0, 6))


def test_strokes_rewritten_from_stored_text_are_the_bytes_of_parsed_strokes() -> None:
    rng = random.Random(5)
    canonical = 0
    for _case in range(600):
        if rng.random() < 0.5:  # as the browser samples: 0..1, 4 decimals, and seconds
            strokes = [
                [
                    [round(rng.random(), 4), round(rng.random(), 4), round(rng.uniform(0, 90), 2)]
                    for _ in range(40)
                ]
                for _ in range(rng.randint(1, 4))
            ]
        else:
            strokes = [
                [[_number(rng), _number(rng), _number(rng)] for _ in range(rng.randint(1, 40))]
                for _ in range(rng.randint(0, 4))
            ]
        stored = json.dumps(strokes)  # as SQLAlchemy's JSON stores them, on SQLite and PostgreSQL
        canonical += CANONICAL_STROKES.fullmatch(stored) is not None
        assert strokes_json(stored) == orjson.dumps(trace_strokes(json.loads(stored))).decode(), stored
    assert 200 < canonical < 500  # both paths ran
    # Written otherwise (compact, a trailing zero, another structure): parsed, the same bytes.
    for stored in ("[[[0.5,0.5,1.0]]]", "[[[0.50, 0.5, 1.0]]]", "[[[0.5, 0.5, 1.0]], 7]", "[]", "null"):
        assert strokes_json(stored) == orjson.dumps(trace_strokes(json.loads(stored))).decode()
    assert strokes_json(None) == "[]"


def test_canonical_numbers_are_the_text_orjson_writes_for_their_float() -> None:
    """strokes_json's premise: a stored number of the canonical form is written back unchanged."""
    number = re.compile(_NUMBER)
    rng = random.Random(9)
    matched = 0
    for _case in range(60_000):
        whole = rng.choice(["0", str(rng.randint(1, 9)), str(rng.randint(1, 10**7 - 1))])
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.3:
            fraction = "0" * rng.randint(1, 5) + fraction
        text = ("-" if rng.random() < 0.2 else "") + f"{whole}.{fraction}"
        if number.fullmatch(text):
            matched += 1
            assert orjson.dumps(float(text)).decode() == text, text
    assert matched > 5000
