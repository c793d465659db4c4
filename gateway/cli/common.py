"""What the command groups share: option helpers, defaults."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6399/0"  # the local stack's Redis (deploy/settings.yaml)


def add_root(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--root", type=Path, default=Path("models"), help="models directory (default: models)")


def add_redis(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help=f"feature store (default: {DEFAULT_REDIS_URL})"
    )
    sp.add_argument("--cluster", action="store_true", help="the URL is one node of a Redis Cluster")
