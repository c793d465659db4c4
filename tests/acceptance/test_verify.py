"""``gateway verify`` against a real deployment that is right, and against ones that are wrong.

One redis-server, one graph-server and two gunicorn logic services on free ports serve
``risk`` from a served models directory; ``verify`` reads the reference directory (the
versions as published). In the served directory, version 4 carries the transformer of a
version trained with another seed and version 5 that version's SavedModel (their manifests
re-hashed, so the service accepts them); the reference holds version 1 under all three
numbers. A second logic service reads a spec whose post-processing differs. Last, another
feature snapshot is loaded. Each wrong deployment must fail (exit 3) on the path it breaks,
showing the offending request or naming the entity and field.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import yaml

from gateway import artifacts
from gateway.cli import main
from gateway.deploy.serving import GRAPH_ENV, TF_FLAGS, version_flags
from gateway.logic.versions import config_file
from gateway.procs import Proc, free_port, graph_command, python
from gateway.spec import load_spec
from tests.support import REPO, start_logic

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.tensorflow]
TOKEN = "verify-test-token"
VERSIONS = [1, 4, 5]


@dataclass
class Deployment:
    reference: Path
    url: str  # serves the reference's post-processing
    calibrated_url: str  # the same versions, another post-processing
    redis_url: str
    demo: Path


def _rehash(vdir: Path) -> None:
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["files"] = artifacts.hash_tree(vdir)
    (vdir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _spec_with(src: Path, dst: Path, **changes: object) -> None:
    spec = yaml.safe_load(src.read_text())
    spec.update(changes)
    dst.write_text(yaml.safe_dump(spec, sort_keys=False))


def _logic(root: Path, redis_url: str, grpc_port: int, config: Path, log: Path) -> tuple[Proc, str]:
    return start_logic(
        "risk", root, redis_url, log, grpc_port,
        GATEWAY_WORKERS="1", GATEWAY_MODEL_CONFIG_FILE=str(config), GATEWAY_ADMIN_TOKEN=TOKEN,
    )  # fmt: skip


@pytest.fixture(scope="module")
def deployment(
    built_models: Path, risk_features: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("verify")
    built = built_models / "risk"
    reference, served, calibrated, side = (tmp / d / "risk" for d in ("ref", "served", "calibrated", "side"))
    for base in (reference, served, calibrated, side):
        base.mkdir(parents=True)
    shutil.copy(built / "model.yaml", side / "model.yaml")
    subprocess.run(
        [python(), "-m", "gateway.cli", "train", "risk", "--root", str(side.parent), "--seed", "7"],
        cwd=REPO,
        check=True,
        capture_output=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    other = side / "1"
    policy = {"policy": {"specific": VERSIONS}, "promotion": "auto"}
    _spec_with(built / "model.yaml", reference / "model.yaml", versions=policy)
    _spec_with(built / "model.yaml", served / "model.yaml", versions=policy)
    post = yaml.safe_load((built / "model.yaml").read_text())["postprocess"]
    _spec_with(
        built / "model.yaml",
        calibrated / "model.yaml",
        versions=policy,
        postprocess={**post, "calibration": {"method": "platt", "a": 1.5, "b": -0.2}},
    )
    for v in VERSIONS:
        shutil.copytree(built / "1", reference / str(v))
        shutil.copytree(built / "1", served / str(v))
    for name in ("transformer.pkl", "transformer.compiled.npz"):  # version 4: another version's transformer
        shutil.copy(other / name, served / "4" / name)
    _rehash(served / "4")
    shutil.rmtree(served / "5" / "variables")  # version 5: another version's graph
    shutil.copytree(other / "variables", served / "5" / "variables")
    shutil.copy(other / "saved_model.pb", served / "5" / "saved_model.pb")
    _rehash(served / "5")
    for v in VERSIONS:
        (calibrated / str(v)).symlink_to(served / str(v))
    spec = load_spec(served / "model.yaml")
    config = tmp / "risk.config"
    config_file.ensure(config, spec, str(served))
    grpc_port = free_port()
    graph = Proc(
        graph_command(grpc_port, *version_flags(str(config)), *TF_FLAGS),
        tmp / "graph.log",
        env={"TF_CPP_MIN_LOG_LEVEL": "2", **GRAPH_ENV},
    )
    procs = [graph]
    redis_url = risk_features(12)
    try:
        logic, url = _logic(served.parent, redis_url, grpc_port, config, tmp / "logic.log")
        procs.append(logic)
        logic2, url2 = _logic(calibrated.parent, redis_url, grpc_port, config, tmp / "logic2.log")
        procs.append(logic2)
        yield Deployment(reference.parent, url, url2, redis_url, built / "demo" / "customer.parquet")
    finally:
        for p in procs:
            p.stop()


def verify(
    d: Deployment, capsys: pytest.CaptureFixture[str], *args: str, url: str | None = None
) -> tuple[int, str]:
    code = main(
        ["verify", "risk", "--root", str(d.reference), "--url", url or d.url, "--token", TOKEN, "-q",
         "--n", "150", *args]
    )  # fmt: skip
    out = capsys.readouterr().out
    return code, out


def test_the_served_version_answers_like_the_offline_model(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = verify(deployment, capsys, "--version", "1", "--json", str(tmp_path / "r.json"))
    assert code == 0, out
    assert "model path:   ok" in out and "feature path: ok" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["requests"] == 150 and report["rows"] == 150 and report["ok"] is True
    assert report["max_abs_diff"] <= 1e-5


@pytest.mark.parametrize(
    "version", ["4", "5"], ids=["another-versions-transformer", "a-graph-serving-another-version"]
)
def test_a_transformer_or_graph_of_another_version_fails_the_model_path(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], version: str
) -> None:
    code, out = verify(deployment, capsys, "--version", version)
    assert code == 3, out
    assert "model path:   FAILED" in out and "feature path: ok" in out
    assert '  request {"data":[{"customer_id":"C' in out  # the offending request is shown


def test_a_different_post_processing_fails_the_model_path(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = verify(deployment, capsys, "--version", "1", url=deployment.calibrated_url)
    assert code == 3, out
    assert "model path:   FAILED" in out and "served  [{" in out and "offline [{" in out


def test_another_feature_snapshot_fails_the_feature_path_naming_entities_and_fields(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.featurestore.load import load_entity, read_table

    table = read_table(deployment.demo)
    changed = table.assign(income=table["income"] * 1.1)
    client = redis.Redis.from_url(deployment.redis_url)
    try:
        load_entity(client, load_spec(deployment.reference / "risk" / "model.yaml"), "customer", changed)
        code, out = verify(deployment, capsys, "--version", "1")
        assert code == 3, out
        assert "model path:   ok" in out  # the service computed right from what it read
        assert "feature path: FAILED" in out
        assert "customer 'C" in out and " income: live " in out
        assert '    in request {"data":[{"customer_id":"C' in out  # the offending request is shown
        assert " age: " not in out  # only the field that changed is named
        code, out = verify(deployment, capsys, "--version", "1", "--features", "live")
        assert code == 0, out
        assert "feature path: skipped" in out
    finally:
        load_entity(client, load_spec(deployment.reference / "risk" / "model.yaml"), "customer", table)
        client.close()
