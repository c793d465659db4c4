"""The test tiers keep their promises: ``--no-tensorflow`` fails a test that imports TensorFlow."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import numpy as np

from gateway.procs import python
from tests.support import REPO


def run_tier(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_probe.py").write_text(body)
    return subprocess.run(
        [python(), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-tensorflow", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )


def test_no_tensorflow_fails_a_test_that_imports_it(tmp_path: Path) -> None:
    out = run_tier(tmp_path, "def test_probe():\n    import tensorflow  # noqa: F401\n")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "this test tier must not import TensorFlow" in out.stdout


def test_no_tensorflow_passes_the_protos_shim(tmp_path: Path) -> None:
    body = "def test_probe():\n    from gateway.wire.protos import predict_pb2\n    assert predict_pb2.PredictRequest()\n"
    out = run_tier(tmp_path, body)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_tiny_version_is_what_make_tiny_makes(tmp_path: Path) -> None:
    """The checked-in version is reproducible: the same compiled file (pickle bytes may differ run to run,
    as pickle memoizes by object identity; what the pickle computes may not)."""
    from gateway import artifacts
    from tests.testdata import make_tiny

    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "model.yaml").write_bytes((make_tiny.HERE / "models/tiny/model.yaml").read_bytes())
    made_dir = make_tiny.make(tmp_path)
    kept_dir = make_tiny.HERE / "models" / "tiny" / "1"
    made, kept = artifacts.read_manifest(made_dir), artifacts.read_manifest(kept_dir)
    assert made["files"]["transformer.compiled.npz"] == kept["files"]["transformer.compiled.npz"]
    assert artifacts.audit(kept_dir, kept) == []
    outputs = [
        artifacts.safe_unpickle(io.BytesIO((d / "transformer.pkl").read_bytes())).transform(make_tiny.ROWS)
        for d in (made_dir, kept_dir)
    ]
    np.testing.assert_array_equal(outputs[0], outputs[1])
