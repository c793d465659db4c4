"""Property: the compiled transform equals ``transformer.transform`` on a pandas DataFrame.

Random fitted transformers (every supported step and parameter, fitted on random frames)
meet random requests with unknown categories, missing values, ints in float columns and
values outside a function's domain. Either both paths raise (an unknown category under
``handle_unknown="error"`` raises ``UnknownCategory`` on the compiled path) or the
matrices agree within 1e-9 in float64.

Each compiled program is also written to its file, loaded back with numpy alone (no
fitted transformer) and held to the same property, with one allowance: where the
in-memory program handed a block to the reference, the stored one refuses the request
with ``UnsupportedValue`` (a 400), and only there. Where both answer, they answer the
same bits.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from gateway.spec import TransformerSpec
from gateway.transformer import UnknownCategory, UnsupportedValue, load_program, save_program
from gateway.transformer.columns import BOOL, FLOAT, INT, NONE, OBJECT, STR, Defer, infer
from gateway.transformer.stage import Transform
from tests.transformer.cases import requests, transformers

PROFILE = settings(
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)


def _quietly(fn: Callable[[], Any]) -> tuple[Any, Exception | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown-category and empty-feature warnings of the reference
        try:
            return fn(), None
        except Exception as e:
            return None, e


def _fit(est: Any, columns: list[str], fit: dict[str, list[Any]]) -> Any:
    fitted, error = _quietly(lambda: est.fit(pd.DataFrame({c: fit[c] for c in columns})))
    if error is not None:
        reject()  # an invalid parameter combination for this data
    return fitted


@dataclass
class Outcome:
    how: str  # "answered", "raised" (as the reference did) or "refused" (UnsupportedValue)
    deferred: bool  # a block met an input its compiled ops do not model
    result: Any

    @property
    def compiled_alone(self) -> bool:
        return self.how == "answered" and not self.deferred


def _agree(transform: Transform, columns: dict[str, list[Any]], n: int, may_refuse: bool = False) -> Outcome:
    """Assert ``transform`` agrees with the reference; say how it answered."""
    before = transform.deferred
    want, ref_error = _quietly(lambda: transform.reference(columns, n))
    got, error = _quietly(lambda: transform(columns, n))
    deferred = transform.deferred > before
    if isinstance(error, UnsupportedValue):
        assert may_refuse and deferred, f"refused without a deferral: {error!r}"
        assert error.status == 400 and error.code == "unsupported_value"
        return Outcome("refused", deferred, None)
    if ref_error is not None:
        assert error is not None, f"reference raised {ref_error!r}, compiled returned {got}"
        if isinstance(error, UnknownCategory):
            assert "unknown categor" in str(ref_error).lower(), ref_error
            assert error.status == 400
        else:
            assert type(error) is type(ref_error), (error, ref_error)
        return Outcome("raised", deferred, None)
    assert error is None, f"compiled raised {error!r}, reference returned {want}"
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, equal_nan=True)
    return Outcome("answered", deferred, got)


def test_compiled_equals_transform(tmp_path: Path) -> None:
    seen: Counter[str] = Counter()
    path = tmp_path / "transformer.compiled.npz"

    @settings(PROFILE, max_examples=300)
    @given(case=transformers(), data=st.data())
    def check(case: tuple[Any, list[str], dict[str, list[Any]]], data: st.DataObject) -> None:
        est, columns, fit = case
        fitted = _fit(est, columns, fit)
        spec = TransformerSpec(columns=columns, output_dtype="float64")
        transform = Transform(fitted, spec)
        assert transform.report == [], transform.report
        assert save_program(transform.program, path)["complete"]
        stored = Transform.from_program(load_program(path), spec, lambda: fitted)
        for _ in range(3):
            request, n = data.draw(requests(columns))
            memory = _agree(transform, request, n)
            disk = _agree(stored, request, n, may_refuse=True)
            assert (disk.how == "refused") <= memory.deferred
            assert disk.how in (memory.how, "refused"), (memory.how, disk.how)
            if disk.how == memory.how == "answered":
                assert np.array_equal(disk.result, memory.result, equal_nan=True)
            seen["compared"] += 1
            seen["compiled"] += memory.compiled_alone
            seen["stored"] += disk.compiled_alone

    check()
    # The property must be about the compiled path, not about its fallback for odd inputs.
    assert seen["compared"] >= 600
    assert seen["compiled"] >= 0.6 * seen["compared"], seen
    assert seen["stored"] == seen["compiled"], seen


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**65), 2**65),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, 0.0, "a", "b", ""]),
    st.text(max_size=3),
)

_DTYPE_OF = {FLOAT: "float64", INT: "int64", BOOL: "bool", STR: "str", OBJECT: "object", NONE: "object"}


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


@settings(PROFILE, max_examples=400)
@given(values=st.lists(_VALUES, min_size=1, max_size=6))
def test_column_inference_matches_pandas(values: list[Any]) -> None:
    series = pd.DataFrame({"x": values})["x"]
    try:
        col = infer(values)
    except Defer:
        assert any(type(v) is int and not -(2**63) <= v < 2**63 for v in values)
        return
    assert str(series.dtype) == _DTYPE_OF[col.kind], (values, series.dtype, col.kind)
    want = np.asarray(series)
    assert col.values.dtype == want.dtype
    assert all(_same(a, b) for a, b in zip(col.values.tolist(), want.tolist(), strict=True)), (col, want)
