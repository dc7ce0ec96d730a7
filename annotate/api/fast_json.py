"""JSON answers encoded by orjson straight from plain values.

A route that returns a dict has FastAPI walk every value in Python (jsonable_encoder) before encoding:
for the dashboard's larger answers (QC over all projects: 5,000 annotator rows and a page of takes) that
walk cost more than the queries. orjson encodes the same values in C; what it does not know (Decimal
sums from PostgreSQL, pandas timestamps) goes through jsonable_encoder one value at a time, so the
JSON is the same. NaN and infinity become null, as JSON has no such numbers.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response
from fastapi.encoders import jsonable_encoder

OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _other(value: Any) -> Any:
    encoded = jsonable_encoder(value)
    if encoded is value:  # jsonable_encoder gave it back unchanged: orjson would ask again forever
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return encoded


def json_response(data: Any) -> Response:
    return Response(orjson.dumps(data, default=_other, option=OPTIONS), media_type="application/json")
