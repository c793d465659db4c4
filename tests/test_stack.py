"""`gateway stack` (what `make up` / `make status` / `make down` run) on supervisord, in a scratch checkout.

The scratch checkout has the repository's specs with free ports, the freshly built versions
(linked), and one extra model exported without demo tables and with no features in Redis:
`up` reports that one with its remedy and serves the others. Then what the supervisor is
for: a graph, a gunicorn master and Redis killed with SIGKILL come back on their own, and
the model answers from the full path again (Redis's data survives: append-only file).
`down` after supervisord itself was killed still leaves no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import yaml

from gateway.featurestore import keys
from gateway.procs import free_port, proc_stat, python, wait_for
from gateway.stack import MARK, Stack
from tests.support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODELS = ("ctr", "risk", "risk_lr")


def scratch_checkout(built: Path, root: Path) -> tuple[Path, dict[str, dict[str, int]], int]:
    """A checkout with free ports: (path, model -> ports, redis port)."""
    settings = yaml.safe_load((REPO / "deploy" / "settings.yaml").read_text())
    settings["redis"]["port"] = redis_port = free_port()
    (root / "deploy").mkdir(parents=True)
    (root / "deploy" / "settings.yaml").write_text(yaml.safe_dump(settings))
    ports: dict[str, dict[str, int]] = {}
    for model, source in [*((m, m) for m in MODELS), ("orphan", "risk_lr")]:
        spec = yaml.safe_load((built / source / "model.yaml").read_text())
        graph = spec.get("backend") != "sklearn"
        ports[model] = {"logic": free_port(), **({"grpc": free_port(), "rest": free_port()} if graph else {})}
        spec["deploy"]["ports"] = ports[model]
        spec["name"] = model
        (root / "models" / model).mkdir(parents=True)
        (root / "models" / model / "model.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        for entry in (built / source).iterdir():
            if entry.name != "model.yaml" and not (model == "orphan" and entry.name == "demo"):
                (root / "models" / model / entry.name).symlink_to(entry)
    return root, ports, redis_port


def gateway(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [python(), "-m", "gateway.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def full_answer(port: int, model: str) -> bool:
    """A /get_score answer from the full path (not degraded) for the model's README example."""
    body = json.loads((REPO / "examples" / f"{model}.json").read_text())
    r = requests.post(f"http://127.0.0.1:{port}/get_score", json=body, timeout=5)
    return r.status_code == 200 and not r.json().get("degraded")


def pid_of(stack: Stack, program: str) -> int:
    out = stack.ctl("pid", program).stdout.strip()
    return int(out) if out.isdigit() else 0


def ours(checkout: Path) -> list[int]:
    """Live processes working under the checkout or carrying the stack's mark (what `down` must stop)."""
    mark = f"{MARK}={checkout}".encode()
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        pid = int(stat.parent.name)
        fields = proc_stat(pid)
        if fields is None or fields[0] == "Z" or pid == os.getpid():
            continue
        try:
            here = Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(checkout)
            if here or mark in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                pids.append(pid)
        except OSError:
            continue
    return pids


def restarted(stack: Stack, program: str, old: int) -> bool:
    return stack.state().get(program) == "RUNNING" and pid_of(stack, program) not in (0, old)


