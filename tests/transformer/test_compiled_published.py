"""Published versions carry their compiled transformer; workers serve from it without scikit-learn."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway import artifacts
from gateway.errors import ArtifactError
from gateway.logic.versions.loader import load_version
from gateway.logic.web.app import create_app
from gateway.procs import python
from gateway.settings import Settings
from gateway.spec import load_spec
from gateway.transformer import ir
from gateway.transformer.stage import load_transform
from tests.support import REPO

pytestmark = pytest.mark.slow  # reads the models trained by built_models
EXAMPLE = json.loads((REPO / "examples" / "risk.json").read_text())
HEAVY = ("sklearn", "pandas", "scipy")

# Run in a fresh interpreter: build the logic app the way a gunicorn worker does, score, report.
WORKER = """
import json, sys
from pathlib import Path
from gateway.logic.web.app import create_app
from gateway.settings import Settings

args = json.loads(sys.argv[1])
settings = Settings(model="risk", models_root=Path(args["root"]), redis_url=args["redis"],
                    graph_targets=args["graph"])
client = create_app(settings).test_client()
scored = client.post("/get_score", json=args["payload"])
ready = client.get("/ready")
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(args["heavy"]))
print(json.dumps({"score": [scored.status_code, scored.get_json()], "ready": ready.get_json(), "heavy": heavy}))
"""


def _copy(built_models: Path, root: Path, model: str = "risk") -> Path:
    shutil.copytree(built_models / model, root / model, ignore=shutil.ignore_patterns("demo"))
    for spec in built_models.glob("*/model.yaml"):  # a spec may extend another
        (root / spec.parent.name).mkdir(exist_ok=True)
        if not (root / spec.parent.name / "model.yaml").exists():
            shutil.copy(spec, root / spec.parent.name / "model.yaml")
    return root / model / "1"


def _as_published_before_compiled_files(vdir: Path) -> None:
    """What a version published before this change holds: no compiled file, no record of one."""
    (vdir / ir.FILE).unlink()
    manifest = artifacts.read_manifest(vdir)
    del manifest["files"][ir.FILE], manifest[ir.MANIFEST_KEY]
    (vdir / artifacts.MANIFEST).write_text(json.dumps(manifest, indent=2))


@pytest.mark.parametrize("model", ["risk", "risk_lr", "ctr"])
def test_versions_record_their_compiled_transformer(built_models: Path, model: str) -> None:
    vdir = built_models / model / "1"
    manifest = artifacts.read_manifest(vdir)
    assert manifest[ir.MANIFEST_KEY] == {
        "file": ir.FILE,
        "format": ir.FORMAT_VERSION,
        "complete": True,
        "fallbacks": [],
        "verified": {"rows": manifest["training"]["rows"]["holdout"], "max_abs_diff": 0.0},
    }
    assert manifest["files"][ir.FILE] == artifacts.sha256_file(vdir / ir.FILE)
    spec = load_spec(built_models / model / "model.yaml")
    assert load_transform(vdir, manifest, spec.transformer, []).source == "artifact"


def test_a_tampered_compiled_file_is_refused(built_models: Path, tmp_path: Path) -> None:
    vdir = _copy(built_models, tmp_path)
    data = bytearray((vdir / ir.FILE).read_bytes())
    data[-30] ^= 0x01
    (vdir / ir.FILE).write_bytes(bytes(data))
    with pytest.raises(
        ArtifactError, match=r"transformer\.compiled\.npz: sha256 .* changed after publishing"
    ):
        load_version(load_spec(tmp_path / "risk" / "model.yaml"), vdir, 1, [])
    client = create_app(Settings(model="risk", models_root=tmp_path)).test_client()
    (status,) = client.get("/v1/models/risk").get_json()["model_version_status"]
    assert (
        status["state"] == "END" and "transformer.compiled.npz: sha256" in status["status"]["error_message"]
    )


@pytest.mark.integration
def test_a_worker_serves_from_the_compiled_file_without_scikit_learn_pandas_or_scipy(
    built_models: Path, risk_graph: int, risk_features: Callable[[int], str], tmp_path: Path
) -> None:
    redis_url, graph = risk_features(1), [f"127.0.0.1:{risk_graph}"]
    args = {"root": str(built_models), "redis": redis_url, "graph": graph, "payload": EXAMPLE, "heavy": HEAVY}
    out = subprocess.run(
        [python(), "-c", WORKER, json.dumps(args)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    worker = json.loads(out.stdout)
    assert worker["heavy"] == []
    assert worker["ready"]["checks"]["versions"]["1"]["transformer_source"] == "artifact"
    status, body = worker["score"]
    assert status == 200, body

    # The same version as published before compiled files: unpickled and compiled in this process.
    _as_published_before_compiled_files(_copy(built_models, tmp_path))
    client = create_app(
        Settings(model="risk", models_root=tmp_path, redis_url=redis_url, graph_targets=graph)
    )
    pickled = client.test_client()
    reference: Any = pickled.post("/get_score", json=EXAMPLE).get_json()
    assert pickled.get("/ready").get_json()["checks"]["versions"]["1"]["transformer_source"] == "pickle"
    assert body == reference  # every score, bit for bit
