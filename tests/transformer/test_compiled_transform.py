"""The compiled transform on the real risk transformer, its fallbacks, errors and load report."""

from __future__ import annotations

import json
import logging
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

from gateway import artifacts
from gateway.errors import ConfigError
from gateway.saver.recipe import load_recipe
from gateway.spec import TransformerSpec, load_spec
from gateway.transformer import UnknownCategory, load_program, save_program
from gateway.transformer.stage import Transform, load_transform
from tests.support import REPO


@pytest.fixture(scope="module")
def risk() -> tuple[Transform, pd.DataFrame]:
    """The risk transformer fitted by its recipe, and the recipe's data."""
    recipe = load_recipe("risk", REPO / "transformers")
    spec = load_spec(REPO / "models" / "risk" / "model.yaml").transformer
    frame = recipe.make_dataset(seed=11).frame
    fitted = recipe.fit_transformer(frame[spec.columns].iloc[:20000])
    return Transform(fitted, spec), frame


def _request_columns(frame: pd.DataFrame, columns: list[str], rows: slice) -> dict[str, list[Any]]:
    """Columns as the service builds them: floats, an int request field, strings."""
    part = frame.iloc[rows]
    out = {c: part[c].tolist() for c in columns}
    out["term_months"] = [int(v) for v in out["term_months"]]
    return out


@pytest.mark.parametrize("n", [1, 10, 100])
def test_risk_transformer_compiles_and_matches_exactly(risk: tuple[Transform, pd.DataFrame], n: int) -> None:
    transform, frame = risk
    assert transform.compiled and transform.report == []
    columns = _request_columns(frame, transform.columns, slice(20000, 20000 + n))
    columns["purpose"][0] = "boat"  # unknown: all zeros under handle_unknown="ignore"
    columns["region"][-1] = "unknown"  # the feature view's default for a missing customer
    columns["employment_years"][0] = 3.0  # the request field's default
    before = transform.deferred
    raw = transform.program(columns, n)
    want = transform.fitted.transform(pd.DataFrame(columns))
    assert raw.dtype == np.float64 and np.array_equal(raw, want)
    assert np.array_equal(transform(columns, n), transform.reference(columns, n))
    assert transform(columns, n).dtype == np.float32
    assert transform.deferred == before  # ordinary requests never leave the compiled path


