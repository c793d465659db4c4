"""TF-Serving's model config file (``--model_config_file``): a ModelServerConfig in text format.

Both tiers read the same file: the graph service for the versions it loads and the labels
its REST and gRPC clients may name, the logic service for the labels it routes by. So a
label means the same version everywhere. The file is written whole and renamed into place,
so a reader never sees half of it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from gateway.wire.protos import model_server_config_pb2

TENSORFLOW_PLATFORM = "tensorflow"


class ModelConfigError(ValueError):
    """A config file that cannot be read or parsed (the message is what TF-Serving would say)."""


@dataclass
class ModelEntry:
    """One model of the file, as the logic tier needs it."""

    name: str
    base_path: str
    policy: str = "latest"  # latest | specific | all
    num_versions: int = 1
    versions: list[int] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)


def parse_text(text: str) -> Any:
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ModelConfigError(f"Error parsing text-format tensorflow.serving.ModelServerConfig: {e}") from e
    return config


def read(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as e:
        raise ModelConfigError(f"{path}: {e.strerror}") from e
    return parse_text(text)


def entries(config: Any) -> dict[str, ModelEntry]:
    out = {}
    for m in config.model_config_list.config:
        p = m.model_version_policy
        which = p.WhichOneof("policy_choice") or "latest"
        out[m.name] = ModelEntry(
            name=m.name,
            base_path=m.base_path,
            policy=which,
            num_versions=(p.latest.num_versions or 1) if which == "latest" else 1,
            versions=[int(v) for v in p.specific.versions] if which == "specific" else [],
            labels={k: int(v) for k, v in sorted(m.version_labels.items())},
        )
    return out


def render(models: list[ModelEntry]) -> str:
    """The file's text for ``models`` (stable field order, so an unchanged config gives the same bytes)."""
    config = model_server_config_pb2.ModelServerConfig()
    for e in models:
        m = config.model_config_list.config.add()
        m.name, m.base_path, m.model_platform = e.name, e.base_path, TENSORFLOW_PLATFORM
        if e.policy == "all":
            m.model_version_policy.all.SetInParent()
        elif e.policy == "specific":
            m.model_version_policy.specific.versions.extend(e.versions)
        else:
            m.model_version_policy.latest.num_versions = e.num_versions
        for label, version in sorted(e.labels.items()):
            m.version_labels[label] = version
    return str(text_format.MessageToString(config))


def write(path: Path, models: list[ModelEntry]) -> None:
    """Write the file atomically (a temporary file in the same directory, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(render(models))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
