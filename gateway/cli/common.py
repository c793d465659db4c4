"""What the command groups share: option helpers, argument types, defaults."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

DEFAULT_REDIS_PORT = 6399  # the local stack's Redis when deploy/settings.yaml does not say


def default_redis_url() -> str:
    """The local stack's Redis: the port in ./deploy/settings.yaml when run in a checkout."""
    port = DEFAULT_REDIS_PORT
    try:
        import yaml

        port = int(yaml.safe_load(Path("deploy/settings.yaml").read_text())["redis"]["port"])
    except (OSError, KeyError, TypeError, ValueError):
        pass
    return f"redis://127.0.0.1:{port}/0"


def existing(kind: str) -> Callable[[str], Path]:
    """An argparse type: a path that exists and is a ``kind`` ("file" or "directory")."""

    def check(value: str) -> Path:
        path = Path(value)
        if not path.exists():
            raise argparse.ArgumentTypeError(f"{value}: no such {kind}")
        if kind == "file" and not path.is_file():
            raise argparse.ArgumentTypeError(f"{value}: not a file")
        if kind == "directory" and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{value}: not a directory")
        return path

    check.__name__ = kind  # argparse names the type in its messages
    return check


def add_root(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--root", type=Path, default=Path("models"), help="models directory (default: models)")


def add_redis(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--redis-url",
        default=None,
        help="feature store (default: the local stack's, redis://127.0.0.1:<deploy/settings.yaml port>/0)",
    )
    sp.add_argument("--cluster", action="store_true", help="the URL is one node of a Redis Cluster")


def redis_url(args: argparse.Namespace) -> str:
    return str(args.redis_url) if args.redis_url else default_redis_url()
