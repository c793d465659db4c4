"""``--model_config_file``: the ``tensorflow.serving.ModelServerConfig`` text format."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format

from gateway.graph_server.manager import ModelSource, VersionPolicy
from gateway.protos import model_server_config_pb2


class ConfigFileError(ValueError):
    pass


def parse_model_config(text: str) -> list[ModelSource]:
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ConfigFileError(f"Error parsing text-format tensorflow.serving.ModelServerConfig: {e}") from e
    if config.WhichOneof("config") == "custom_model_config":
        raise ConfigFileError("custom_model_config is not supported; use model_config_list")
    sources = []
    seen: set[str] = set()
    for m in config.model_config_list.config:
        if not m.name or not m.base_path:
            raise ConfigFileError(f"model config needs name and base_path: {m}")
        if m.name in seen:
            raise ConfigFileError(f"Illegal to list model {m.name} multiple times in config list")
        seen.add(m.name)
        if m.model_platform and m.model_platform != "tensorflow":
            raise ConfigFileError(f"model {m.name}: unsupported model_platform {m.model_platform!r}")
        sources.append(
            ModelSource(
                name=m.name,
                base_path=Path(m.base_path),
                policy=_policy(m.model_version_policy),
                labels={k: int(v) for k, v in m.version_labels.items()},
            )
        )
    return sources


def _policy(p: object) -> VersionPolicy:
    which = p.WhichOneof("policy_choice")  # type: ignore[attr-defined]
    if which == "all":
        return VersionPolicy(kind="all")
    if which == "specific":
        versions = tuple(int(v) for v in p.specific.versions)  # type: ignore[attr-defined]
        return VersionPolicy(kind="specific", versions=versions)
    if which == "latest":
        return VersionPolicy(kind="latest", num_versions=p.latest.num_versions or 1)  # type: ignore[attr-defined]
    return VersionPolicy()


def read_model_config(path: Path) -> list[ModelSource]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigFileError(f"{path}: {e.strerror}") from e
    return parse_model_config(text)
