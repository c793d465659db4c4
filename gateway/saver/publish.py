"""Atomic hand-over of a model version.

A version is assembled in a hidden staging directory next to its final place
(same file system), its manifest written last, then renamed into place in one
``rename(2)``. A poller (TF-Serving or ``graph-server``) therefore sees either
no version directory or a complete one, never a half-written one.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from gateway import artifacts

STAGING_PREFIX = ".tmp-"


def staging_dir(base: Path) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    path = base / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    path.mkdir()
    return path


def next_version(base: Path) -> int:
    return (artifacts.latest_version(base) or 0) + 1


def write_manifest(staging: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Hash every staged file and write ``manifest.json`` (the last file written)."""
    manifest = {
        "format": 1,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "environment": artifacts.environment(),
        **fields,
        "files": artifacts.hash_tree(staging),
    }
    tmp = staging / (artifacts.MANIFEST + ".part")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.rename(staging / artifacts.MANIFEST)
    return manifest


def publish(staging: Path, base: Path, version: int | None = None) -> tuple[int, Path]:
    """Rename ``staging`` to ``base/<version>``; without a version, take the next free one."""
    _fsync_tree(staging)
    want = version if version is not None else next_version(base)
    while True:
        target = base / str(want)
        try:
            os.rename(staging, target)  # fails if target exists and is non-empty
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY) and not target.exists():
                raise
            if version is not None:
                shutil.rmtree(staging, ignore_errors=True)
                raise FileExistsError(f"{target}: version {version} is already published") from e
            want += 1
            continue
        _fsync_dir(base)
        return want, target


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
