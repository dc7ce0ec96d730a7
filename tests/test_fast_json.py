"""The dashboard's JSON answers (orjson) say what FastAPI's own encoding says, for every kind of value
the stats and QC code return."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from fastapi.encoders import jsonable_encoder

from annotate.api.fast_json import json_response

VALUES = {
    "ints": [0, -3, 2**40],
    "floats": [0.1, 1e-7, 123456.789],
    "sum_from_postgresql": Decimal("12"),
    "fraction_sum": Decimal("12.5"),
    "aware": datetime(2026, 12, 2, 15, 4, 5, 123456, tzinfo=UTC),
    "naive": datetime(2026, 12, 2, 15, 4, 5),
    "day": date(2026, 12, 2),
    "timestamp": pd.Timestamp("2026-12-02T15:04:05Z"),
    "nested": {"a": [{"b": None, "c": "ü"}]},
    "by_id": {3: "three"},
}


def test_the_answers_match_fastapis_encoding() -> None:
    ours = json.loads(json_response(VALUES).body)
    theirs = json.loads(json.dumps(jsonable_encoder(VALUES)))
    assert ours == theirs


def test_numpy_scalars_are_numbers() -> None:  # FastAPI's own encoder refuses numpy integers
    body = json_response({"numpy": [np.int64(7), np.float64(0.25), np.bool_(True)]}).body
    assert json.loads(body) == {"numpy": [7, 0.25, True]}


def test_not_a_number_is_null_and_unknown_values_are_refused() -> None:
    assert json.loads(json_response({"z": float("nan"), "w": float("inf")}).body) == {"z": None, "w": None}
    with pytest.raises(TypeError):
        json_response({"x": object()})
