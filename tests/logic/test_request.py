"""Request validation: every client mistake is a 400 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidField
from gateway.logic.request import RequestValidator
from gateway.spec import load_spec
from tests.support import REPO


@pytest.fixture(scope="module")
def validator() -> RequestValidator:
    return RequestValidator(load_spec(REPO / "models" / "risk" / "model.yaml"))


GOOD = {"customer_id": "C000001", "loan_amount": 1000, "term_months": 12, "purpose": "car"}


def test_valid_records_get_defaults_and_entity_ids(validator: RequestValidator) -> None:
    req = validator.validate({"data": [GOOD, {**GOOD, "customer_id": "C2", "employment_years": 7}]})
    assert req.size == 2
    assert req.rows[0]["employment_years"] == 3.0 and req.rows[1]["employment_years"] == 7.0
    assert req.rows[0]["loan_amount"] == 1000.0 and isinstance(req.rows[0]["loan_amount"], float)
    assert req.entity_ids == {"customer": ["C000001", "C2"]}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "body"),
        ({}, "data"),
        ({"data": {}}, "data"),
        ({"data": []}, "data"),
        ({"data": [GOOD], "extra": 1}, "extra"),
        ({"data": [1]}, "data[0]"),
        ({"data": [{**GOOD, "loan_amount": "10"}]}, "data[0].loan_amount"),
        ({"data": [{**GOOD, "loan_amount": True}]}, "data[0].loan_amount"),
        ({"data": [{**GOOD, "loan_amount": float("nan")}]}, "data[0].loan_amount"),
        ({"data": [{**GOOD, "loan_amount": 1e9}]}, "data[0].loan_amount"),
        ({"data": [{**GOOD, "term_months": 12.5}]}, "data[0].term_months"),
        ({"data": [GOOD, {k: v for k, v in GOOD.items() if k != "purpose"}]}, "data[1].purpose"),
        ({"data": [{**GOOD, "purpose": "x" * 33}]}, "data[0].purpose"),
        ({"data": [{**GOOD, "colour": "red"}]}, "data[0].colour"),
        ({"data": [GOOD] * 201}, "data"),
        ({"data": [GOOD], "version": 0}, "version"),
        ({"data": [GOOD], "version": 1, "label": "stable"}, "version"),
    ],
)
def test_bad_requests_name_the_field(validator: RequestValidator, payload: Any, field: str) -> None:
    with pytest.raises(InvalidField) as exc:
        validator.validate(payload)
    assert exc.value.field == field
    assert exc.value.status == 400
