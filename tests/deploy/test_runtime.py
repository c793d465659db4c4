"""The logic image's runtime, built here as its Dockerfile builds it, answers /get_score without TensorFlow.

From the model's bundle (the image's build context): a venv with the package and its own
dependencies, tensorflow-serving-api without its dependencies, and the TensorFlow message
modules computed by ``gateway.wire.closure`` (no ``tensorflow`` package). gunicorn from that
venv then scores the README example through the real graph-server and Redis, equal to the
offline answer.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from gateway.deploy.bundle import bundle
from gateway.procs import Proc, free_port, wait_for
from tests.reference import risk_scores
from tests.support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.tensorflow]


def tensorflow_site() -> Path:
    """The site-packages holding TensorFlow in the test's environment (found without importing it)."""
    spec = importlib.util.find_spec("tensorflow")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))).parent


def pip(venv: Path, *args: str, cwd: Path) -> None:
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def runtime(built_models: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(venv, bundle): the logic runtime, built from the risk model's bundle."""
    base = tmp_path_factory.mktemp("logic-runtime")
    context = base / "context"
    bundle(REPO, "risk", context, store=built_models)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip(venv, "-c", "constraints.txt", ".", cwd=context)
    pip(venv, "--no-deps", "-c", "constraints.txt", "tensorflow-serving-api", cwd=context)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    copied = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "gateway.wire.closure", "--from", str(tensorflow_site()), "--into", str(site)],
        capture_output=True, text=True, timeout=120, cwd=base,
    )  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    assert "TensorFlow message modules copied" in copied.stdout
    return venv, context


def test_the_runtime_has_no_tensorflow_package(runtime: tuple[Path, Path]) -> None:
    venv, _ = runtime
    probe = (
        "import importlib.util, importlib.metadata as md, sys\n"
        "assert importlib.util.find_spec('tensorflow.python') is None\n"
        "names = {d.metadata['Name'].lower() for d in md.distributions()}\n"
        "assert 'tensorflow' not in names and 'tensorflow-cpu' not in names, names\n"
        "assert 'tensorflow-serving-api' in names\n"
        "import gateway.wire.protos\n"
        "print(sorted(m for m in sys.modules if m.startswith('tensorflow')))\n"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, timeout=60, cwd=venv
    )
    assert out.returncode == 0, out.stderr
    assert "tensorflow.core.framework.tensor_pb2" in out.stdout


@pytest.fixture(scope="module")
def logic(
    runtime: tuple[Path, Path],
    risk_graph: int,
    risk_features: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    venv, context = runtime
    port = free_port()
    env = {
        "PYTHONPATH": "",  # only what the runtime has
        "GATEWAY_MODEL": "risk",
        "GATEWAY_MODELS_ROOT": str(context / "models"),  # the specs and versions the image carries
        "GATEWAY_REDIS_URL": risk_features(7),
        "GATEWAY_GRAPH_TARGETS": json.dumps([f"127.0.0.1:{risk_graph}"]),
        "GATEWAY_BIND": f"127.0.0.1:{port}",
        "GATEWAY_WORKERS": "1",
    }
    cmd = [str(venv / "bin" / "gunicorn"), "-c", "python:gateway.logic.web.gunicorn_conf", "gateway.logic.web.app:create_app()"]  # fmt: skip
    run_dir = tmp_path_factory.mktemp("logic-runtime-run")
    proc = Proc(cmd, run_dir / "gunicorn.log", env=env, cwd=run_dir)
    url = f"http://127.0.0.1:{port}"
    wait_for(
        lambda: requests.get(f"{url}/ready", timeout=1).status_code == 200, 90, "gunicorn (runtime)", proc
    )
    yield url
    proc.stop()


def test_the_runtime_answers_get_score_equal_to_offline(logic: str, built_models: Path) -> None:
    body = json.loads((REPO / "examples" / "risk.json").read_text())
    r = requests.post(f"{logic}/get_score", json=body, timeout=10)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["code"] == 200 and not out.get("degraded"), out
    base = built_models / "risk"
    expected = risk_scores(base / "model.yaml", base / "1", base / "demo" / "customer.parquet", body["data"])
    np.testing.assert_allclose([d["score"] for d in out["data"]], expected, atol=1e-5, rtol=0)
