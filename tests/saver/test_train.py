"""Published versions: manifests that vouch for every file, tamper and drift detection, warmup, quality."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from gateway import artifacts
from gateway.errors import ArtifactError
from gateway.saver.graph import WARMUP_FILE
from gateway.saver.inspect import inspect_version
from gateway.spec import load_spec
from gateway.wire.protos import prediction_log_pb2
from gateway.wire.tensors import to_numpy

# Every test here reads the models trained from scratch by the built_models fixture.
pytestmark = pytest.mark.slow
MODELS = ["risk", "ctr"]


def tfrecords(path: Path) -> list[bytes]:
    """Records of a TFRecord file: u64 length, u32 crc, payload, u32 crc (read without TensorFlow)."""
    data, pos, out = path.read_bytes(), 0, []
    while pos < len(data):
        (n,) = struct.unpack("<Q", data[pos : pos + 8])
        out.append(data[pos + 12 : pos + 12 + n])
        pos += 12 + n + 4
    return out


@pytest.fixture
def ctr_copy(built_models: Path, tmp_path: Path) -> Path:
    """A private copy of the built ctr version 1, free to tamper with."""
    dst = tmp_path / "ctr" / "1"
    shutil.copytree(built_models / "ctr" / "1", dst)
    return dst


@pytest.mark.parametrize("model", MODELS)
def test_manifest_hashes_match_the_files(built_models: Path, model: str) -> None:
    vdir = built_models / model / "1"
    manifest = artifacts.read_manifest(vdir)
    files = {p.relative_to(vdir).as_posix() for p in vdir.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == files
    for rel, digest in manifest["files"].items():
        assert artifacts.sha256_file(vdir / rel) == digest
    assert {"saved_model.pb", "transformer.pkl", WARMUP_FILE} <= files
    assert artifacts.audit(vdir, manifest) == []


@pytest.mark.parametrize("model", MODELS)
def test_manifest_records_what_the_serving_side_checks(built_models: Path, model: str) -> None:
    m = artifacts.read_manifest(built_models / model / "1")
    spec = load_spec(built_models / model / "model.yaml")
    assert set(m["environment"]) >= {"python", "scikit-learn", "numpy", "tensorflow"}
    assert m["environment"]["numpy"] == np.__version__
    assert [f["name"] for f in m["features"]] == spec.transformer.columns
    assert all(f["dtype"] in ("float", "string") for f in m["features"])
    assert spec.graph is not None and m["signature"] == spec.graph.signature
    assert set(m["graph_inputs"]) == set(spec.graph.inputs) and m["graph_output"] == spec.graph.output
    assert m["transformer"]["class"] == "sklearn.compose._column_transformer.ColumnTransformer"
    assert {"auc", "logloss", "accuracy"} <= set(m["training"]["metrics"])
    assert m["training"]["warmup_records"] == 3 and m["source"] == "train"
    score = m["baseline"]["score"]
    assert sum(score["histogram"]["counts"]) == m["training"]["rows"]["holdout"]
    assert set(m["baseline"]["features"]) == set(spec.transformer.columns)
    assert [v["name"] for v in m["feature_views"]] == [v.name for v in spec.feature_views]


def test_tampered_transformer_is_detected(ctr_copy: Path) -> None:
    pkl = ctr_copy / "transformer.pkl"
    data = bytearray(pkl.read_bytes())
    data[len(data) // 2] ^= 0x01
    pkl.write_bytes(bytes(data))
    manifest = artifacts.read_manifest(ctr_copy)
    with pytest.raises(ArtifactError, match="does not match the manifest"):
        artifacts.load_verified_pickle(ctr_copy, "transformer.pkl", manifest)
    assert artifacts.audit(ctr_copy, manifest) == [
        "transformer.pkl: sha256 does not match the manifest (changed after publishing)"
    ]
    assert inspect_version(ctr_copy)["audit"]["ok"] is False


def test_added_or_removed_files_are_detected(ctr_copy: Path) -> None:
    (ctr_copy / "variables" / "extra.bin").write_bytes(b"x")
    (ctr_copy / WARMUP_FILE).unlink()
    assert artifacts.audit(ctr_copy, artifacts.read_manifest(ctr_copy)) == [
        f"{WARMUP_FILE}: listed in the manifest but missing",
        "variables/extra.bin: not listed in the manifest",
    ]


def test_library_versions_differing_from_the_running_ones_are_detected(ctr_copy: Path) -> None:
    path = ctr_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["environment"]["numpy"] = "1.21.0"
    manifest["environment"]["tensorflow"] = "2.9.0"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError) as exc:
        artifacts.load_verified_pickle(ctr_copy, "transformer.pkl", manifest)
    assert f"numpy 1.21.0 but this process runs numpy {np.__version__}" in str(exc.value)
    assert artifacts.check_environment(manifest, allow_drift=["numpy"]) == [
        f"numpy 1.21.0 -> {np.__version__}"
    ]
    drift = artifacts.environment_drift(manifest)
    assert set(drift) == {"numpy", "tensorflow"} and drift["numpy"] == ("1.21.0", np.__version__)
    info = inspect_version(ctr_copy)
    assert info["audit"]["ok"] is False and info["audit"]["environment"]["numpy"]["match"] is False


def test_a_patch_release_of_python_is_not_drift(ctr_copy: Path) -> None:
    manifest = artifacts.read_manifest(ctr_copy)
    major, minor, _ = manifest["environment"]["python"].split(".")
    manifest["environment"]["python"] = f"{major}.{minor}.99"
    assert artifacts.environment_drift(manifest) == {}
    manifest["environment"]["python"] = f"{major}.{int(minor) + 1}.0"
    assert set(artifacts.environment_drift(manifest)) == {"python"}


@pytest.mark.parametrize("model", MODELS)
def test_warmup_records_are_predict_requests_of_held_out_rows(built_models: Path, model: str) -> None:
    spec = load_spec(built_models / model / "model.yaml")
    m = artifacts.read_manifest(built_models / model / "1")
    records = tfrecords(built_models / model / "1" / WARMUP_FILE)
    assert len(records) == 3
    batches = []
    for raw in records:
        req = prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request
        assert spec.graph is not None
        assert (req.model_spec.name, req.model_spec.signature_name) == (
            spec.graph.model_name,
            spec.graph.signature,
        )
        arrays = {alias: to_numpy(t) for alias, t in req.inputs.items()}
        assert set(arrays) == set(spec.graph.inputs)
        sizes = {a.shape[0] for a in arrays.values()}
        assert len(sizes) == 1
        for alias, arr in arrays.items():
            assert arr.dtype == np.float32 and arr.shape[1] == m["graph_inputs"][alias][1]
            assert np.isfinite(arr).all() and arr.std() > 0
        batches.append(sizes.pop())
    assert batches == [1, 8, 32]


def test_ctr_auc_on_held_out_synthetic_data(built_models: Path) -> None:
    """Recomputed here from the published artifacts, not read from the manifest."""
    import tensorflow as tf
    from sklearn.metrics import roc_auc_score

    from gateway.saver.recipe import LABEL, load_recipe
    from gateway.saver.train import split

    vdir = built_models / "ctr" / "1"
    spec = load_spec(built_models / "ctr" / "model.yaml")
    manifest = artifacts.read_manifest(vdir)
    seed = manifest["training"]["seed"]
    ds = load_recipe("ctr").make_dataset(seed)
    _, hold = split(len(ds.frame), seed)
    transformer = artifacts.load_verified_pickle(vdir, "transformer.pkl", manifest)
    x = np.asarray(transformer.transform(ds.frame.iloc[hold][spec.transformer.columns]), np.float32)
    fn = tf.saved_model.load(str(vdir)).signatures["serving_default"]
    out = fn(features=tf.constant(x), item_embedding=tf.constant(ds.vectors["item_embedding"][hold]))
    p = out["probability"].numpy().reshape(-1)
    auc = roc_auc_score(ds.frame[LABEL].to_numpy()[hold], p)
    assert auc > 0.7
    assert auc == pytest.approx(manifest["training"]["metrics"]["auc"], abs=1e-4)


def test_ctr_data_is_deterministic_and_embeddings_are_float32() -> None:
    from gateway.saver.recipe import load_recipe

    recipe = load_recipe("ctr")
    world = recipe.World(7)
    a, _ = recipe.make_items(world, 50, 7)
    b, _ = recipe.make_items(recipe.World(7), 50, 7)
    assert a.drop(columns="item_embedding").equals(b.drop(columns="item_embedding"))
    assert all(np.array_equal(x, y) for x, y in zip(a["item_embedding"], b["item_embedding"], strict=True))
    assert a["item_embedding"][0].dtype == np.float32 and a["item_embedding"][0].shape == (32,)
    users, taste = recipe.make_users(world, 2000, 7)
    shares = users[[f"cat_share_{c}" for c in range(recipe.N_CATEGORIES)]].to_numpy()
    # The observable history carries the hidden taste: it is a noisy image of taste @ category_map.T.
    logs = np.log(shares + 1e-4)
    logs -= logs.mean(axis=1, keepdims=True)
    implied = taste @ world.category_map.T
    implied -= implied.mean(axis=1, keepdims=True)
    assert np.corrcoef(logs.ravel(), implied.ravel())[0, 1] > 0.8


@pytest.mark.parametrize("model", MODELS)
def test_warmup_records_replay_on_the_loaded_graph(built_models: Path, model: str) -> None:
    """What a TF-Serving model server does with them at load: run each request on the new version."""
    from gateway.graph_server.servable import Servable

    vdir = built_models / model / "1"
    servable = Servable(model, 1, vdir)
    try:
        for raw in tfrecords(vdir / WARMUP_FILE):
            req = prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request
            inputs = {alias: to_numpy(t) for alias, t in req.inputs.items()}
            _, out = servable.predict(req.model_spec.signature_name, inputs)
            (scores,) = out.values()
            rows = next(iter(inputs.values())).shape[0]
            assert scores.shape == (rows, 1) and ((scores > 0) & (scores < 1)).all()
    finally:
        servable.close()
