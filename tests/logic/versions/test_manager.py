"""Version rollout in one worker, in-process: the tiny model, its versions published and removed for real.

The "graph" is :class:`tests.tiny.TinyPredictor`, whose answers differ per version (raw
score + version - 1) and which reports what it serves when told (``predictor.graph``).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from gateway import errors
from gateway.logic.versions.manager import State
from gateway.logic.web.state import app_state
from gateway.wire import model_config
from tests.tiny import EXAMPLE, TinyPredictor, publish_copy, tiny_app, tiny_root

LATEST_2 = {"policy": {"latest": 2}}


def app_for(root: Path, predictor: TinyPredictor, **settings: Any) -> FlaskClient:
    app = tiny_app(predictor, models_root=root, model_config_file=root / "tiny.config", **settings)
    return app.test_client()


def poll(client: FlaskClient) -> None:
    app_state(client.application).scorer.versions.poll()


def answer(client: FlaskClient, **selector: Any) -> tuple[int, dict[str, Any]]:
    r = client.post("/get_score", json={**EXAMPLE, **selector})
    return r.status_code, r.get_json()


def states(client: FlaskClient) -> dict[int, str]:
    status = client.get("/v1/models/tiny").get_json()["model_version_status"]
    return {int(v["version"]): v["state"] for v in status}


def test_a_published_version_becomes_the_default_once_warm(tmp_path: Path) -> None:
    root = tiny_root(tmp_path, LATEST_2)
    predictor = TinyPredictor()
    client = app_for(root, predictor)
    code, body = answer(client)
    assert code == 200 and body["model"] == {"name": "tiny", "version": 1}
    v1_scores = [d["score"] for d in body["data"]]
    publish_copy(root, 2)
    predictor.graph = {1: "AVAILABLE", 2: "LOADING"}  # the graph is still loading it
    poll(client)
    assert states(client) == {2: "LOADING", 1: "AVAILABLE"} and answer(client)[1]["model"]["version"] == 1
    calls = predictor.calls
    predictor.graph[2] = "AVAILABLE"
    poll(client)
    assert predictor.calls == calls + 2  # two warm-up requests pinned to version 2 went through
    code, body = answer(client)
    assert code == 200 and body["model"]["version"] == 2
    # Version 2 answers with its own scores (the tiny graph adds version - 1 to the raw score).
    expected = 1 / (1 + np.exp(-(np.log(np.array(v1_scores) / (1 - np.array(v1_scores))) + 1)))
    np.testing.assert_allclose([d["score"] for d in body["data"]], expected, atol=1e-9)
    assert answer(client, version=1)[1]["model"]["version"] == 1  # still held: policy latest 2


def test_a_request_in_flight_finishes_on_its_version(tmp_path: Path) -> None:
    root = tiny_root(tmp_path)  # latest 1: version 1 leaves once 2 is available
    client = app_for(root, TinyPredictor())
    manager = app_state(client.application).scorer.versions
    with manager.lease(None, None, "c1") as leased:
        assert leased.mv.version == 1
        publish_copy(root, 2)
        poll(client)
        assert states(client) == {2: "AVAILABLE", 1: "UNLOADING"}
        assert answer(client)[1]["model"]["version"] == 2  # new requests move first
        assert leased.mv.transform is not None  # the old version is still whole for its request
    assert states(client) == {2: "AVAILABLE", 1: "END"}  # released when its last request ended


@pytest.mark.parametrize("damage", ["compiled", "manifest"])
def test_a_corrupt_version_is_refused_and_the_old_one_keeps_serving(tmp_path: Path, damage: str) -> None:
    root = tiny_root(tmp_path)
    client = app_for(root, TinyPredictor())
    v2 = publish_copy(root, 2)
    if damage == "compiled":
        data = bytearray((v2 / "transformer.compiled.npz").read_bytes())
        data[-40] ^= 0xFF
        (v2 / "transformer.compiled.npz").write_bytes(bytes(data))
    else:
        (v2 / "manifest.json").write_text("{not json")
    poll(client)
    status = client.get("/v1/models/tiny/versions/2").get_json()["model_version_status"][0]
    assert status["state"] == "END" and status["status"]["error_code"] != "OK"
    want = "sha256" if damage == "compiled" else "unreadable manifest"
    assert want in status["status"]["error_message"]
    assert all(answer(client)[0] == 200 and answer(client)[1]["model"]["version"] == 1 for _ in range(5))
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'gateway_version_events_total{event="refused",model="tiny",version="2"} 1.0' in metrics
    assert 'gateway_model_version_state{model="tiny",state="END",version="2"} 1.0' in metrics
    # Published again, intact: tried again (a changed directory), and it takes over.
    (v2 / "manifest.json").write_bytes((root / "tiny" / "1" / "manifest.json").read_bytes())
    (v2 / "transformer.compiled.npz").write_bytes(
        (root / "tiny" / "1" / "transformer.compiled.npz").read_bytes()
    )
    poll(client)
    assert answer(client)[1]["model"]["version"] == 2


def test_a_version_the_graph_fails_to_load_is_refused(tmp_path: Path) -> None:
    root = tiny_root(tmp_path)
    predictor = TinyPredictor()
    client = app_for(root, predictor)
    publish_copy(root, 2)
    predictor.graph = {1: "AVAILABLE"}
    predictor.graph_errors = {2: "Could not load the SavedModel"}
    predictor.graph[2] = "END"
    poll(client)
    (status,) = client.get("/v1/models/tiny/versions/2").get_json()["model_version_status"]
    assert status["state"] == "END" and "graph" in status["status"]["error_message"]
    assert answer(client)[1]["model"]["version"] == 1


def test_warm_up_refuses_a_version_that_cannot_answer(tmp_path: Path) -> None:
    root = tiny_root(tmp_path)

    class Picky(TinyPredictor):
        def predict(self, inputs: dict[str, Any], mv: Any) -> Any:
            if mv.version == 2:
                raise errors.from_grpc(errors.grpc.StatusCode.INVALID_ARGUMENT, "input x has the wrong width")
            return super().predict(inputs, mv)

    client = app_for(root, Picky())
    publish_copy(root, 2)
    poll(client)
    (status,) = client.get("/v1/models/tiny/versions/2").get_json()["model_version_status"]
    assert (
        status["state"] == "END"
        and "warm-up failed: graph service: input x has the wrong width"
        in (status["status"]["error_message"])
    )
    assert answer(client)[1]["model"]["version"] == 1


def test_rollback_by_removing_the_new_version(tmp_path: Path) -> None:
    root = tiny_root(tmp_path, LATEST_2)
    client = app_for(root, TinyPredictor())
    v2 = publish_copy(root, 2)
    poll(client)
    assert answer(client)[1]["model"]["version"] == 2
    v2.rename(root / "tiny" / ".removed-2")  # rolled back: the directory is gone
    poll(client)
    assert (
        answer(client)[1]["model"]["version"] == 1
        and 2 not in app_state(client.application).scorer.versions.routing.held
    )


def test_the_graph_losing_the_pinned_version_is_retried_never_a_404(tmp_path: Path) -> None:
    root = tiny_root(tmp_path, LATEST_2)
    missing: set[int] = set()

    class Forgetful(TinyPredictor):
        def predict(self, inputs: dict[str, Any], mv: Any) -> Any:
            if mv.version in missing:
                raise errors.GraphVersionMissing(
                    mv.version, "Servable not found for request: Specific(tiny, 2)"
                )
            return super().predict(inputs, mv)

    client = app_for(root, Forgetful())
    publish_copy(root, 2)
    poll(client)
    missing.add(2)  # the graph dropped version 2 before this worker noticed
    code, body = answer(client)
    assert code == 200 and body["model"]["version"] == 1  # run again on the version chosen now
    missing.add(1)
    r = client.post("/get_score", json={**EXAMPLE, "version": 1})
    assert (
        r.status_code == 503 and r.get_json()["error"] == "version_unavailable" and r.headers["Retry-After"]
    )


def test_labels_route_requests_and_both_tiers_read_the_same_file(tmp_path: Path) -> None:
    root = tiny_root(tmp_path, {"policy": {"latest": 2}, "canary": {"percent": 10}}, labels={"canary": 2})
    client = app_for(root, TinyPredictor())
    assert answer(client, label="canary")[0] == 404  # version 2 does not exist yet
    publish_copy(root, 2)
    poll(client)
    model_config.write(
        root / "tiny.config", [model_config.ModelEntry("tiny", str(root), labels={"stable": 1, "canary": 2})]
    )
    poll(client)
    assert answer(client, label="canary")[1]["model"] == {"name": "tiny", "version": 2, "label": "canary"}
    assert answer(client, label="stable")[1]["model"]["version"] == 1
    first: dict[str, int] = {}
    for i in range(10_000):
        code, body = answer_for(client, f"cust{i}")
        assert code == 200
        first[f"cust{i}"] = body["model"]["version"]
    share = sum(v == 2 for v in first.values()) / len(first)
    assert abs(share - 0.10) < 0.015, share
    for i in range(0, 10_000, 37):  # a customer always lands on the same side
        assert answer_for(client, f"cust{i}")[1]["model"]["version"] == first[f"cust{i}"]


def answer_for(client: FlaskClient, customer: str) -> tuple[int, dict[str, Any]]:
    record = {**EXAMPLE["data"][0], "customer_id": customer}
    r = client.post("/get_score", json={"data": [record]})
    return r.status_code, r.get_json()


def test_admin_api_moves_labels_with_a_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tiny_root(tmp_path, LATEST_2)
    client = app_for(root, TinyPredictor(), admin_token="s3cret")
    publish_copy(root, 2)
    poll(client)
    url = "/admin/v1/models/tiny"
    auth = {"Authorization": "Bearer s3cret"}
    assert client.put(f"{url}/default", json={"version": 1}).status_code == 401
    assert (
        client.put(
            f"{url}/default", json={"version": 1}, headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    assert "refused: wrong token" in caplog.text
    r = client.put(f"{url}/default", json={"version": 1}, headers=auth)
    assert r.status_code == 200 and r.get_json() == {"labels": {"stable": 1}, "default_version": 1}
    assert answer(client)[1]["model"]["version"] == 1  # pinned
    entry = model_config.entries(model_config.read(root / "tiny.config"))["tiny"]
    assert entry.labels == {"stable": 1}  # what the graph reads too
    r = client.put(f"{url}/labels/canary", json={"version": 7}, headers=auth)
    assert r.status_code == 409 and "not available here" in r.get_json()["msg"]
    assert client.put(f"{url}/labels/Bad-Label", json={"version": 2}, headers=auth).status_code == 400
    assert client.delete(f"{url}/default", headers=auth).get_json()["default_version"] == 2  # unpinned
    assert client.post(f"{url}/reload", headers=auth).status_code == 200
    assert client.put("/admin/v1/models/other/default", json={"version": 1}, headers=auth).status_code == 404


def test_admin_api_is_off_without_a_token(tmp_path: Path) -> None:
    client = app_for(tiny_root(tmp_path), TinyPredictor())
    r = client.put(
        "/admin/v1/models/tiny/default", json={"version": 1}, headers={"Authorization": "Bearer x"}
    )
    assert r.status_code == 403 and r.get_json()["error"] == "forbidden"


def test_status_has_tf_servings_shape(tmp_path: Path) -> None:
    root = tiny_root(tmp_path)
    client = app_for(root, TinyPredictor())
    body = client.get("/v1/models/tiny").get_json()
    assert body["model_version_status"] == [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
    assert client.get("/v1/models/other").status_code == 404
    assert client.get("/v1/models/tiny/versions/9").status_code == 404


def test_shadow_scores_the_candidate_off_the_request_path(tmp_path: Path) -> None:
    root = tiny_root(tmp_path, {"policy": {"latest": 2}, "shadow": {"label": "candidate", "queue": 4}})
    client = app_for(root, TinyPredictor(), metrics_flush_ms=0)
    publish_copy(root, 2)
    model_config.write(
        root / "tiny.config",
        [model_config.ModelEntry("tiny", str(root), labels={"stable": 1, "candidate": 2})],
    )
    poll(client)
    scorer = app_state(client.application).scorer
    assert scorer.versions.routing.shadow == 2
    done = threading.Event()
    events = scorer.events
    seen: list[list[float]] = []

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(events, name)

        def shadow_scored(self, model: str, version: int, diffs: list[float]) -> None:
            seen.append(diffs)
            events.shadow_scored(model, version, diffs)
            done.set()

    scorer.events = Spy()  # type: ignore[assignment]
    code, body = answer(client)
    assert code == 200 and body["model"]["version"] == 1  # answered by the default, not the shadow
    assert done.wait(5)
    assert len(seen[0]) == 2 and all(d > 0.01 for d in seen[0])  # version 2 scores differ
    assert "gateway_shadow_score_diff_count" in client.get("/metrics").get_data(as_text=True)


def test_state_numbers_are_tf_servings() -> None:
    assert (State.LOADING, State.AVAILABLE, State.UNLOADING, State.END) == (20, 30, 40, 50)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a tmpfs that is remounted read-only (what a ConfigMap volume is in a pod)."""
    where = tmp_path / "ro"
    where.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True
    ).returncode:
        pytest.skip("mounting a tmpfs is not permitted here (needs root with CAP_SYS_ADMIN)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_label_write_to_a_read_only_config_is_a_409_naming_the_remedy(
    tmp_path: Path, read_only_dir: Path
) -> None:
    root = tiny_root(tmp_path)
    config = read_only_dir / "models.config"
    shutil.copy(root / "tiny.config", config)
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_dir)], check=True)
    with pytest.raises(OSError):
        config.write_text("x")  # really read-only, root or not
    app = tiny_app(TinyPredictor(), models_root=root, model_config_file=config, admin_token="s3cret")
    client = app.test_client()
    r = client.put(
        "/admin/v1/models/tiny/default", json={"version": 1}, headers={"Authorization": "Bearer s3cret"}
    )
    assert r.status_code == 409, r.get_data(as_text=True)
    assert "cannot be written here (Read-only file system)" in r.get_json()["msg"]
    assert "versions block" in r.get_json()["msg"]
    assert client.post("/get_score", json=EXAMPLE).status_code == 200  # scoring is not affected


def test_explained_answers_need_the_admin_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    explain = {"X-Gateway-Explain": "features"}
    off = app_for(tiny_root(tmp_path / "off"), TinyPredictor())
    r = off.post("/get_score", json=EXAMPLE, headers=explain)
    assert r.status_code == 403 and "no admin token" in r.get_json()["msg"]
    client = app_for(tiny_root(tmp_path / "on"), TinyPredictor(), admin_token="s3cret")
    r = client.post("/get_score", json=EXAMPLE, headers={**explain, "Authorization": "Bearer nope"})
    assert r.status_code == 401 and "refused: wrong token" in caplog.text
    plain = client.post("/get_score", json=EXAMPLE).get_json()
    assert "features" not in plain
    r = client.post("/get_score", json=EXAMPLE, headers={**explain, "Authorization": "Bearer s3cret"})
    body = r.get_json()
    assert r.status_code == 200 and body["data"] == plain["data"]
    assert body["features"] == {
        "columns": {},
        "vectors": {},
        "defaulted": {},
        "snapshots": {},
        "unavailable": "",
    }
