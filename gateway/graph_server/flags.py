"""Command-line flags, spelled and defaulted as ``tensorflow_model_server`` does.

Both ``--flag=value`` and ``--flag value`` work; booleans take an optional
``true``/``false``. An unknown flag or a bad value exits non-zero naming it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} out of range 0..65535")
    return value


def _non_negative(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
        return value  # type: ignore[no-any-return]

    parse.__name__ = kind.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="graph-server",
        description="TensorFlow-Serving-compatible model server (gRPC + REST).",
        allow_abbrev=False,
    )
    flag = p.add_argument
    flag("--port", type=_port, default=8500, help="gRPC port (0 picks a free port).")
    flag("--grpc_socket_path", default="", help="Also listen on this UNIX socket.")
    flag("--rest_api_port", type=_port, default=0, help="REST port; 0 disables REST.")
    flag("--rest_api_num_threads", type=_non_negative(int), default=4 * (os.cpu_count() or 1))
    flag("--rest_api_timeout_in_ms", type=_non_negative(int), default=30000)
    flag("--model_name", default="default", help="Name of the single model served.")
    flag("--model_base_path", default="", help="Base path of the single model served.")
    flag("--model_config_file", default="", help="ModelServerConfig text file.")
    flag("--model_config_file_poll_wait_seconds", type=_non_negative(int), default=0)
    flag("--file_system_poll_wait_seconds", type=_non_negative(float), default=1.0)
    flag("--enable_batching", type=_bool, nargs="?", const=True, default=False)
    flag("--batching_parameters_file", default="")
    flag("--monitoring_config_file", default="")
    flag("--enable_model_warmup", type=_bool, nargs="?", const=True, default=True)
    flag("--num_request_iterations_for_warmup", type=_non_negative(int), default=1)
    flag("--allow_version_labels_for_unavailable_models", type=_bool, nargs="?", const=True, default=False)
    flag("--enable_signature_method_name_check", type=_bool, nargs="?", const=True, default=False)
    flag("--num_load_threads", type=_non_negative(int), default=0)
    flag("--num_unload_threads", type=_non_negative(int), default=0)
    flag("--grpc_channel_arguments", default="", help="Comma-separated key=value gRPC server args.")
    flag("--grpc_max_threads", type=_non_negative(int), default=0, help="0: 4 x CPUs.")
    flag("--tensorflow_intra_op_parallelism", type=_non_negative(int), default=0)
    flag(
        "--tensorflow_inter_op_parallelism",
        type=int,
        default=0,
        help="Threads running independent ops; 0: TensorFlow picks; negative: every op in the calling thread.",
    )
    flag(
        "--echo_mode",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="Benchmark floor: validate requests but answer zeros instead of running the model.",
    )
    return p


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.model_config_file and args.model_base_path:
        build_parser().error("--model_config_file and --model_base_path are mutually exclusive")
    if not args.model_config_file and not args.model_base_path:
        build_parser().error("one of --model_base_path or --model_config_file is required")
    if args.batching_parameters_file and not args.enable_batching:
        build_parser().error("--batching_parameters_file is set without setting --enable_batching to true")
    return args
