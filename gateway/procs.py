"""Start, wait for and stop the processes the gateway is made of: one module for everyone.

The local stack, the tests and the benchmarks all run the same programs (``redis-server``,
``graph-server``, gunicorn with the logic app) the same way: each in a session (process
group) of its own with its output in a log file, ready when a check passes, stopped as a
whole group (a gunicorn master and its workers together). The commands themselves are
built here too, so a test starts exactly what ``make up`` starts.
"""

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

CLK_TCK = os.sysconf("SC_CLK_TCK")
LOGIC_APP = "gateway.logic.web.app:create_app()"
GUNICORN_CONF = "python:gateway.logic.web.gunicorn_conf"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python() -> str:
    return sys.executable


class Proc:
    """A child process in its own process group, its output appended to ``log``."""

    def __init__(
        self,
        cmd: Sequence[str],
        log: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.cmd = list(cmd)
        self.log = log
        self._out = log.open("ab")
        self.popen = subprocess.Popen(
            self.cmd,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, tail: int = 6000) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")[-tail:]

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process alone (not its group)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM to the group, SIGKILL after ``timeout``; whatever is left of the group goes too."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        stop_group(self.pid, grace=0)
        self._out.close()
        return self.popen.returncode


def wait_for(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    proc: Proc | None = None,
    interval: float = 0.05,
) -> None:
    """Poll ``check`` until it returns true; fail at once if ``proc`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{what}: process exited with {proc.popen.returncode}\n{proc.output()}")
        try:
            if check():
                return
        except Exception as e:  # not up yet: connection refused, 503, ...
            last = e
        time.sleep(interval)
    detail = f"\n{proc.output()}" if proc is not None else ""
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s (last error: {last!r}){detail}")


def group_alive(pgid: int) -> bool:
    with contextlib.suppress(ChildProcessError):  # reap it if it is our child
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, grace: float = 20) -> bool:
    """SIGTERM a process group, SIGKILL what is left after ``grace`` seconds; True if it needed SIGKILL."""
    if grace > 0:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and group_alive(pgid):
            time.sleep(0.05)
    if not group_alive(pgid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    return grace > 0


# -- the programs ----------------------------------------------------------------
def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError("redis-server is not installed (make install installs it)")
    return path


def redis_command(port: int, data_dir: Path, persist: bool = False) -> list[str]:
    """redis-server on loopback; ``persist``: snapshot to ``data_dir`` every 5 min if anything changed."""
    return [
        redis_server_binary(),
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir.resolve())),
        *("--save", "300 1" if persist else "", "--appendonly", "no", "--daemonize", "no"),
    ]


def redis_ready(port: int) -> Callable[[], bool]:
    def check() -> bool:
        import redis

        client = redis.Redis(port=port, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()

    return check


def start_redis(workdir: Path, port: int | None = None) -> tuple[Proc, int]:
    """A real redis-server on loopback (no persistence), ready to answer; returns (process, port)."""
    port = port or free_port()
    proc = Proc(redis_command(port, workdir), workdir / f"redis-{port}.log")
    wait_for(redis_ready(port), 20, "redis-server", proc)
    return proc, port


def graph_command(port: int, *flags: str) -> list[str]:
    """``graph-server --port=PORT FLAGS...`` with this interpreter."""
    return [python(), "-m", "gateway.graph_server", f"--port={port}", *flags]


def graph_serving(port: int, model: str, version: int | None = None) -> Callable[[], bool]:
    """True once the graph at ``port`` reports ``version`` of ``model`` (or any version) AVAILABLE."""
    from gateway.logic.graph_client import GraphClient

    client = GraphClient([f"127.0.0.1:{port}"], model, "", 2.0)

    def check() -> bool:
        states = client.version_states()
        return states.get(version) == "AVAILABLE" if version is not None else "AVAILABLE" in states.values()

    return check


def logic_command() -> list[str]:
    """gunicorn serving the logic app with the project's gunicorn config (settings come from env)."""
    return [python(), "-m", "gunicorn", "-c", GUNICORN_CONF, LOGIC_APP]


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        import requests

        return requests.get(url, timeout=2).status_code == 200

    return check


# -- /proc readings (tests and benchmarks) ----------------------------------------
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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (processes already gone count 0)."""
    total = 0
    for pid in pids:
        fields = proc_stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
