"""``graph-server`` entry point: flags -> models loaded -> ports opened -> serve until signalled."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from gateway.graph_server import flags
from gateway.graph_server.errors import ServingError
from gateway.graph_server.grpc_api import add_services
from gateway.graph_server.manager import ModelManager, ModelSource
from gateway.graph_server.runner import DirectRunner, EchoRunner, Runner

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


def model_sources(args: Any) -> list[ModelSource]:
    if args.model_config_file:
        from gateway.graph_server.config import read_model_config

        return read_model_config(Path(args.model_config_file))
    return [ModelSource(name=args.model_name, base_path=Path(args.model_base_path))]


def make_runner(args: Any) -> Runner:
    if args.echo_mode:
        return EchoRunner()
    return DirectRunner()


def build_grpc_server(args: Any, manager: ModelManager, runner: Runner) -> tuple[grpc.Server, int]:
    options = [
        ("grpc.max_receive_message_length", _MAX_MESSAGE),
        ("grpc.max_send_message_length", _MAX_MESSAGE),
        *channel_arguments(args.grpc_channel_arguments),
    ]
    workers = args.grpc_max_threads or 4 * (os.cpu_count() or 1)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options)
    add_services(server, manager, runner)
    port = server.add_insecure_port(f"0.0.0.0:{args.port}")
    if port == 0:
        raise OSError(f"cannot bind gRPC port {args.port}")
    if args.grpc_socket_path:
        server.add_insecure_port(f"unix:{args.grpc_socket_path}")
    return server, port


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("GRAPH_SERVER_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    args = flags.parse(argv)
    try:
        sources = model_sources(args)
        channel_arguments(args.grpc_channel_arguments)
    except (ValueError, OSError) as e:
        print(f"graph-server: {e}", file=sys.stderr)
        return 2

    from gateway.graph_server.servable import Servable, session_config

    config = session_config(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    manager = ModelManager(loader=lambda n, v, p: Servable(n, v, p, config))
    manager.set_sources(sources)
    try:
        manager.wait_until_settled()
    except ServingError as e:
        print(f"graph-server: initial models failed to load: {e.message}", file=sys.stderr)
        manager.stop()
        return 1

    server, port = build_grpc_server(args, manager, make_runner(args))
    server.start()
    manager.start(args.file_system_poll_wait_seconds)
    log.info("Running gRPC ModelServer at 0.0.0.0:%d ...", port)

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    log.info("shutting down")
    server.stop(grace=5).wait()
    manager.stop()
    return 0
