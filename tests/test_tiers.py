"""The test tiers keep their promises: ``--no-tensorflow`` fails a test that imports TensorFlow."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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