def _modules_run(fn: Callable[[], Any]) -> set[str]:
    """Modules of every Python function and C builtin called while ``fn`` runs."""
    seen: set[str] = set()

    def probe(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            seen.add(str(frame.f_globals.get("__name__", "")))
        elif event == "c_call":
            seen.add(str(getattr(arg, "__module__", None) or ""))

    sys.setprofile(probe)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return seen


def test_request_path_runs_no_pandas_and_no_scikit_learn(risk: tuple[Transform, pd.DataFrame]) -> None:
    transform, frame = risk
    columns = _request_columns(frame, transform.columns, slice(0, 5))
    transform(columns, 5)  # first call out of the way
    foreign = ("pandas", "sklearn")
    compiled = _modules_run(lambda: transform(columns, 5))
    assert any(m.startswith("gateway.transformer") for m in compiled)
    assert not {m for m in compiled if m.startswith(foreign)}
    # The probe does see them on the reference path, so the check above can fail.
    reference = _modules_run(lambda: transform.reference(columns, 5))
    assert any(m.startswith("pandas") for m in reference) and any(m.startswith("sklearn") for m in reference)


def _fit(est: Any, frame: dict[str, list[Any]]) -> Any:
    return est.fit(pd.DataFrame(frame))


TRAIN = {
    "amount": [10.0, 20.0, 35.0, None, 50.0],
    "term": [12, 24, 36, 12, 24],
    "purpose": ["car", "home", "car", None, "home"],
}
SPEC = TransformerSpec(columns=["amount", "term", "purpose"], output_dtype="float64")


@pytest.mark.parametrize(
    "encoder",
    [
        OneHotEncoder(handle_unknown="error"),
        OrdinalEncoder(),
        Pipeline([("impute", SimpleImputer(strategy="most_frequent")), ("encode", OneHotEncoder())]),
    ],
)
def test_unknown_category_under_error_is_a_400_naming_the_column(encoder: Any) -> None:
    fitted = _fit(ColumnTransformer([("cat", encoder, ["purpose"]), ("num", "passthrough", ["term"])]), TRAIN)
    transform = Transform(fitted, SPEC)
    assert transform.compiled
    columns = {"amount": [1.0, 2.0], "term": [12, 24], "purpose": ["car", "boat"]}
    with pytest.raises(UnknownCategory) as caught:
        transform(columns, 2)
    assert caught.value.status == 400 and caught.value.field == "purpose"
    assert caught.value.to_dict()["error"] == "unknown_category" and "'boat'" in caught.value.msg
    with pytest.raises(ValueError, match="unknown categories"):
        transform.reference(columns, 2)


def test_an_unsupported_block_falls_back_alone_and_is_reported() -> None:
    ct = ColumnTransformer(
        [
            ("robust", RobustScaler(), ["amount"]),
            ("double", FunctionTransformer(lambda x: x * 2), ["term"]),
            ("scale", Pipeline([("fill", SimpleImputer()), ("z", StandardScaler())]), ["amount"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["purpose"]),
        ]
    )
    transform = Transform(_fit(ct, TRAIN), SPEC)
    assert not transform.compiled
    assert (
        transform.report[0]
        == "block 'robust' (RobustScaler) runs scikit-learn: RobustScaler has no compiled form"
    )
    assert transform.report[1].startswith(
        "block 'double' (FunctionTransformer) runs scikit-learn: FunctionTransformer"
    )
    assert "is not a known numpy ufunc" in transform.report[1] and len(transform.report) == 2
    assert {b.name: b.op is not None for b in transform.program.blocks} == {
        "robust": False,
        "double": False,
        "scale": True,
        "cat": True,
    }
    columns = {"amount": [None, 7.5, 1e3], "term": [12, 36, 60], "purpose": ["car", None, "boat"]}
    assert np.array_equal(transform(columns, 3), transform.reference(columns, 3), equal_nan=True)


def test_inputs_outside_the_compiled_model_take_the_reference_path() -> None:
    fitted = _fit(ColumnTransformer([("num", StandardScaler(), ["amount"])]), TRAIN)
    transform = Transform(fitted, SPEC)
    # A number stored as a string: pandas and scikit-learn convert it; the compiled path defers.
    columns = {"amount": ["12.5", "40"], "term": [12, 12], "purpose": ["car", "car"]}
    assert np.array_equal(transform(columns, 2), transform.reference(columns, 2))
    assert transform.deferred == 1
    # An infinity: scikit-learn refuses it, and so does the compiled transform.
    columns["amount"] = [float("inf"), 1.0]
    for path in (transform, transform.reference):
        with pytest.raises(ValueError, match="infinity"):
            path(columns, 2)


def test_columns_the_transformer_cannot_find_fail_at_load() -> None:
    fitted = _fit(ColumnTransformer([("num", StandardScaler(), ["amount", "term"])]), TRAIN)
    with pytest.raises(ConfigError, match=r"\['term'\]"):
        Transform(fitted, TransformerSpec(columns=["amount", "purpose"]))
    scaler = _fit(StandardScaler(), {"term": TRAIN["term"], "amount": [1.0, 2.0, 3.0, 4.0, 5.0]})
    with pytest.raises(ConfigError, match="in this order"):
        Transform(scaler, TransformerSpec(columns=["amount", "term"]))


def test_load_logs_what_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ct = ColumnTransformer([("robust", RobustScaler(), ["amount"]), ("num", StandardScaler(), ["term"])])
    (tmp_path / "transformer.pkl").write_bytes(pickle.dumps(_fit(ct, TRAIN)))
    manifest = {"files": artifacts.hash_tree(tmp_path), "environment": artifacts.environment()}
    (tmp_path / artifacts.MANIFEST).write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="gateway.logic"):
        transform = load_transform(tmp_path, manifest, SPEC, [])
    assert transform.report == [
        "block 'robust' (RobustScaler) runs scikit-learn: RobustScaler has no compiled form"
    ]
    assert transform.source == "pickle"
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path}: the version has no compiled transformer (published before compiled transformers); "
        "loading transformer.pkl and compiling it here",
        f"{tmp_path / 'transformer.pkl'}: {transform.report[0]}",
    ]


def test_reference_only_mode_and_empty_requests(tmp_path: Path) -> None:
    fitted = _fit(ColumnTransformer([("num", StandardScaler(), ["amount"])]), TRAIN)
    plain = Transform(fitted, SPEC, compile=False)
    assert not plain.compiled and plain.report == [
        "transformer (ColumnTransformer) runs scikit-learn: compilation disabled"
    ]
    compiled = Transform(fitted, SPEC)
    save_program(compiled.program, tmp_path / "p.npz")
    stored = Transform.from_program(load_program(tmp_path / "p.npz"), SPEC, lambda: fitted)
    empty: dict[str, list[Any]] = {"amount": [], "term": [], "purpose": []}
    for transform in (plain, compiled, stored):
        with pytest.raises(ValueError, match="0 sample"):
            transform(empty, 0)
