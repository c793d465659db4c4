"""gunicorn settings for the logic service; every value can be overridden by env.

Used as ``gunicorn -c python:gateway.logic.web.gunicorn_conf 'gateway.logic.web.app:create_app()'``.
The app is *not* preloaded: each worker builds its own Redis pool and gRPC
channel after the fork (gRPC channels do not survive a fork).
"""

from __future__ import annotations

import os
from typing import Any

bind = os.environ.get("GATEWAY_BIND", "0.0.0.0:8000")


def available_cpus() -> int:
    """Cores this process may use: a container's cpu limit (cgroup v2 cpu.max), else the machine's."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()
        if quota != "max":
            return max(1, int(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return len(os.sched_getaffinity(0)) or 1


# One worker per core (the container's cpu limit in a cluster): the Python in each is single-threaded
# for CPU work, and the threads of a worker mostly wait on Redis and the graph.
workers = int(os.environ.get("GATEWAY_WORKERS", str(available_cpus())))
# gthread with a bound on the requests a worker holds (shedding beyond the spec's overload budget).
worker_class = os.environ.get("GATEWAY_WORKER_CLASS", "gateway.logic.web.worker.SheddingWorker")
# More threads than a model's overload.max_in_flight (6 by default): the spare ones answer
# shed requests at once while the others wait on the graph.
threads = int(os.environ.get("GATEWAY_THREADS", "8"))
timeout = int(os.environ.get("GATEWAY_WORKER_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GATEWAY_GRACEFUL_TIMEOUT", "20"))
# On SIGTERM a worker first answers /ready with 503 and keeps serving this long, so a load
# balancer (a Kubernetes Service) stops sending it requests, then stops accepting and
# finishes what it has within graceful_timeout. 0 locally: nothing routes by readiness.
drain_seconds = float(os.environ.get("GATEWAY_DRAIN_SECONDS", "0"))
# A new worker (at start, or replacing one) takes connections only once a version is available
# to it, heartbeating meanwhile; after this long it takes them anyway and answers 503 saying why.
start_wait_seconds = float(os.environ.get("GATEWAY_START_WAIT_SECONDS", "30"))
keepalive = int(os.environ.get("GATEWAY_KEEPALIVE", "5"))
# Connections a worker keeps (in use or kept alive) and the listen queue: bounded, like the
# requests a worker holds (the spec's overload.max_in_flight; see gateway.logic.web.worker).
worker_connections = int(os.environ.get("GATEWAY_WORKER_CONNECTIONS", "256"))
backlog = int(os.environ.get("GATEWAY_BACKLOG", "256"))
max_requests = int(os.environ.get("GATEWAY_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GATEWAY_MAX_REQUESTS_JITTER", "0"))
preload_app = False
# gunicorn's runtime control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl):
# several logic services on one host would share it, and a read-only container cannot create it.
# Off unless GATEWAY_CONTROL_SOCKET names a path for it.
control_socket_disable = not os.environ.get("GATEWAY_CONTROL_SOCKET")
if not control_socket_disable:
    control_socket = os.environ["GATEWAY_CONTROL_SOCKET"]

# gRPC's newer "event engine" client path costs ~60% more CPU per unary call
# than the classic one on this workload (measured: ~250 vs ~155 us per Predict
# on loopback). Workers inherit this before their first gRPC import; set
# GRPC_EXPERIMENTS yourself to choose otherwise.
os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_client")
accesslog = None  # the app writes its own JSON access log with request ids
errorlog = "-"
loglevel = os.environ.get("GATEWAY_GUNICORN_LOG_LEVEL", "info")


_made_dirs: list[str] = []  # the metrics directory on_starting created, if it did (removed on exit)


def on_starting(server: Any) -> None:
    """Metrics in multiprocess mode: one fresh directory per gunicorn master.

    Runs in the master before any worker forks, so every worker inherits the
    variable before it first imports prometheus_client. A directory named by
    ``PROMETHEUS_MULTIPROC_DIR`` is emptied of old files; without it the master makes
    one under the temporary directory and removes it when it exits (``on_exit``).
    """
    import glob
    import tempfile

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="gateway-metrics-")
        _made_dirs.append(path)
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    server.log.info("metrics directory %s", path)
    _refresh_model_config(server)


def on_exit(server: Any) -> None:
    """The master is stopping, its workers gone: the metrics directory it made goes too."""
    import shutil

    for path in _made_dirs:
        shutil.rmtree(path, ignore_errors=True)


def _refresh_model_config(server: Any) -> None:
    """Where the model config file is shared and writable (compose), make it the spec's, labels kept."""
    from gateway.errors import ConfigError
    from gateway.logic.versions.config_file import ensure
    from gateway.settings import Settings
    from gateway.spec import load_spec

    try:
        settings = Settings()
        if settings.model_config_file is None or settings.graph_base_path is None:
            return
        spec = load_spec(settings.models_root / settings.model / "model.yaml")
        ensure(settings.model_config_file, spec, settings.graph_base_path)
    except (ConfigError, OSError, ValueError) as e:  # the workers report a bad spec or settings themselves
        server.log.warning("model config file not refreshed from the spec: %s", e)


def child_exit(server: object, worker: object) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined,no-untyped-call]


def _flush_buffers() -> None:
    """Apply the metric updates the worker has summed and not applied yet."""
    from gateway.logic.web import metric_buffer

    metric_buffer.flush()


def post_worker_init(worker: Any) -> None:
    """SIGTERM: readiness false at once, the worker's own graceful stop after ``drain_seconds``."""
    import signal
    import threading

    from gateway.logic.web.readiness import DRAINING

    stop = worker.handle_exit

    def handle_exit(sig: int, frame: Any) -> None:
        DRAINING.set()
        if drain_seconds > 0:
            threading.Timer(drain_seconds, stop, (sig, frame)).start()
        else:
            stop(sig, frame)

    worker.handle_exit = handle_exit
    signal.signal(signal.SIGTERM, handle_exit)
    _wait_for_a_version(worker)


def _wait_for_a_version(worker: Any) -> None:
    from gateway.logic.web.state import EXTENSION, app_state

    # The shedding worker serves the app through a wrapper and keeps the app itself beside it.
    app = getattr(worker, "app_wsgi", None) or getattr(worker, "wsgi", None)
    if start_wait_seconds <= 0 or EXTENSION not in getattr(app, "extensions", {}):
        return  # not the logic app (the benchmarks' baselines run under this config too)
    manager = app_state(app).scorer.versions
    if not manager.wait_available(start_wait_seconds, tick=worker.notify):
        worker.log.warning(
            "no model version available after %.0fs; taking requests anyway", start_wait_seconds
        )


def worker_exit(server: object, worker: object) -> None:
    """Buffered metric updates are applied before a worker goes (also on max_requests restarts)."""
    _flush_buffers()


def worker_int(worker: object) -> None:
    _flush_buffers()


def worker_abort(worker: object) -> None:
    # A worker past its timeout gets SIGABRT before SIGKILL: last chance to apply its metrics.
    _flush_buffers()
