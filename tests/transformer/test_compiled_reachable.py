"""What reaches a worker serving from the compiled file alone, and that it never refuses a computable request.

Such a worker has no reference path: where a compiled block meets an input it does not
model it answers 400 ``unsupported_value`` instead. For the risk model this property
shows that the refusal is reached only where the reference fails as well: requests that
pass validation (finite numbers within the spec's bounds, any strings, optional fields
absent) with any feature values the store can hand back (``float()`` of the stored text
may give NaN or an infinity when something other than ``gateway features load`` wrote
it; an entity may be missing, giving the declared defaults). Everywhere else the stored
program answers, with the in-memory compiled program's exact bits, which the property
test in ``test_compiled_property`` ties to ``transformer.transform``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidField
from gateway.logic.request import RequestValidator
from gateway.saver.recipe import load_recipe
from gateway.spec import ModelSpec, load_spec
from gateway.transformer import UnsupportedValue, load_program, save_program
from gateway.transformer.stage import Transform
from tests.support import REPO

Risk = tuple[ModelSpec, Transform, Transform]


@pytest.fixture(scope="module")
def risk(tmp_path_factory: pytest.TempPathFactory) -> Risk:
    """The risk spec, its transformer compiled in memory, and the same program loaded from its file alone."""
    spec = load_spec(REPO / "models" / "risk" / "model.yaml")
    recipe = load_recipe("risk", REPO / "transformers")
    frame = recipe.make_dataset(seed=5).frame
    fitted = recipe.fit_transformer(frame[spec.transformer.columns].iloc[:5000])
    memory = Transform(fitted, spec.transformer)
    path = tmp_path_factory.mktemp("risk") / "transformer.compiled.npz"
    save_program(memory.program, path)
    return spec, memory, Transform.from_program(load_program(path), spec.transformer, lambda: fitted)


_ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
_NUMBERS = st.one_of(_ANY_FLOAT, st.sampled_from([-1.0, 0.0, 1e308, -1e308]))


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """One record as a client may send it: anything in range passes validation."""
    rec: dict[str, Any] = {
        "customer_id": draw(st.text(min_size=1, max_size=8)),
        "loan_amount": draw(st.one_of(st.floats(100, 1e6), st.integers(100, 10**6))),
        "term_months": draw(st.integers(6, 120)),
        "purpose": draw(st.one_of(st.sampled_from(["car", "home", "business"]), st.text(max_size=32))),
    }
    if draw(st.booleans()):
        rec["employment_years"] = draw(st.floats(0, 60))
    return rec


@st.composite
def profiles(draw: st.DrawFn, spec: ModelSpec, n: int) -> dict[str, list[Any]]:
    """Feature columns as the reader decodes them: stored values, or a view's defaults if absent."""
    view = spec.view("profile")
    cols: dict[str, list[Any]] = {name: [] for name in view.fields}
    for _ in range(n):
        present = draw(st.booleans())
        for name, fld in view.fields.items():
            if not present:
                value = fld.default
            elif fld.dtype == "string":
                value = draw(st.text(max_size=12))
            else:
                value = draw(_NUMBERS)
            cols[name].append(value)
    return cols


def _quietly(fn: Any) -> tuple[Any, Exception | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference's own warnings (log1p of a negative, ...)
        try:
            return fn(), None
        except Exception as e:
            return None, e


def test_a_compiled_file_alone_refuses_only_what_the_reference_cannot_compute(risk: Risk) -> None:
    spec, memory, alone = risk
    validator = RequestValidator(spec)
    seen = {"answered": 0, "refused": 0}

    @settings(max_examples=300, derandomize=True, deadline=None, database=None)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        payload = {"data": data.draw(st.lists(records(), min_size=1, max_size=6))}
        req = validator.validate(payload)
        columns = {**data.draw(profiles(spec, req.size))}
        for name in validator.known:
            columns[name] = [r[name] for r in req.rows]
        got, error = _quietly(lambda: alone(columns, req.size))
        want, memory_error = _quietly(lambda: memory(columns, req.size))
        if error is not None:
            assert isinstance(error, UnsupportedValue) and error.status == 400, error
            assert memory_error is not None, (
                f"the pickle path answers what the compiled file refuses: {error}"
            )
            seen["refused"] += 1
        else:
            assert memory_error is None and np.array_equal(got, want, equal_nan=True)
            seen["answered"] += 1

    check()
    assert seen["answered"] >= 200 and seen["refused"] >= 10, seen


def test_an_infinite_feature_is_a_400_naming_it(risk: Risk) -> None:
    spec, memory, alone = risk
    req = RequestValidator(spec).validate(
        {"data": [{"customer_id": "C1", "loan_amount": 500, "term_months": 12, "purpose": "car"}]}
    )
    columns: dict[str, list[Any]] = {name: [fld.default] for name, fld in spec.view("profile").fields.items()}
    columns.update({name: [req.rows[0][name]] for name in req.rows[0]})
    columns["income"] = [float("inf")]
    with pytest.raises(UnsupportedValue) as caught:
        alone(columns, 1)
    assert isinstance(caught.value, InvalidField) and caught.value.field == "income"
    assert caught.value.to_dict() == {
        "msg": "income: an infinite number cannot be transformed by this model",
        "code": 400,
        "error": "unsupported_value",
        "details": [{"field": "income", "problem": "an infinite number cannot be transformed by this model"}],
    }
    with pytest.raises(ValueError, match="infinity"):  # with the pickle: scikit-learn's own refusal (a 500)
        memory(columns, 1)
