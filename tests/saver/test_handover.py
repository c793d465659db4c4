"""`gateway export` of a model trained outside the repository (the README's churn model).

Each refusal names the file that is wrong and exits 2; what it accepts is recorded as it is:
a pickle written by another scikit-learn is refused (or, allowed, recorded with that version,
so a worker unpickling it refuses it too), a sparse transformer output is densified.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from gateway import artifacts
from gateway.cli import main
from gateway.errors import ArtifactError
from gateway.spec import load_spec
from gateway.transformer.stage import load_transform
from tests.support import REPO
from tests.walkthrough import churn_root, fit_churn

pytestmark = [pytest.mark.slow, pytest.mark.tensorflow]

OLD = REPO / "tests" / "testdata" / "pickles"
NUMERIC = ["tenure_months", "monthly_charges", "support_calls"]


@pytest.fixture(scope="module")
def handover(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit_churn(tmp_path_factory.mktemp("churn"))


@pytest.fixture(scope="module")
def narrow_saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SavedModel taking the three numeric columns (what an old StandardScaler makes)."""
    import tensorflow as tf

    net = tf.keras.Sequential(
        [tf.keras.Input((3,), name="features"), tf.keras.layers.Dense(1, activation="sigmoid")]
    )
    path = tmp_path_factory.mktemp("narrow") / "saved_model"
    net.export(str(path), verbose=False)
    return path


def export(root: Path, handover: Path, *extra: str, transformer: Path | None = None, model: str = "churn",
           saved_model: Path | None = None) -> int:  # fmt: skip
    return main([
        "export", model, "--root", str(root),
        "--saved-model", str(saved_model or handover / "saved_model"),
        "--transformer", str(transformer or handover / "transformer.pkl"),
        "--sample", str(handover / "sample.parquet"), *extra,
    ])  # fmt: skip


def test_a_pickle_from_another_scikit_learn_is_refused_or_recorded_as_it_is(
    handover: Path, narrow_saved_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {"file": "transformer.pkl", "columns": NUMERIC}
    root = churn_root(tmp_path / "models", name="churnnum", transformer=spec)
    scaler = OLD / "sklearn-1.5.2-scaler.pkl"
    running = artifacts.library_version("scikit-learn")
    args = dict(transformer=scaler, model="churnnum", saved_model=narrow_saved_model)
    assert export(root, handover, **args) == 2  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert f"{scaler}: pickled with scikit-learn 1.5.2; this environment runs scikit-learn {running}" in err
    assert "--allow-drift scikit-learn" in err
    assert not artifacts.list_versions(root / "churnnum")

    assert export(root, handover, "--allow-drift", "scikit-learn", **args) == 0  # type: ignore[arg-type]
    vdir = root / "churnnum" / "1"
    manifest = artifacts.read_manifest(vdir)
    assert manifest["environment"]["scikit-learn"] == "1.5.2"  # the truth, not the exporting version
    with pytest.raises(ArtifactError, match=r"pickled with scikit-learn 1\.5\.2"):
        artifacts.load_verified_pickle(vdir, "transformer.pkl", manifest)  # what a worker unpickling it does
    assert artifacts.load_verified_pickle(vdir, "transformer.pkl", manifest, ["scikit-learn"]) is not None


def test_a_pickle_that_no_longer_loads_is_refused_with_its_version_not_a_class_error(
    handover: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = churn_root(tmp_path / "models")
    assert export(root, handover, transformer=OLD / "sklearn-1.5.2-columns.pkl") == 2
    err = capsys.readouterr().err
    assert "pickled with scikit-learn 1.5.2" in err and "AttributeError" not in err


def test_a_sparse_transformer_output_is_densified(handover: Path, tmp_path: Path) -> None:
    sample = pd.read_parquet(handover / "sample.parquet")
    columns = load_spec(churn_root(tmp_path / "models") / "churn" / "model.yaml").transformer.columns
    sparse = ColumnTransformer(
        [
            ("numbers", StandardScaler(), NUMERIC),
            ("categories", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
        ],
        sparse_threshold=1.0,
    ).fit(sample[columns])
    assert hasattr(sparse.transform(sample[columns][:2]), "toarray")  # really sparse
    path = tmp_path / "sparse.pkl"
    path.write_bytes(pickle.dumps(sparse))
    assert export(tmp_path / "models", handover, transformer=path) == 0
    vdir = tmp_path / "models" / "churn" / "1"
    manifest = artifacts.read_manifest(vdir)
    transform = load_transform(
        vdir, manifest, load_spec(tmp_path / "models" / "churn" / "model.yaml").transformer, []
    )
    rows = sample[columns][:5]
    got = transform({c: rows[c].tolist() for c in columns}, len(rows))
    np.testing.assert_allclose(got, sparse.transform(rows).toarray(), atol=1e-6)


def test_columns_the_pickle_was_not_fitted_on_blame_the_spec(
    handover: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = pd.read_parquet(handover / "sample.parquet")
    four = ColumnTransformer(
        [
            ("numbers", StandardScaler(), NUMERIC),
            ("categories", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    ).fit(sample[[*NUMERIC, "plan"]])
    path = tmp_path / "four.pkl"
    path.write_bytes(pickle.dumps(four))
    root = churn_root(tmp_path / "models")
    assert export(root, handover, transformer=path) == 2
    err = capsys.readouterr().err
    assert (
        f"{root / 'churn' / 'model.yaml'}: transformer.columns: ['region'] are not columns {path} was fitted on"
        in err
    )

    narrower = churn_root(
        tmp_path / "narrower", transformer={"file": "transformer.pkl", "columns": [*NUMERIC, "plan"]}
    )
    assert export(narrower, handover, transformer=path) == 2
    err = capsys.readouterr().err
    assert (
        f"{handover / 'saved_model'} does not take what {path} makes: "
        "input 'features' takes 10 columns; the transformer outputs 6"
    ) in err


def test_the_commands_output_has_no_tensorflow_noise_unless_verbose(handover: Path, tmp_path: Path) -> None:
    root = churn_root(tmp_path / "models")
    cmd = [sys.executable, "-m", "gateway.cli", "export", "churn", "--root", str(root),
           "--saved-model", str(handover / "saved_model"), "--transformer", str(handover / "transformer.pkl"),
           "--sample", str(handover / "sample.parquet")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "churn: exported version 1" in done.stdout
    assert "0000 00:00" not in done.stderr and "cuda" not in done.stderr.lower(), done.stderr
    shutil.rmtree(root / "churn" / "1")
    bad = [*cmd[:-2], "--sample", str(handover / "customer.parquet")]  # lacks the request columns
    failed = subprocess.run(bad, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2
    assert "sample rows lack transformer columns ['monthly_charges', 'plan']" in failed.stderr
    verbose = subprocess.run([*cmd[:3], "--verbose", *cmd[3:]], capture_output=True, text=True, timeout=300)
    assert verbose.returncode == 0 and "0000 00:00" in verbose.stderr  # shown when asked for
    assert json.loads((root / "churn" / "1" / "manifest.json").read_text())["source"] == "export"
