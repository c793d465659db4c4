"""Changing labels: a read-modify-write of the model config file, one writer at a time.

Both tiers poll the file, so a label moved here is seen by the graph (TF-Serving's
``--model_config_file_poll_wait_seconds``) and by every logic worker within one poll.
TF-Serving refuses a config whose label points at a version it has not loaded, so a
label may only name a version this service already serves (the graph serves it too:
a version is only available here once the graph reports it AVAILABLE).
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.errors import ConfigError
from gateway.spec.versions import LABEL_PATTERN
from gateway.wire import model_config

_LABEL = re.compile(LABEL_PATTERN)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(f".{path.name}.lock")
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def set_label(path: Path, model: str, label: str, version: int | None) -> dict[str, int]:
    """Point ``label`` of ``model`` at ``version`` (None removes it); returns the model's labels."""
    if not _LABEL.match(label):
        raise ValueError(f"label {label!r} must match [a-z0-9_]{{1,64}}")
    with _locked(path):
        entries = model_config.entries(model_config.read(path))
        entry = entries.get(model)
        if entry is None:
            raise ConfigError(f"{path}: no model {model!r} in the model config file")
        if version is None:
            entry.labels.pop(label, None)
        else:
            entry.labels[label] = version
        model_config.write(path, list(entries.values()))
        return dict(entry.labels)
