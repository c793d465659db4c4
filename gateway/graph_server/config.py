"""``--model_config_file`` and ``HandleReloadConfigRequest``: ``tensorflow.serving.ModelServerConfig``.

Parsed with the protobuf definitions shipped by ``tensorflow-serving-api``. The
file, its polling and the reload RPC all end in :func:`sources_from_config`, so
every path applies a config the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.graph_server.manager import ModelSource, VersionPolicy
from gateway.wire.model_config import TENSORFLOW_PLATFORM, ModelConfigError
from gateway.wire.protos import model_server_config_pb2


def single_model_config(name: str, base_path: str) -> Any:
    """The config ``--model_name``/``--model_base_path`` stand for."""
    config = model_server_config_pb2.ModelServerConfig()
    m = config.model_config_list.config.add()
    m.name, m.base_path, m.model_platform = name, base_path, TENSORFLOW_PLATFORM
    return config


def sources_from_config(config: Any) -> list[ModelSource]:
    """Validate a ModelServerConfig and turn its model list into model sources."""
    which = config.WhichOneof("config")
    if which == "custom_model_config":
        raise ModelConfigError("custom_model_config is not supported; use model_config_list")
    sources = []
    seen: set[str] = set()
    for m in config.model_config_list.config:
        if m.name in seen:
            raise ModelConfigError(f"Illegal to list model {m.name} multiple times in config list")
        seen.add(m.name)
        if not m.name or not m.base_path:
            raise ModelConfigError(f"model config needs a name and a base_path: {{{m}}}")
        _check_platform(m)
        sources.append(
            ModelSource(
                name=m.name,
                base_path=Path(m.base_path),
                policy=_policy(m.model_version_policy),
                labels={k: int(v) for k, v in sorted(m.version_labels.items())},
            )
        )
    return sources


def _check_platform(m: Any) -> None:
    if m.model_type:  # the deprecated enum; 1 is TENSORFLOW
        if m.model_platform:
            raise ModelConfigError(
                "Illegal setting both ModelServerConfig::model_type (deprecated) "
                f"and ModelServerConfig::model_platform, model name is {m.name}"
            )
        if m.model_type != 1:
            raise ModelConfigError(f"ModelServerConfig::model_type choice {m.model_type} not supported.")
        return
    if not m.model_platform:
        raise ModelConfigError(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) "
            f"nor ModelServerConfig::model_platform, model name is {m.name}"
        )
    if m.model_platform != TENSORFLOW_PLATFORM:
        raise ModelConfigError(f"Model {m.name} requested unsupported platform {m.model_platform}")


def _policy(p: Any) -> VersionPolicy:
    which = p.WhichOneof("policy_choice")
    if which == "all":
        return VersionPolicy(kind="all")
    if which == "specific":
        return VersionPolicy(kind="specific", versions=tuple(int(v) for v in p.specific.versions))
    if which == "latest":
        return VersionPolicy(kind="latest", num_versions=p.latest.num_versions or 1)
    return VersionPolicy()
