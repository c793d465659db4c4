"""``gateway``: one command line for the saver side, the feature store, versions and the local stack.

Heavy imports (TensorFlow, pandas, redis) happen inside the subcommand that
needs them, so ``gateway --help`` and ``gateway inspect`` are instant.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.cli.acceptance import add_acceptance_commands
from gateway.cli.bench import add_bench_command
from gateway.cli.deploy import add_deploy_commands
from gateway.cli.features import add_feature_commands
from gateway.cli.quiet import native_stderr_captured
from gateway.cli.saver import add_handover_commands, add_saver_commands
from gateway.cli.spec import add_spec_commands
from gateway.cli.versions import RemoteError, add_version_commands
from gateway.errors import ConfigError


def _stack(args: argparse.Namespace) -> int:
    from gateway.stack import Stack

    stack = Stack(args.repo)
    models = args.models or None
    if args.action == "up":
        return stack.up(models)
    if args.action == "down":
        return stack.down(models)
    if args.action == "restart":
        return stack.restart(models or [])
    return stack.status()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gateway", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_saver_commands(sub)
    add_handover_commands(sub)
    add_spec_commands(sub)
    add_feature_commands(sub)
    add_version_commands(sub)
    st = sub.add_parser(
        "stack",
        help="the local stack on supervisord: redis, graph and logic services per model",
        description="up: start what is not running (all models, or MODEL...), load the demo features, wait "
        "until each is ready; down: stop everything (or MODEL...); restart MODEL...; status.",
    )
    st.set_defaults(handler=_stack)
    st.add_argument("action", choices=["up", "down", "status", "restart"])
    st.add_argument("models", nargs="*", metavar="MODEL")
    st.add_argument(
        "--repo", type=Path, default=Path("."), help="the checkout the stack runs from (default: .)"
    )
    add_deploy_commands(sub)
    add_bench_command(sub)
    add_acceptance_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 done; 2 an input is wrong (usage, a file, a spec, an artifact, a table: the message
    names it); 1 the operation failed otherwise (Redis down, a remote service refused); 3 an audit failed."""
    args = build_parser().parse_args(argv)
    quiet = getattr(args, "native_quiet", False) and not args.verbose
    with native_stderr_captured() if quiet else contextlib.nullcontext() as noise:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
            force=True,
        )
        status = _run(args)
    if status != 0 and noise is not None and noise.lines:
        print(
            f"gateway: ({noise.lines} lines from native libraries hidden; --verbose shows them)",
            file=sys.stderr,
        )
    return status


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args))
    except (ConfigError, ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"gateway: {e}", file=sys.stderr)
        return 2
    except RemoteError as e:
        print(f"gateway: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # Redis down, ...: one line, not a traceback
        if args.verbose:
            raise
        print(f"gateway: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
