"""The compiled file: what packaging writes and verifies, and which path ``load_transform`` takes.

Versions here are small but real: a fitted transformer pickled, compiled and verified by
the saver's own ``write_compiled``, a manifest written by ``publish.write_manifest``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, RobustScaler, StandardScaler

from gateway import artifacts
from gateway.errors import ArtifactError
from gateway.saver import publish
from gateway.spec import ModelSpec, parse_spec
from gateway.transformer import UnsupportedValue, ir, load_program, save_program
from gateway.transformer.compiler import compile_transformer
from gateway.transformer.stage import Transform, load_transform
from gateway.transformer.verify import verify, write_compiled

FIELDS = [
    {"name": "amount", "type": "float", "min": 1},
    {"name": "term", "type": "int", "min": 6, "max": 120},
    {"name": "purpose", "type": "string"},
]
TRAIN = pd.DataFrame(
    {
        "amount": [10.0, 20.0, 35.0, 12.5, 50.0, 41.0],
        "term": [12, 24, 36, 12, 24, 60],
        "purpose": ["car", "home", "car", "car", "home", "boat"],
    }
)


def model_spec(fields: list[dict[str, Any]] = FIELDS) -> ModelSpec:
    return parse_spec(
        {
            "name": "toy",
            "backend": "sklearn",
            "estimator": {},
            "request": {"fields": fields},
            "transformer": {"columns": [f["name"] for f in fields], "output_dtype": "float64"},
        }
    )


def risk_like() -> ColumnTransformer:
    skewed = Pipeline([("log", FunctionTransformer(np.log1p)), ("z", StandardScaler())])
    return ColumnTransformer(
        [
            ("num", StandardScaler(), ["term"]),
            ("skewed", skewed, ["amount"]),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["purpose"]),
        ]
    )


def publish_version(root: Path, fitted: Any, spec: ModelSpec, train: pd.DataFrame = TRAIN) -> Path:
    """A version directory as packaging writes it: pickle, compiled file, manifest last."""
    vdir = root / "1"
    vdir.mkdir(parents=True)
    (vdir / spec.transformer.file).write_bytes(pickle.dumps(fitted))
    record = write_compiled(vdir, spec, fitted, train)
    publish.write_manifest(vdir, {"compiled_transformer": record})
    return vdir


def load(vdir: Path, spec: ModelSpec) -> Transform:
    return load_transform(vdir, artifacts.read_manifest(vdir), spec.transformer, [])


def columns_of(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {c: frame[c].tolist() for c in frame.columns}


def test_a_version_loads_from_its_compiled_file_and_never_needs_the_pickle(tmp_path: Path) -> None:
    spec = model_spec()
    fitted = risk_like().fit(TRAIN)
    vdir = publish_version(tmp_path, fitted, spec)
    record = artifacts.read_manifest(vdir)["compiled_transformer"]
    assert record == {
        "file": ir.FILE,
        "format": ir.FORMAT_VERSION,
        "complete": True,
        "fallbacks": [],
        "verified": {"rows": len(TRAIN), "max_abs_diff": 0.0},
    }
    assert artifacts.read_manifest(vdir)["files"][ir.FILE] == artifacts.sha256_file(vdir / ir.FILE)
    # A pickle that cannot load, vouched for by the manifest: loading never unpickles it.
    (vdir / spec.transformer.file).write_bytes(b"not a pickle")
    publish.write_manifest(vdir, {"compiled_transformer": record})
    transform = load(vdir, spec)
    assert transform.source == "artifact" and transform.compiled and transform.report == []
    rows = pd.DataFrame({"amount": [3.0, 99.5], "term": [6, 120], "purpose": ["home", "train"]})
    assert np.array_equal(transform(columns_of(rows), 2), np.asarray(fitted.transform(rows)))
    with pytest.raises(ArtifactError, match=r"transformer\.pkl: cannot unpickle"):
        transform.reference(columns_of(rows), 2)  # only the reference path needs the pickle


def test_the_file_is_data_with_reproducible_bytes(tmp_path: Path) -> None:
    fitted = risk_like().fit(TRAIN)
    program = compile_transformer(fitted, list(TRAIN.columns))
    save_program(program, tmp_path / "a.npz")
    save_program(program, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.npz") as z:
        header = json.loads(z.read(ir.HEADER))
        assert all(name == ir.HEADER or name.endswith(".npy") for name in z.namelist())
    assert [b["step"]["kind"] for b in header["blocks"]] == ["standard_scaler", "chain", "one_hot_encoder"]
    cats = header["blocks"][2]["step"]["categories"]
    assert cats == [{"values": ["boat", "car", "home"]}]  # strings live in JSON, never in an object array


def test_a_tampered_compiled_file_is_refused(tmp_path: Path) -> None:
    spec = model_spec()
    vdir = publish_version(tmp_path, risk_like().fit(TRAIN), spec)
    data = bytearray((vdir / ir.FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (vdir / ir.FILE).write_bytes(bytes(data))
    with pytest.raises(
        ArtifactError, match=r"transformer\.compiled\.npz: sha256 .* changed after publishing"
    ):
        load(vdir, spec)


def test_fallback_blocks_are_recorded_and_the_version_loads_its_pickle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = model_spec()
    ct = ColumnTransformer([("robust", RobustScaler(), ["amount"]), ("cat", OneHotEncoder(), ["purpose"])])
    fitted = ct.fit(TRAIN)
    vdir = publish_version(tmp_path, fitted, spec)
    reason = "block 'robust' (RobustScaler) runs scikit-learn: RobustScaler has no compiled form"
    record = artifacts.read_manifest(vdir)["compiled_transformer"]
    assert record["complete"] is False and record["fallbacks"] == [reason]
    with pytest.raises(
        ArtifactError, match=r"block 'robust' runs scikit-learn .* needs the fitted transformer"
    ):
        load_program(vdir / ir.FILE)
    both = Transform.from_program(load_program(vdir / ir.FILE, fitted), spec.transformer, lambda: fitted)
    rows = pd.DataFrame({"amount": [3.0, 1e4], "term": [6, 7], "purpose": ["home", "car"]})
    assert np.array_equal(both(columns_of(rows), 2), fitted.transform(rows))
    with caplog.at_level(logging.WARNING, logger="gateway.logic"):
        transform = load(vdir, spec)
    assert transform.source == "pickle" and transform.report == [reason]
    assert f"its compiled transformer does not serve alone ({reason})" in caplog.text


def test_a_compiled_file_of_another_format_loads_the_pickle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = model_spec()
    vdir = publish_version(tmp_path, risk_like().fit(TRAIN), spec)
    manifest = artifacts.read_manifest(vdir)
    manifest["compiled_transformer"]["format"] = ir.FORMAT_VERSION + 1  # a newer gateway published it
    with caplog.at_level(logging.WARNING, logger="gateway.logic"):
        transform = load_transform(vdir, manifest, spec.transformer, [])
    assert transform.source == "pickle" and transform.compiled
    assert f"has format {ir.FORMAT_VERSION + 1}; this gateway reads {ir.FORMAT_VERSION}" in caplog.text


def test_requests_the_spec_allows_that_need_the_reference_keep_the_pickle(tmp_path: Path) -> None:
    # An optional field without a default is None in every record that omits it; an imputer
    # fitted on numbers then meets an all-None column, which only the reference models.
    fields = [*FIELDS, {"name": "bonus", "type": "float", "required": False}]
    spec = model_spec(fields)
    train = TRAIN.assign(bonus=[1.0, None, 3.0, 4.0, None, 2.0])
    ct = ColumnTransformer([("fill", SimpleImputer(strategy="most_frequent"), ["amount", "bonus"])])
    vdir = publish_version(tmp_path, ct.fit(train), spec, train)
    record = artifacts.read_manifest(vdir)["compiled_transformer"]
    assert record["complete"] is False
    assert record["fallbacks"] == [
        "requests the spec allows need scikit-learn (bonus: is missing in every record, "
        "which this model cannot transform)"
    ]
    assert load(vdir, model_spec(fields)).source == "pickle"


def test_verification_refuses_a_file_that_does_not_reproduce_transform() -> None:
    fitted = risk_like().fit(TRAIN)
    other = risk_like().fit(TRAIN.assign(amount=TRAIN["amount"] * 2))
    program = compile_transformer(fitted, list(TRAIN.columns))
    assert verify(program, fitted, TRAIN) == 0.0
    with pytest.raises(ArtifactError, match=r"differs from transform by up to .* \(tolerance 1e-09\)"):
        verify(program, other, TRAIN)


def test_sample_rows_the_compiled_file_refuses_stop_publishing(tmp_path: Path) -> None:
    # uint64 values beyond int64: pandas keeps them, scikit-learn scales them, the compiled ops do not.
    train = TRAIN.assign(term=np.array([2**63 + k for k in range(len(TRAIN))], dtype=np.uint64))
    fitted = risk_like().fit(train)
    with pytest.raises(ArtifactError, match="refuses the sample rows: term: an integer beyond 64 bits"):
        write_compiled(tmp_path, model_spec(), fitted, train)


def test_a_program_alone_refuses_what_only_the_reference_computes(tmp_path: Path) -> None:
    spec = model_spec()
    fitted = risk_like().fit(TRAIN)
    memory = Transform(fitted, spec.transformer)
    save_program(memory.program, tmp_path / "p.npz")
    alone = Transform.from_program(load_program(tmp_path / "p.npz"), spec.transformer, lambda: fitted)
    ok = {"amount": [12.0, 30.0], "term": [12, 24], "purpose": ["car", "x"]}
    cases = [
        ("amount", [float("inf"), 1.0], "amount: an infinite number cannot be transformed by this model"),
        ("term", [2**64, 12], "term: an integer beyond 64 bits cannot be transformed by this model"),
        ("term", ["12", "24"], "term: values of these kinds (term (strings)) are outside"),
    ]
    for column, values, message in cases:
        columns = {**ok, column: values}
        before = memory.deferred
        with contextlib.suppress(ValueError, TypeError):  # the reference refuses some of them too
            memory(columns, 2)
        assert memory.deferred == before + 1  # the in-memory program hands them to the reference
        with pytest.raises(UnsupportedValue) as caught:
            alone(columns, 2)
        assert caught.value.status == 400 and caught.value.field == column
        assert caught.value.to_dict()["error"] == "unsupported_value" and caught.value.msg.startswith(message)
    # Numbers as strings: the reference converts them, so only a worker with the pickle answers.
    assert np.array_equal(memory({**ok, "term": ["12", "24"]}, 2), alone(ok, 2))
    assert alone.deferred == len(cases)
