"""`gateway export`: a SavedModel trained elsewhere becomes a verified, published version."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import RobustScaler, StandardScaler

from gateway import artifacts
from gateway.errors import ArtifactError
from gateway.procs import python
from gateway.saver.export import export_version
from gateway.saver.graph import WARMUP_FILE
from gateway.saver.inspect import inspect_version
from gateway.saver.recipe import LABEL, load_recipe
from gateway.spec import load_spec
from gateway.transformer import ir
from gateway.transformer.stage import load_transform
from tests.support import REPO

pytestmark = pytest.mark.slow  # trains the models (built_models) and loads TensorFlow
SAMPLE_ROWS = 300


class ScriptLocalScaler(StandardScaler):
    """A class that lives in a script's module: a pickle of it cannot load in the logic service."""


@pytest.fixture(scope="module")
def handover(built_models: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What a data scientist hands over: a SavedModel directory, a transformer pickle, sample rows."""
    src = built_models / "ctr" / "1"
    work = tmp_path_factory.mktemp("handover")
    saved = work / "my_saved_model"
    shutil.copytree(
        src, saved, ignore=shutil.ignore_patterns("manifest.json", "transformer.pkl", "assets.extra")
    )
    shutil.copy(src / "transformer.pkl", work / "transformer.pkl")
    seed = artifacts.read_manifest(src)["training"]["seed"]
    ds = load_recipe("ctr").make_dataset(seed)
    rows = ds.frame.iloc[-SAMPLE_ROWS:].reset_index(drop=True)
    rows["item_embedding"] = list(ds.vectors["item_embedding"][-SAMPLE_ROWS:])
    rows.to_parquet(work / "sample.parquet")
    return {"saved_model": saved, "transformer": work / "transformer.pkl", "sample": work / "sample.parquet"}


def _root(tmp_path: Path, model: str = "ctr") -> Path:
    root = tmp_path / "models"
    (root / model).mkdir(parents=True)
    shutil.copy(REPO / "models" / model / "model.yaml", root / model / "model.yaml")
    return root


def _published(base: Path) -> list[str]:
    return sorted(p.name for p in base.iterdir() if p.is_dir())


def test_export_publishes_a_verified_version(
    handover: dict[str, Path], tmp_path: Path, built_models: Path
) -> None:
    root = _root(tmp_path)
    out = subprocess.run(
        [
            python(),
            "-m",
            "gateway.cli",
            "export",
            "ctr",
            *("--saved-model", str(handover["saved_model"]), "--transformer", str(handover["transformer"])),
            *("--sample", str(handover["sample"]), "--root", str(root), "--version", "5"),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert f"ctr: exported version 5 at {root / 'ctr' / '5'}" in out.stdout
    vdir = root / "ctr" / "5"
    m = artifacts.read_manifest(vdir)
    assert artifacts.audit(vdir, m) == []
    assert m["source"] == "export" and m["exported_from"]["sample"] == str(handover["sample"])
    assert m["training"]["metrics"]["rows"] == SAMPLE_ROWS and 0.5 < m["training"]["metrics"]["auc"] <= 1.0
    assert m["training"]["warmup_records"] == 3 and (vdir / WARMUP_FILE).is_file()
    assert sum(m["baseline"]["score"]["histogram"]["counts"]) == SAMPLE_ROWS
    original = artifacts.read_manifest(built_models / "ctr" / "1")["files"]
    for rel in ("saved_model.pb", "variables/variables.index", "transformer.pkl"):
        assert m["files"][rel] == original[rel]  # the hand-over is packaged verbatim
    assert _published(root / "ctr") == ["5"]
    info = inspect_version(root / "ctr")
    sig = info["saved_model"][0]["signatures"]["serving_default"]
    assert {a: (t["dtype"], t["shape"]) for a, t in sig["inputs"].items()} == {
        "features": ("DT_FLOAT", [-1, 47]),
        "item_embedding": ("DT_FLOAT", [-1, 32]),
    }
    assert sig["outputs"]["probability"]["shape"] == [-1, 1] and info["audit"]["ok"] is True


def test_a_pickle_referencing_a_script_class_is_refused(handover: dict[str, Path], tmp_path: Path) -> None:
    root = _root(tmp_path)
    frame = pd.read_parquet(handover["sample"])
    bad = tmp_path / "transformer.pkl"
    bad.write_bytes(pickle.dumps(ScriptLocalScaler().fit(frame[["age"]])))
    with pytest.raises(
        ArtifactError,
        match=r"tests\.saver\.test_export\.ScriptLocalScaler.*must live in gateway\.transformer\.classes",
    ):
        export_version("ctr", root, handover["saved_model"], bad, handover["sample"])
    assert _published(root / "ctr") == []


def test_a_signature_that_does_not_match_the_spec_is_refused(
    handover: dict[str, Path], built_models: Path, tmp_path: Path
) -> None:
    root = _root(tmp_path)
    with pytest.raises(ArtifactError) as exc:
        export_version("ctr", root, built_models / "risk" / "1", handover["transformer"], handover["sample"])
    assert (
        "signature 'serving_default' takes inputs ['features']; the spec sends ['features', 'item_embedding']"
        in str(exc.value)
    )
    assert _published(root / "ctr") == []


def test_a_transformer_of_the_wrong_width_is_refused_and_nothing_is_left(
    handover: dict[str, Path], tmp_path: Path
) -> None:
    root = _root(tmp_path)
    frame = pd.read_parquet(handover["sample"])
    numeric = ["age", "sessions_30d", "tenure_days", "price"]
    narrow = ColumnTransformer([("num", StandardScaler(), numeric)]).fit(frame)
    path = tmp_path / "narrow.pkl"
    path.write_bytes(pickle.dumps(narrow))
    with pytest.raises(
        ArtifactError,
        match=r"narrow\.pkl makes: input 'features' takes 47 columns; the transformer outputs 4",
    ):
        export_version("ctr", root, handover["saved_model"], path, handover["sample"])
    assert _published(root / "ctr") == []  # the staging directory was removed too


def test_sample_rows_must_carry_the_vector_inputs(handover: dict[str, Path], tmp_path: Path) -> None:
    root = _root(tmp_path)
    frame = pd.read_parquet(handover["sample"]).drop(columns=["item_embedding", LABEL])
    frame["item_embedding"] = [np.zeros(7, np.float32)] * len(frame)
    path = tmp_path / "sample.parquet"
    frame.to_parquet(path)
    with pytest.raises(ValueError, match="row 1: item_embedding: expected 32 numbers, got 7"):
        export_version("ctr", root, handover["saved_model"], handover["transformer"], path)
    assert _published(root / "ctr") == []


def test_blocks_only_scikit_learn_runs_are_recorded_and_served_from_the_pickle(
    handover: dict[str, Path], built_models: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _root(tmp_path)
    ctr = pickle.loads(handover["transformer"].read_bytes())
    seed = artifacts.read_manifest(built_models / "ctr" / "1")["training"]["seed"]
    columns = load_spec(root / "ctr" / "model.yaml").transformer.columns
    frame = load_recipe("ctr").make_dataset(seed).frame[columns]
    robust = clone(ctr).set_params(num=RobustScaler()).fit(frame)  # same width, no compiled form
    path = tmp_path / "robust.pkl"
    path.write_bytes(pickle.dumps(robust))
    _, vdir = export_version("ctr", root, handover["saved_model"], path, handover["sample"])
    manifest = artifacts.read_manifest(vdir)
    reason = "block 'num' (RobustScaler) runs scikit-learn: RobustScaler has no compiled form"
    assert manifest[ir.MANIFEST_KEY]["complete"] is False
    assert manifest[ir.MANIFEST_KEY]["fallbacks"] == [reason]
    assert manifest[ir.MANIFEST_KEY]["verified"] == {"rows": SAMPLE_ROWS, "max_abs_diff": 0.0}
    spec = load_spec(root / "ctr" / "model.yaml")
    transform = load_transform(vdir, manifest, spec.transformer, [])
    assert transform.source == "pickle" and transform.report == [reason]
    assert f"its compiled transformer does not serve alone ({reason})" in caplog.text