def test_stack_supervises_and_down_leaves_nothing(built_models: Path, tmp_path: Path) -> None:
    checkout, ports, redis_port = scratch_checkout(built_models, tmp_path / "checkout")
    checkout = checkout.resolve()
    rendered = gateway("render", "--repo", str(checkout), cwd=checkout)
    assert rendered.returncode == 0, rendered.stderr
    stack = Stack(checkout)
    try:
        up = gateway("stack", "up", "--repo", str(checkout), cwd=checkout)
        # The model without features is reported with its remedy; the others serve.
        assert up.returncode == 1, up.stdout + up.stderr
        assert "orphan" in up.stderr and "FAILED" in up.stderr
        assert "gateway features load orphan" in up.stderr, up.stderr
        for model in MODELS:
            assert f"http://127.0.0.1:{ports[model]['logic']}/get_score" in up.stdout, up.stdout
        assert "ctr/item: 2000 rows" in up.stdout and "ctr/user: 20000 rows" in up.stdout
        for model in MODELS:
            smoke = gateway("smoke", model, "--url", f"http://127.0.0.1:{ports[model]['logic']}", cwd=REPO)
            assert smoke.returncode == 0, smoke.stdout + smoke.stderr
            assert "FAIL" not in smoke.stdout

        status = gateway("stack", "status", "--repo", str(checkout), cwd=checkout)
        for program in ("redis", "graph-risk", "logic-risk", "graph-ctr", "logic-ctr", "logic-risk_lr"):
            assert any(p.split(":")[-1] == program and "RUNNING" in line
                       for line in status.stdout.splitlines() for p in line.split()[:1]), status.stdout  # fmt: skip

        again = gateway("stack", "up", *MODELS, "--repo", str(checkout), cwd=checkout)
        assert again.returncode == 0, again.stderr
        assert "already running: nothing changed" in again.stdout

        _supervisor_restarts(stack, ports, redis_port)

        restart = gateway("stack", "restart", "ctr", "--repo", str(checkout), cwd=checkout)
        assert restart.returncode == 0 and "started" in restart.stdout, restart.stdout + restart.stderr
        wait_for(lambda: full_answer(ports["ctr"]["logic"], "ctr"), 120, "ctr after restart", interval=0.5)
    finally:
        # A crashed supervisord leaves its children running: down must find and stop them too.
        sup = stack.supervisord_pid()
        if sup is not None:
            os.kill(sup, signal.SIGKILL)
            wait_for(lambda: stack.supervisord_pid() is None, 10, "supervisord gone")
        before = ours(checkout)
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in before]
        down = gateway("stack", "down", "--repo", str(checkout), cwd=checkout, timeout=120)
    assert down.returncode == 0, down.stderr
    assert len(before) >= 9, before  # redis, 2 graphs, 3 gunicorn masters with their workers
    assert any(b"redis-server" in c for c in commands)  # Redis too, though it rewrites its environment
    assert "left behind by a crash" in down.stdout, down.stdout
    assert ours(checkout) == []
    assert [pid for pid in before if (proc_stat(pid) or ["Z"])[0] != "Z"] == []


def _supervisor_restarts(stack: Stack, ports: dict[str, Any], redis_port: int) -> None:
    """SIGKILL a graph, a gunicorn master and Redis: each comes back, answers are full again."""
    risk = ports["risk"]["logic"]
    old = pid_of(stack, "risk:graph-risk")
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: restarted(stack, "risk:graph-risk", old), 60, "graph-risk restarted", interval=0.2)

    def ready_and_full() -> bool:
        r = requests.get(f"http://127.0.0.1:{risk}/ready", timeout=5)
        if r.status_code != 200 or r.json()["checks"]["full"] is not True:  # kept as the last error
            raise AssertionError(f"/ready answered {r.status_code}: {r.text}")
        return full_answer(risk, "risk")

    wait_for(ready_and_full, 120, "risk full answers after its graph restarted", interval=0.5)

    old = pid_of(stack, "ctr:logic-ctr")
    os.killpg(old, signal.SIGKILL)  # the master and its workers, as an OOM kill of the container would
    wait_for(lambda: restarted(stack, "ctr:logic-ctr", old), 60, "logic-ctr restarted", interval=0.2)
    wait_for(lambda: full_answer(ports["ctr"]["logic"], "ctr"), 120, "ctr answers again", interval=0.5)

    client = redis.Redis(port=redis_port)
    live = client.get(keys.alias_key("risk", "customer"))
    assert live is not None
    time.sleep(1.2)  # appendfsync everysec
    old = pid_of(stack, "redis")
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: restarted(stack, "redis", old), 60, "redis restarted", interval=0.2)
    wait_for(lambda: bool(client.ping()), 30, "redis answers")
    assert client.get(keys.alias_key("risk", "customer")) == live  # the features survived
    wait_for(lambda: full_answer(risk, "risk"), 60, "risk answers after redis restarted", interval=0.5)
