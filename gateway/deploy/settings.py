"""``deploy/settings.yaml``: what every model's deployment shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from gateway.errors import ConfigError
from gateway.spec import GraphModelSpec, ModelSpec, load_spec
from gateway.spec.base import Strict
from gateway.spec.model import describe

SETTINGS = Path("deploy") / "settings.yaml"


class RedisSettings(Strict):
    port: int = 6399
    image: str


class Images(Strict):
    registry: str
    tf_serving: str = Field(pattern=r"^[^:]+:\d+\.\d+\.\d+$")
    python: str

    @property
    def tf_serving_version(self) -> str:
        return self.tf_serving.rsplit(":", 1)[1]


class Environment(Strict):
    namespace: str
    replicas: int | None = None  # None: each model's deploy.replicas


class DeploySettings(Strict):
    redis: RedisSettings
    images: Images
    environments: dict[str, Environment]


def load_settings(repo: Path) -> DeploySettings:
    path = repo / SETTINGS
    try:
        raw: Any = yaml.safe_load(path.read_text())
        return DeploySettings.model_validate(raw)
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from e
    except ValidationError as e:
        raise ConfigError(f"{path}: {describe(e)}") from e


def load_models(repo: Path) -> list[ModelSpec]:
    """Every model with a ``deploy`` block, in name order; their ports must not collide."""
    specs = [load_spec(p) for p in sorted((repo / "models").glob("*/model.yaml"))]
    deployed = [s for s in specs if s.deploy is not None]
    seen: dict[int, str] = {}
    for s in deployed:
        assert s.deploy is not None
        for port in (s.deploy.ports.logic, s.deploy.ports.grpc, s.deploy.ports.rest):
            if port is not None:
                if port in seen:
                    raise ConfigError(
                        f"models/{s.name}/model.yaml: deploy.ports: {port} is {seen[port]}'s too"
                    )
                seen[port] = s.name
    return deployed


def graph_models(models: list[ModelSpec]) -> list[GraphModelSpec]:
    return [m for m in models if isinstance(m, GraphModelSpec)]
