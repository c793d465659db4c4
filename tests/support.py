"""Helpers for tests that run real servers: free ports, readiness waits, process lifecycle."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANCHOR_DIR = Path("shared") / "anchors" / "tf_serving_testdata"


def find_anchors() -> Path | None:
    """TF-Serving's own test models and configs (the fidelity reference), if this checkout has them.

    ``TF_SERVING_TESTDATA`` names the directory; otherwise ``shared/anchors/tf_serving_testdata``
    is looked for beside the repository and in its parents. They are not part of the repository.
    """
    given = os.environ.get("TF_SERVING_TESTDATA")
    candidates = [Path(given)] if given else [p / ANCHOR_DIR for p in REPO.parents]
    return next((c for c in candidates if (c / "PROVENANCE.txt").is_file()), None)


ANCHORS_FOUND = find_anchors()
ANCHORS = ANCHORS_FOUND or REPO.parent / ANCHOR_DIR
NO_ANCHORS = (
    "TF-Serving's test data not found (set TF_SERVING_TESTDATA, or place shared/anchors/"
    "tf_serving_testdata beside the repository)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str, proc: Proc | None = None) -> None:
    """Poll ``check`` until it returns true; fail early if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.popen.returncode}\n{proc.output()}")
        try:
            if check():
                return
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.05)
    detail = proc.output() if proc is not None else ""
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last!r})\n{detail}")


class Proc:
    """A child process in its own process group, with its output captured to a file."""

    def __init__(
        self, cmd: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            list(cmd),
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.popen.pid

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")[-6000:]

    def stop(self, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        # reap anything else left in the group (gunicorn workers)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self._out.close()
        return self.popen.returncode


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError("redis-server is not installed (make install installs it)")
    return path


def python() -> str:
    return sys.executable


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, ...); None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """Live direct children of ``pid`` (e.g. a gunicorn master's workers)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = proc_stat(int(stat.parent.name))
        if fields is not None and int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def start_redis(workdir: Path, port: int | None = None) -> tuple[Proc, int]:
    """A real redis-server on loopback (no persistence), ready to answer; returns (process, port)."""
    import redis

    port = port or free_port()
    proc = Proc(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        workdir / f"redis-{port}.log",
    )
    client = redis.Redis(port=port)
    try:
        wait_for(lambda: bool(client.ping()), 20, "redis-server", proc)
    finally:
        client.close()
    return proc, port
