"""``backend: sklearn``: a pickled estimator served in-process with the same API, no graph."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask.testing import FlaskClient

from gateway.featurestore.load import read_table
from gateway.logic.web.app import create_app
from gateway.procs import free_port
from gateway.settings import Settings
from gateway.spec import load_spec
from tests.support import REPO

pytestmark = pytest.mark.integration

EXAMPLE = json.loads((REPO / "examples" / "risk_lr.json").read_text())


@pytest.fixture(scope="module")
def client(built_models: Path, risk_features: Callable[..., str]) -> FlaskClient:
    # A graph target nobody listens on: the in-process backend must never need it.
    settings = Settings(
        model="risk_lr",
        models_root=built_models,
        redis_url=risk_features(7, "risk_lr"),
        graph_targets=[f"127.0.0.1:{free_port()}"],
    )
    return create_app(settings).test_client()


def offline(models: Path, records: list[dict[str, Any]]) -> np.ndarray[Any, Any]:
    spec = load_spec(models / "risk_lr" / "model.yaml")
    vdir = models / "risk_lr" / "1"
    transformer = pickle.loads((vdir / "transformer.pkl").read_bytes())
    estimator = pickle.loads((vdir / "model.pkl").read_bytes())
    customers = read_table(models / "risk_lr" / "demo" / "customer.parquet").set_index("id")
    view = spec.view("profile")
    rows = []
    for rec in records:
        row = {f.name: rec.get(f.name, f.default) for f in spec.request.fields}
        for name, fld in view.fields.items():
            row[name] = (
                customers.loc[rec["customer_id"], name]
                if rec["customer_id"] in customers.index
                else fld.default
            )
        rows.append(row)
    x = transformer.transform(pd.DataFrame(rows)[spec.transformer.columns])
    return np.asarray(estimator.predict_proba(x)[:, 1])


def scratch_models(built_models: Path, tmp_path: Path) -> Path:
    """A models root of its own holding risk_lr, and the risk spec it extends."""
    root = tmp_path / "models"
    shutil.copytree(built_models / "risk_lr", root / "risk_lr")
    (root / "risk").mkdir()
    shutil.copy(built_models / "risk" / "model.yaml", root / "risk" / "model.yaml")
    return root


def test_scores_equal_the_estimator_offline(client: FlaskClient, built_models: Path) -> None:
    r = client.post("/get_score", json=EXAMPLE)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["model"] == {"name": "risk_lr", "version": 1}
    online = np.array([d["score"] for d in body["data"]])
    np.testing.assert_allclose(online, offline(built_models, EXAMPLE["data"]), atol=1e-6, rtol=0)


def test_ready_without_any_graph(client: FlaskClient) -> None:
    r = client.get("/ready")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["checks"]["versions"]["1"] == {"state": "AVAILABLE", "transformer_source": "artifact"}


def test_same_validation_and_errors(client: FlaskClient) -> None:
    r = client.post("/get_score", json={"data": [{**EXAMPLE["data"][0], "term_months": 0}]})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_field"


def test_tampered_estimator_is_refused(
    built_models: Path, tmp_path: Path, risk_features: Callable[..., str]
) -> None:
    root = scratch_models(built_models, tmp_path)
    (root / "risk_lr" / "1" / "model.pkl").write_bytes(pickle.dumps({"not": "the model"}))
    app = create_app(Settings(model="risk_lr", models_root=root, redis_url=risk_features(7, "risk_lr")))
    client = app.test_client()  # the worker starts, refuses the version and says why
    status = client.get("/v1/models/risk_lr").get_json()["model_version_status"]
    assert [(v["version"], v["state"]) for v in status] == [("1", "END")]
    assert re.search(
        r"model\.pkl: sha256 .* does not match the manifest", status[0]["status"]["error_message"]
    )
    # No version to run: the spec's fallback (a constant) answers, and says so.
    ready = client.get("/ready").get_json()
    assert ready["checks"]["full"] is False and "no version is available" in ready["checks"]["degraded"][0]
    body = client.post("/get_score", json=EXAMPLE).get_json()
    assert body["degraded"] is True and (body["reason"], body["source"]) == ("graph_unavailable", "default")
    assert [d["score"] for d in body["data"]] == [0.29] * 3


def test_workers_serve_the_compiled_estimator_without_importing_scikit_learn(
    built_models: Path, risk_features: Callable[..., str], tmp_path: Path
) -> None:
    from gateway.procs import children, rss_mb
    from tests.support import start_logic

    manifest = json.loads((built_models / "risk_lr" / "1" / "manifest.json").read_text())
    assert manifest["estimator"]["compiled"]["file"] == "estimator.compiled.npz"
    assert manifest["estimator"]["compiled"]["verified"]["max_abs_diff"] <= 1e-9
    proc, url = start_logic("risk_lr", built_models, risk_features(7, "risk_lr"), tmp_path / "logic.log")
    try:
        import requests

        body = requests.post(f"{url}/get_score", json=EXAMPLE, timeout=10).json()
        online = np.array([d["score"] for d in body["data"]])
        np.testing.assert_allclose(online, offline(built_models, EXAMPLE["data"]), atol=1e-6, rtol=0)
        workers = children(proc.pid)
        assert len(workers) == 2
        for pid in workers:
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "/sklearn/" not in maps, "a worker loaded scikit-learn"
            assert rss_mb(pid) <= 150, f"worker RSS {rss_mb(pid):.0f} MB"
        assert "compiled estimator loaded (numpy only)" in proc.output()
    finally:
        proc.stop()


def test_a_version_without_a_compiled_estimator_is_served_from_its_pickle(
    built_models: Path, tmp_path: Path, risk_features: Callable[..., str]
) -> None:
    from gateway import artifacts

    root = scratch_models(built_models, tmp_path)
    vdir = root / "risk_lr" / "1"
    (vdir / "estimator.compiled.npz").unlink()  # as versions published before compiled estimators
    manifest = json.loads((vdir / "manifest.json").read_text())
    del manifest["estimator"]["compiled"]
    manifest["files"] = artifacts.hash_tree(vdir)
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    app = create_app(Settings(model="risk_lr", models_root=root, redis_url=risk_features(7, "risk_lr")))
    body = app.test_client().post("/get_score", json=EXAMPLE).get_json()
    online = np.array([d["score"] for d in body["data"]])
    np.testing.assert_allclose(online, offline(built_models, EXAMPLE["data"]), atol=1e-6, rtol=0)
