"""`gateway inspect`: the same facts as TensorFlow's own tools, without loading TensorFlow."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.procs import python
from gateway.saver.inspect import inspect_version, render_text
from tests.support import ANCHORS, ANCHORS_FOUND, NO_ANCHORS, REPO

HALF_PLUS_TWO = ANCHORS / "saved_model_half_plus_two_cpu" / "00000123"
needs_anchors = pytest.mark.skipif(ANCHORS_FOUND is None, reason=NO_ANCHORS)


def _shape(dims: list[dict[str, str]]) -> list[int]:
    return [int(d["size"]) for d in dims]


@needs_anchors
def test_signatures_match_tf_servings_own_metadata_for_half_plus_two() -> None:
    """TF-Serving's recorded GetModelMetadata answer for the same SavedModel is the reference."""
    expected = json.loads((ANCHORS / "half_plus_two_model_metadata.json").read_text())
    want = expected["metadata"]["signature_def"]["signature_def"]
    info = inspect_version(HALF_PLUS_TWO)
    (serve,) = [mg for mg in info["saved_model"] if "serve" in mg["tags"]]
    got = serve["signatures"]
    assert set(got) == set(want)
    for name, sig in want.items():
        assert got[name]["method_name"] == sig["method_name"]
        for kind in ("inputs", "outputs"):
            assert set(got[name][kind]) == set(sig[kind])
            for alias, t in sig[kind].items():
                mine = got[name][kind][alias]
                assert (mine["dtype"], mine["name"]) == (t["dtype"], t["name"])
                assert mine["shape"] == (
                    None
                    if t["tensor_shape"].get("unknown_rank")
                    else _shape(t["tensor_shape"].get("dim", []))
                )
    assert info["manifest"] is None and info["audit"]["ok"] is False  # not one of our versions: no manifest


def _saved_model_cli(vdir: Path) -> dict[str, dict[str, dict[str, tuple[str, str]]]]:
    """Signatures as ``saved_model_cli show --all`` prints them: name -> inputs/outputs -> (dtype, shape)."""
    exe = shutil.which("saved_model_cli", path=str(Path(sys.executable).parent)) or "saved_model_cli"
    out = subprocess.run(
        [exe, "show", "--all", "--dir", str(vdir)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    ).stdout
    sigs: dict[str, dict[str, dict[str, tuple[str, str]]]] = {}
    sig = kind = alias = ""
    dtype = ""
    for line in out.splitlines():
        if m := re.match(r"signature_def\['(.+)'\]:", line):
            sig = m.group(1)
            sigs[sig] = {"inputs": {}, "outputs": {}}
        elif m := re.match(r"\s+(inputs|outputs)\['(.+)'\] tensor_info:", line):
            kind, alias = m.groups()
        elif m := re.match(r"\s+dtype: (\S+)", line):
            dtype = m.group(1)
        elif (m := re.match(r"\s+shape: (.+)", line)) and sig:
            sigs[sig][kind][alias] = (dtype, m.group(1).strip())
        elif line.startswith("Concrete Functions"):
            break
    return sigs


def _as_cli_shape(shape: list[int] | None) -> str:
    if shape is None:
        return "unknown_rank"
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


@pytest.mark.slow
def test_signatures_match_saved_model_cli_for_a_built_version(built_models: Path) -> None:
    vdir = built_models / "ctr" / "1"
    reference = _saved_model_cli(vdir)
    (serve,) = inspect_version(vdir)["saved_model"]
    mine = {
        name: {
            kind: {a: (t["dtype"], _as_cli_shape(t["shape"])) for a, t in sig[kind].items()}
            for kind in ("inputs", "outputs")
        }
        for name, sig in serve["signatures"].items()
    }
    assert mine == reference
    assert mine["serving_default"]["inputs"]["item_embedding"] == ("DT_FLOAT", "(-1, 32)")


def _run_cli(*args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run `gateway inspect` in a fresh interpreter; also report any real TensorFlow module it loaded."""
    code = (
        "import sys, json\n"
        "from gateway.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "tf = sorted(m for m in sys.modules if m.split('.')[:2] == ['tensorflow', 'python'])\n"
        "print('TF-MODULES ' + json.dumps(tf))\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [python(), "-c", code, "inspect", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    head, _, tail = proc.stdout.rpartition("TF-MODULES ")
    proc.stdout = head
    return proc, json.loads(tail)


@pytest.mark.slow
def test_cli_shows_signature_and_manifest_without_tensorflow(built_models: Path) -> None:
    proc, tf_modules = _run_cli(str(built_models / "ctr"))  # a model directory: its latest version
    assert proc.returncode == 0, proc.stderr
    assert tf_modules == []
    out = proc.stdout
    assert f"version directory: {built_models / 'ctr' / '1'}" in out
    assert "signature 'serving_default'  method tensorflow/serving/predict" in out
    assert re.search(r"input\s+item_embedding\s+DT_FLOAT\s+\(-1, 32\)", out)
    assert re.search(r"output\s+probability\s+DT_FLOAT\s+\(-1, 1\)", out)
    assert "all sha256 match" in out and "verdict: OK" in out and "metrics: accuracy" in out

    proc, tf_modules = _run_cli(str(built_models / "risk" / "1"), "--json")
    info: dict[str, Any] = json.loads(proc.stdout)
    assert proc.returncode == 0 and tf_modules == []
    assert info["saved_model"][0]["signatures"]["score"]["inputs"]["features"]["dtype"] == "DT_FLOAT"
    assert (
        info["manifest"]["model"] == "risk"
        and info["audit"] == inspect_version(built_models / "risk" / "1")["audit"]
    )


@pytest.mark.slow
def test_cli_exit_status_flags_a_tampered_version(built_models: Path, tmp_path: Path) -> None:
    vdir = tmp_path / "7"
    shutil.copytree(built_models / "risk" / "1", vdir)
    with (vdir / "variables" / "variables.index").open("ab") as f:
        f.write(b"\0")
    proc, _ = _run_cli(str(vdir))
    assert proc.returncode == 3
    assert "variables/variables.index: sha256 does not match the manifest" in proc.stdout
    assert "verdict: NOT SAFE TO SERVE" in proc.stdout


@needs_anchors
def test_text_rendering_of_a_bare_saved_model() -> None:
    text = render_text(inspect_version(HALF_PLUS_TWO))
    assert "signature 'regress_x_to_y'  method tensorflow/serving/regress" in text
    assert "manifest: none" in text
