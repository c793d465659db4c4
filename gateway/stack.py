"""The local stack (``make up`` / ``make down``): the compose topology as local processes.

Starts a Redis server (own port and data dir under ``.run/``), then per model a
``graph-server`` and a gunicorn logic service, loads the demo features, waits
until every service answers its readiness check, and returns. Every process is
started in its own session and recorded by pid, so ``down`` stops exactly what
``up`` started (the whole process group: gunicorn master and workers alike).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway import procs
from gateway.errors import ConfigError

RUN = Path(".run")
READY_TIMEOUT_S = 180.0

# The graph services serve small models on a few shared cores. One intra-op thread and
# every op run in the request's own thread (TF-Serving's flags, with TensorFlow's meaning)
# and TensorFlow's stock kernels instead of oneDNN's, whose set-up costs more than it saves
# at these sizes; and 2 gRPC threads per core instead of 4: graph-server's request threads
# share one interpreter lock, so more of them only add hand-offs. Together about 0.6x the
# graph-server CPU per 100-row ctr Predict under 8 concurrent clients
# (bench/graph_cpu_bench.py).
GRAPH_FLAGS = (
    "--tensorflow_intra_op_parallelism=1",
    "--tensorflow_inter_op_parallelism=-1",
    f"--grpc_max_threads={2 * (os.cpu_count() or 1)}",
)
GRAPH_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0"}


def graph_version_flags(config: Path) -> list[str]:
    """The graph reads the model config file both tiers share, and re-reads it every second.

    Labels in the file may name versions not loaded yet when the graph starts (TF-Serving
    checks labels before loading anything on its first config).
    """
    return [
        f"--model_config_file={config.resolve()}",
        "--model_config_file_poll_wait_seconds=1",
        "--file_system_poll_wait_seconds=1",
        "--allow_version_labels_for_unavailable_models=true",
    ]


@dataclass
class ModelPorts:
    logic: int
    grpc: int | None = None  # None: an in-process (sklearn) model without a graph service
    rest: int | None = None


@dataclass
class StackConfig:
    redis_port: int
    models: dict[str, ModelPorts] = field(default_factory=dict)


def read_stack(path: Path) -> StackConfig:
    raw: Any = yaml.safe_load(path.read_text())
    try:
        models = {
            name: ModelPorts(
                int(p["logic_port"]),
                int(p["grpc_port"]) if "grpc_port" in p else None,
                int(p["rest_port"]) if "rest_port" in p else None,
            )
            for name, p in raw["models"].items()
        }
        return StackConfig(redis_port=int(raw["redis"]["port"]), models=models)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{path}: {type(e).__name__}: {e}") from e


def _pid_file(name: str) -> Path:
    return RUN / "pids" / f"{name}.pid"


def _read_pid(name: str) -> int | None:
    try:
        return int(_pid_file(name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def running() -> dict[str, int]:
    """Services of the stack whose process group is alive, by name."""
    out = {}
    for f in sorted((RUN / "pids").glob("*.pid")) if (RUN / "pids").is_dir() else []:
        pid = _read_pid(f.stem)
        if pid is not None and procs.group_alive(pid):
            out[f.stem] = pid
    return out


def spawn(name: str, cmd: list[str], env: dict[str, str] | None = None) -> procs.Proc:
    proc = procs.Proc(cmd, RUN / "logs" / f"{name}.log", env=env)
    (RUN / "pids").mkdir(parents=True, exist_ok=True)
    _pid_file(name).write_text(f"{proc.pid}\n")
    return proc


def wait_ready(name: str, proc: procs.Proc, check: Callable[[], bool]) -> None:
    try:
        procs.wait_for(check, READY_TIMEOUT_S, name, proc, interval=0.2)
    except (RuntimeError, TimeoutError) as e:
        first = str(e).split("\n", 1)[0]
        raise RuntimeError(f"{first}; see {proc.log}") from e


def up(models_root: Path, stack_file: Path) -> int:
    cfg = read_stack(stack_file)
    if running():
        print(f"stack already running: {running()}  (make down first)")
        return 0
    started: list[str] = []
    try:
        _start_redis(cfg, started)
        for model, ports in cfg.models.items():
            _load_demo_features(models_root, model, cfg.redis_port)
            _start_model(models_root, model, ports, cfg.redis_port, started)
    except Exception as e:
        print(f"stack failed: {e}", file=sys.stderr)
        down()
        return 1
    _print_endpoints(cfg)
    return 0


def _start_redis(cfg: StackConfig, started: list[str]) -> None:
    data = RUN / "redis"
    data.mkdir(parents=True, exist_ok=True)
    proc = spawn("redis", procs.redis_command(cfg.redis_port, data, persist=True))
    started.append("redis")
    wait_ready("redis", proc, procs.redis_ready(cfg.redis_port))


def model_config_path(model: str) -> Path:
    """The model config file both tiers of ``model`` read (labels live there; see ``gateway label``)."""
    return RUN / "config" / f"{model}.config"


def admin_token() -> str:
    """The local stack's admin token (``.run/admin-token``, made once, readable by its owner only)."""
    path = RUN / "admin-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def _start_model(
    models_root: Path, model: str, ports: ModelPorts, redis_port: int, started: list[str]
) -> None:
    from gateway.logic.versions import config_file
    from gateway.spec import load_spec

    spec = load_spec(models_root / model / "model.yaml")
    config = model_config_path(model)
    config_file.ensure(config, spec, str((models_root / model).resolve()))
    env = {
        "GATEWAY_MODEL": model,
        "GATEWAY_MODELS_ROOT": str(models_root.resolve()),
        "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "GATEWAY_BIND": f"127.0.0.1:{ports.logic}",
        "GATEWAY_MODEL_CONFIG_FILE": str(config.resolve()),
        "GATEWAY_ADMIN_TOKEN": admin_token(),
    }
    if ports.grpc is not None:
        _start_graph(config, model, ports, started)
        env["GATEWAY_GRAPH_TARGETS"] = f'["127.0.0.1:{ports.grpc}"]'
    logic = spawn(f"logic-{model}", procs.logic_command(), env=env)
    started.append(f"logic-{model}")
    wait_ready(f"logic-{model}", logic, procs.http_ok(f"http://127.0.0.1:{ports.logic}/ready"))


