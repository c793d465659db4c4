"""The local stack (``make up`` / ``make down`` / ``make status``) on supervisord.

The process list is ``deploy/local/supervisord.conf`` (rendered from the specs by ``gateway
render``); everything the stack keeps is under ``.run/`` (supervisord's socket and pid file,
logs, Redis's data, each model's model config file, the admin token). ``up`` starts
supervisord if it is not running, Redis, loads the demo features, then each model's graph
and logic service, waiting for each to be ready; a model that cannot start is reported and
the others serve. supervisord restarts whatever dies and rotates the logs. Every process
the stack starts carries ``GATEWAY_STACK=<repository>`` in its environment, so ``down``
stops everything, even processes a crashed supervisord left behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gateway import procs
from gateway.deploy.settings import load_models, load_settings
from gateway.errors import ConfigError
from gateway.spec import GraphModelSpec, ModelSpec

RUN = Path(".run")
CONF = Path("deploy/local/supervisord.conf")
READY_TIMEOUT_S = 180.0
MARK = "GATEWAY_STACK"


class Stack:
    def __init__(self, repo: Path) -> None:
        self.repo = repo.resolve()
        self.run = self.repo / RUN
        self.conf = self.repo / CONF

    # -- supervisord ---------------------------------------------------
    def ctl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args]
        return subprocess.run(cmd, cwd=self.repo, capture_output=True, text=True, check=check, timeout=120)

    def supervisord_pid(self) -> int | None:
        try:
            pid = int((self.run / "supervisord.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if procs.proc_stat(pid) is not None else None

    def _start_supervisord(self) -> None:
        for d in ("logs", "redis", "config"):
            (self.run / d).mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "GATEWAY_PYTHON": sys.executable,
            "GATEWAY_ADMIN_TOKEN": self.admin_token(),
            MARK: str(self.repo),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        cmd = [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)]
        started = subprocess.run(cmd, cwd=self.repo, env=env, capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            why = (started.stderr or started.stdout).strip()
            raise ConfigError(f"supervisord did not start with {self.conf}: {why}")
        procs.wait_for(lambda: self.ctl("pid").returncode == 0, 30, "supervisord")

    def admin_token(self) -> str:
        """``.run/admin-token``: made once, readable by its owner only; the CLI reads it too."""
        path = self.run / "admin-token"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24) + "\n")
        return path.read_text().strip()

    def state(self) -> dict[str, str]:
        """Program (``group:program`` for a model's) -> supervisord's state (RUNNING, STOPPED, FATAL, ...)."""
        out = {}
        for line in self.ctl("status").stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                out[parts[0]] = parts[1]
        return out

    # -- up ------------------------------------------------------------
    def up(self, only: list[str] | None = None) -> int:
        if not self.conf.is_file():
            raise ConfigError(f"{self.conf}: missing; run `gateway render`")
        settings = load_settings(self.repo)
        models = [m for m in load_models(self.repo) if only is None or m.name in only]
        if only is not None and {m.name for m in models} != set(only):
            raise ConfigError(f"no such model to start: {sorted(set(only) - {m.name for m in models})}")
        if self.supervisord_pid() is None:
            self._start_supervisord()
        else:
            self.ctl("update")  # added or removed programs (a new spec, rendered)
        before = self.state()
        self._start("redis", procs.redis_ready(settings.redis.port))
        failed = {}
        for spec in models:
            try:
                self._up_model(spec, settings.redis.port)
            except Exception as e:  # one model that cannot start does not stop the others
                failed[spec.name] = str(e).splitlines()[0]
        changed = before != self.state()
        self._print(models, failed, settings.redis.port, changed)
        return 1 if failed else 0

    def _start(self, program: str, ready: Callable[[], bool]) -> None:
        """Start ``program`` unless it runs; wait until ``ready``, failing early when supervisord gives up."""
        if self.state().get(program) != "RUNNING":
            self.ctl("start", program)
        log = self.run / "logs" / f"{program.rsplit(':', maxsplit=1)[-1]}.log"
        deadline = time.monotonic() + READY_TIMEOUT_S
        checks = 0
        while True:
            with contextlib.suppress(Exception):  # not up yet: connection refused, 503, ...
                if ready():
                    return
            checks += 1
            if checks % 10 == 0 and self.state().get(program) in ("FATAL", "STOPPED", "EXITED"):
                raise RuntimeError(f"{program} keeps exiting; see {log}: {self._tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{program} not ready after {READY_TIMEOUT_S:.0f}s; see {log}")
            time.sleep(0.2)

    @staticmethod
    def _tail(log: Path) -> str:
        try:
            lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
        except OSError:
            return "(no log)"
        return lines[-1][:300] if lines else "(empty log)"

    def _up_model(self, spec: ModelSpec, redis_port: int) -> None:
        from gateway.featurestore.commands import connect, load_demo
        from gateway.logic.versions import config_file

        assert spec.deploy is not None
        ports = spec.deploy.ports
        config_file.ensure(
            self.run / "config" / f"{spec.name}.config", spec, str(self.repo / "models" / spec.name)
        )
        if self.state().get(f"{spec.name}:logic-{spec.name}") != "RUNNING":
            for summary in load_demo(
                connect(f"redis://127.0.0.1:{redis_port}/0"), self.repo / "models", spec.name
            ):
                print(summary.line())
        if isinstance(spec, GraphModelSpec) and ports.grpc is not None:
            self._start(
                f"{spec.name}:graph-{spec.name}", procs.graph_serving(ports.grpc, spec.graph.model_name)
            )
        self._start(f"{spec.name}:logic-{spec.name}", procs.http_ok(f"http://127.0.0.1:{ports.logic}/ready"))

    def _print(self, models: list[ModelSpec], failed: dict[str, str], redis_port: int, changed: bool) -> None:
        print(f"redis        redis://127.0.0.1:{redis_port}/0")
        for spec in models:
            assert spec.deploy is not None
            p = spec.deploy.ports
            if spec.name in failed:
                print(f"{spec.name:<12} FAILED: {failed[spec.name]}", file=sys.stderr)
                continue
            graph = "in-process (sklearn), no graph service"
            if p.grpc is not None:
                graph = f"graph grpc 127.0.0.1:{p.grpc}  rest http://127.0.0.1:{p.rest}/v1/models/{spec.name}"
            print(f"{spec.name:<12} logic http://127.0.0.1:{p.logic}/get_score   {graph}")
        if not changed and not failed:
            print("(already running: nothing changed)")
        print("status: make status   stop everything: make down")

    # -- down, status, restart -------------------------------------------
    def down(self, only: list[str] | None = None) -> int:
        if only:
            for name in only:
                print(self.ctl("stop", f"{name}:*").stdout.strip())
            return 0
        if self.supervisord_pid() is not None:
            self.ctl("shutdown")
            procs.wait_for(lambda: self.supervisord_pid() is None, 60, "supervisord to stop")
            # Its programs' last children (gunicorn workers finishing) may take a moment to exit.
            with contextlib.suppress(TimeoutError):
                procs.wait_for(lambda: not self.leftovers(), 5, "the stack's processes to exit", interval=0.1)
        left = self.leftovers()
        for pid in left:  # what a crashed supervisord left running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.leftovers():
            time.sleep(0.1)
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        print(f"stopped (and {len(left)} processes left behind by a crash)" if left else "stopped")
        return 0

    def leftovers(self) -> list[int]:
        """Live processes this stack started, found without supervisord.

        Its children stay in its session (each program gets its own process group, not its own
        session), so: the session of the supervisord pid recorded in ``.run`` (alive or not),
        for processes working under this checkout; or the mark in their environment (which
        Redis overwrites with its process title, hence the session).
        """
        mark = f"{MARK}={self.repo}".encode()
        try:
            session = int((self.run / "supervisord.pid").read_text().strip())
        except (OSError, ValueError):
            session = None
        out = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            pid = int(stat.parent.name)
            fields = procs.proc_stat(pid)
            if fields is None or fields[0] == "Z" or pid == os.getpid():
                continue
            try:
                if (
                    session is not None and int(fields[3]) == session and self._works_here(pid)
                ) or mark in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    out.append(pid)
            except OSError:
                continue
        return out

    def _works_here(self, pid: int) -> bool:
        try:
            return Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(self.repo)
        except OSError:
            return False

    def status(self) -> int:
        if self.supervisord_pid() is None:
            print("nothing running")
            return 0
        print(self.ctl("status").stdout.rstrip())
        return 0

    def restart(self, models: list[str]) -> int:
        for name in models:
            print(self.ctl("restart", f"{name}:*").stdout.strip())
        return 0
