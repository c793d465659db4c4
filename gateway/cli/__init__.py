"""``gateway``: one command line for the saver side, the feature store, versions and the local stack.

Heavy imports (TensorFlow, pandas, redis) happen inside the subcommand that
needs them, so ``gateway --help`` and ``gateway inspect`` are instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.cli.common import add_root
from gateway.cli.features import add_feature_commands
from gateway.cli.saver import add_handover_commands, add_saver_commands
from gateway.cli.versions import RemoteError, add_version_commands
from gateway.errors import ConfigError


def _stack(args: argparse.Namespace) -> int:
    from gateway import stack

    if args.action == "up":
        return stack.up(args.root, args.stack_file)
    if args.action == "down":
        return stack.down()
    return stack.status()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gateway", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_saver_commands(sub)
    add_handover_commands(sub)
    add_feature_commands(sub)
    add_version_commands(sub)
    st = sub.add_parser("stack", help="run the local stack: redis, graph and logic services per model")
    st.set_defaults(handler=_stack)
    st.add_argument("action", choices=["up", "down", "status"])
    st.add_argument("--stack-file", type=Path, default=Path("deploy/local/stack.yaml"))
    add_root(st)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except ConfigError as e:
        print(f"gateway: {e}", file=sys.stderr)
        return 2
    except RemoteError as e:
        print(f"gateway: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"gateway: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # Redis down, ...: one line, not a traceback
        if args.verbose:
            raise
        print(f"gateway: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
