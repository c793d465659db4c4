"""``graph-server`` entry point: flags -> models loaded -> ports opened -> serve until signalled."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from gateway.graph_server import flags, protodefs
from gateway.graph_server.batching import BatchingOptions, BatchingRunner
from gateway.graph_server.config import single_model_config, sources_from_config
from gateway.graph_server.errors import ServingError
from gateway.graph_server.manager import ModelManager
from gateway.graph_server.monitoring import DEFAULT_PATH, Metrics
from gateway.graph_server.runner import DirectRunner, EchoRunner, Runner
from gateway.wire.model_config import read as read_model_config

log = logging.getLogger("gateway.graph_server")

# TF-Serving lifts gRPC's 4 MiB default; large batches must fit.
_MAX_MESSAGE = 2**31 - 1


def channel_arguments(text: str) -> list[tuple[str, Any]]:
    """Parse ``--grpc_channel_arguments`` (``key=value,key=value``); ints stay ints."""
    out: list[tuple[str, Any]] = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--grpc_channel_arguments: expected key=value, got {item!r}")
        out.append((key, int(value) if value.lstrip("-").isdigit() else value))
    return out


def initial_config(args: Any) -> Any:
    if args.model_config_file:
        return read_model_config(Path(args.model_config_file))
    return single_model_config(args.model_name, args.model_base_path)


def batching_options(args: Any) -> BatchingOptions | None:
    if not args.enable_batching:
        return None
    if not args.batching_parameters_file:
        return BatchingOptions()
    msg = protodefs.read_text_proto("BatchingParameters", Path(args.batching_parameters_file))
    return BatchingOptions.from_proto(msg)


def monitoring_path(args: Any) -> str | None:
    """The Prometheus path on the REST port, or None when monitoring is off."""
    if not args.monitoring_config_file:
        return None
    msg = protodefs.read_text_proto("MonitoringConfig", Path(args.monitoring_config_file))
    if not msg.prometheus_config.enable:
        return None
    return str(msg.prometheus_config.path or DEFAULT_PATH)


def make_runner(args: Any, batching: BatchingOptions | None, metrics: Metrics) -> Runner:
    if args.echo_mode:
        return EchoRunner()
    if batching is not None:
        runner = BatchingRunner(batching, on_batch=metrics.record_batch)
        metrics.watch_batch_queue(runner.queued_rows)
        return runner
    return DirectRunner()


def make_loader(args: Any, metrics: Metrics) -> Callable[[str, int, Path], Any]:
    from gateway.graph_server.servable import Servable, grpc_code, session_config

    config = session_config(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)

    def load(name: str, version: int, path: Path) -> Any:
        try:
            servable = Servable(name, version, path, config)
        except Exception as e:
            metrics.record_load(str(path), ok=False)
            message = getattr(e, "message", None) or str(e)
            raise ServingError(grpc_code(e), message) from e
        metrics.record_load(str(path), ok=True)
        return servable

    return load


def build_grpc_server(args: Any, services: Callable[[grpc.Server], None]) -> tuple[grpc.Server, int]:
    options = [
        ("grpc.max_receive_message_length", _MAX_MESSAGE),
        ("grpc.max_send_message_length", _MAX_MESSAGE),
        *channel_arguments(args.grpc_channel_arguments),
    ]
    workers = args.grpc_max_threads or 4 * (os.cpu_count() or 1)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options)
    services(server)
    try:
        port = server.add_insecure_port(f"0.0.0.0:{args.port}")
    except RuntimeError as e:  # grpcio raises where older versions returned 0
        raise OSError(f"cannot bind gRPC port {args.port}: {e}") from e
    if port == 0:
        raise OSError(f"cannot bind gRPC port {args.port}")
    if args.grpc_socket_path:
        server.add_insecure_port(f"unix:{args.grpc_socket_path}")
    return server, port


class ConfigPoller:
    """Re-reads ``--model_config_file`` every period and applies it when it changed."""

    def __init__(self, path: Path, period_s: float, apply: Callable[[Any], None], current: Any) -> None:
        self._path, self._period, self._apply, self._last = path, period_s, apply, current
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="config-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            try:
                config = read_model_config(self._path)
            except ValueError as e:
                log.error("Failed to read ModelServerConfig file: %s", e)
                continue
            if config == self._last:
                continue
            try:
                self._apply(config)
                self._last = config
            except (ServingError, ValueError) as e:
                log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", e)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("GRAPH_SERVER_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    args = flags.parse(argv)
    try:
        config = initial_config(args)
        sources_from_config(config)
        channel_arguments(args.grpc_channel_arguments)
        batching = batching_options(args)
        metrics_path = monitoring_path(args)
    except (ValueError, OSError) as e:
        print(f"graph-server: {e}", file=sys.stderr)
        return 2
    return _serve(args, config, batching, metrics_path)


def _serve(args: Any, config: Any, batching: BatchingOptions | None, metrics_path: str | None) -> int:
    from gateway.graph_server.dataplane import Dataplane

    metrics = Metrics()
    runner = make_runner(args, batching, metrics)
    manager = _manager(args, runner, metrics)

    def apply(new_config: Any) -> None:
        manager.set_sources(sources_from_config(new_config), args.allow_version_labels_for_unavailable_models)

    stoppers: list[Callable[[], None]] = [runner.close, manager.stop]
    try:
        try:
            apply(config)
        except ServingError as e:
            print(f"graph-server: initial models failed to load: {e.message}", file=sys.stderr)
            return 1
        dataplane = Dataplane(
            manager, runner, method_check=args.enable_signature_method_name_check, reload=apply
        )
        try:
            stoppers += _open_ports(args, dataplane, metrics, metrics_path)
        except OSError as e:
            print(f"graph-server: {e}", file=sys.stderr)
            return 1
        manager.start(args.file_system_poll_wait_seconds)
        if args.model_config_file and args.model_config_file_poll_wait_seconds > 0:
            poll_s = args.model_config_file_poll_wait_seconds
            poller = ConfigPoller(Path(args.model_config_file), poll_s, apply, config)
            poller.start()
            stoppers.append(poller.stop)
        _wait_for_signal()
        log.info("shutting down")
        return 0
    finally:
        for stop in reversed(stoppers):
            stop()


def _manager(args: Any, runner: Runner, metrics: Metrics) -> ModelManager:
    from gateway.graph_server.warmup import run_warmup

    iterations, method_check = args.num_request_iterations_for_warmup, args.enable_signature_method_name_check

    def warmup(servable: Any) -> None:
        run_warmup(servable, runner, iterations, method_check)

    return ModelManager(
        make_loader(args, metrics),
        warmup if args.enable_model_warmup else None,
        on_poll=metrics.file_system_polls.inc,
    )


def _open_ports(
    args: Any, dataplane: Any, metrics: Metrics, metrics_path: str | None
) -> list[Callable[[], None]]:
    """REST first, then gRPC, so both accept requests once the first line is logged."""
    from gateway.graph_server.grpc_api import add_services
    from gateway.graph_server.http_server import start_http_server
    from gateway.graph_server.rest_api import RestApi

    stoppers: list[Callable[[], None]] = []
    rest_port = 0
    if args.rest_api_port and args.rest_api_port == args.port:
        log.error("--rest_api_port cannot be the same as --port; the REST API is not exported")
    elif args.rest_api_port:
        timeout = args.rest_api_timeout_in_ms / 1000 if args.rest_api_timeout_in_ms > 0 else None
        api = RestApi(dataplane, metrics, timeout, metrics_path)
        rest, rest_port = start_http_server(args.rest_api_port, api, args.rest_api_num_threads)
        stoppers.append(rest.stop)
    server, port = build_grpc_server(args, lambda s: add_services(s, dataplane, metrics))
    server.start()
    stoppers.append(lambda: server.stop(grace=5).wait())
    log.info("Running gRPC ModelServer at 0.0.0.0:%d ...", port)
    if rest_port:
        log.info("Exporting HTTP/REST API at:localhost:%d ...", rest_port)
    return stoppers


def _wait_for_signal() -> None:
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