def _start_graph(config: Path, model: str, ports: ModelPorts, started: list[str]) -> None:
    assert ports.grpc is not None
    flags = [*graph_version_flags(config), *GRAPH_FLAGS]
    if ports.rest is not None:
        flags.append(f"--rest_api_port={ports.rest}")
    graph = spawn(
        f"graph-{model}",
        procs.graph_command(ports.grpc, *flags),
        env={"TF_CPP_MIN_LOG_LEVEL": "2", **GRAPH_ENV},
    )
    started.append(f"graph-{model}")
    wait_ready(f"graph-{model}", graph, procs.graph_serving(ports.grpc, model))


def _load_demo_features(models_root: Path, model: str, redis_port: int) -> None:
    """``gateway features load`` of every demo table the model's training wrote (models/<m>/demo/)."""
    from gateway.featurestore.commands import connect, load_file
    from gateway.spec import load_spec

    spec = load_spec(models_root / model / "model.yaml")
    tables = sorted((models_root / model / "demo").glob("*.parquet"))
    if not tables and spec.feature_views:
        raise RuntimeError(f"{models_root / model / 'demo'}: no demo tables; rebuild with `make models`")
    client = connect(f"redis://127.0.0.1:{redis_port}/0")
    for path in tables:
        print(load_file(client, spec, path).line())


def _print_endpoints(cfg: StackConfig) -> None:
    print(f"redis        redis://127.0.0.1:{cfg.redis_port}/0")
    for model, p in cfg.models.items():
        graph = "in-process (sklearn), no graph service"
        if p.grpc is not None:
            graph = f"graph grpc 127.0.0.1:{p.grpc}"
            if p.rest is not None:
                graph += f"  rest http://127.0.0.1:{p.rest}/v1/models/{model}"
        print(f"{model:<12} logic http://127.0.0.1:{p.logic}/get_score   {graph}")
    print("stop everything with: make down")


def down() -> int:
    services = running()
    for pid in services.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    for name, pid in services.items():
        if procs.stop_group(pid, grace=20):
            print(f"{name} (pid {pid}) ignored SIGTERM; killed", file=sys.stderr)
    for f in (RUN / "pids").glob("*.pid") if (RUN / "pids").is_dir() else []:
        f.unlink()
    print(f"stopped {len(services)} services" if services else "nothing running")
    return 0


def status() -> int:
    procs = running()
    for name, pid in procs.items():
        print(f"{name:<14} pid {pid}")
    if not procs:
        print("nothing running")
    return 0
