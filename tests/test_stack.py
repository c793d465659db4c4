"""`gateway stack up` / `down` (what `make up` / `make down` run) on free ports in a scratch directory."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from gateway.procs import free_port, proc_stat, python
from tests.support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _our_processes(run_dir: Path) -> list[int]:
    """Live processes whose pid files `up` wrote, plus anything still in their process groups."""
    pids = (
        [int(p.read_text()) for p in (run_dir / "pids").glob("*.pid")] if (run_dir / "pids").is_dir() else []
    )
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = proc_stat(int(stat.parent.name))
        if (
            fields is not None
            and fields[0] != "Z"
            and (int(stat.parent.name) in pids or int(fields[2]) in pids)
        ):
            alive.append(int(stat.parent.name))
    return alive


def test_up_serves_the_examples_and_down_leaves_nothing(built_models: Path, tmp_path: Path) -> None:
    ports = {
        model: {"logic_port": free_port(), "grpc_port": free_port(), "rest_port": free_port()}
        for model in ("risk", "ctr")
    }
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text(yaml.safe_dump({"redis": {"port": free_port()}, "models": ports}))
    cli = [python(), "-m", "gateway.cli", "stack"]
    common = ["--root", str(built_models), "--stack-file", str(stack_file)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

    up = subprocess.run(
        [*cli, "up", *common], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        for p in ports.values():
            assert f"http://127.0.0.1:{p['logic_port']}/get_score" in up.stdout
        assert "ctr/user: 20000 rows, 20000 keys -> snapshot 1 (now live)" in up.stdout
        assert "ctr/item: 2000 rows, 6000 keys -> snapshot 1 (now live)" in up.stdout
        started = _our_processes(tmp_path / ".run")
        assert len(started) >= 9  # redis, and per model a graph and gunicorn master + 2 workers

        risk = json.loads((REPO / "examples" / "risk.json").read_text())
        r = requests.post(f"http://127.0.0.1:{ports['risk']['logic_port']}/get_score", json=risk, timeout=10)
        assert r.status_code == 200, r.text
        assert len(r.json()["data"]) == len(risk["data"])

        ctr = json.loads((REPO / "examples" / "ctr.json").read_text())
        r = requests.post(f"http://127.0.0.1:{ports['ctr']['logic_port']}/get_score", json=ctr, timeout=10)
        assert r.status_code == 200, r.text
        ranked = r.json()["data"]
        assert len(ranked) == ctr["top_k"] and {d["item_id"] for d in ranked} <= set(ctr["item_ids"])
        assert [d["score"] for d in ranked] == sorted((d["score"] for d in ranked), reverse=True)
    finally:
        pids_before_down = _our_processes(tmp_path / ".run")
        down = subprocess.run(
            [*cli, "down"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
    assert down.returncode == 0, down.stderr
    still = [
        pid
        for pid in pids_before_down
        if Path(f"/proc/{pid}").exists() and (proc_stat(pid) or ["gone"])[0] != "Z"
    ]
    assert still == [], f"processes left after down: {still}"
