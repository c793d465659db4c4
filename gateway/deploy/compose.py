"""docker-compose.yml: the whole system on one host, from the specs.

Per model a graph container (the model's graph image: TF-Serving with the versions and
configs baked in) and a logic container (the model's logic image), a Redis with
persistence and a password from a secret, and a one-shot loader of the demo features.
Each waits for what it needs to be healthy; everything restarts unless stopped.
"""

from __future__ import annotations

from typing import Any

import yaml

from gateway.deploy.kube import dns
from gateway.deploy.serving import GRPC, LOGIC, MODELS_DIR, REST, container_args, graph_name, graph_probe
from gateway.deploy.settings import DeploySettings
from gateway.spec import GraphModelSpec, ModelSpec

HEADER = (
    "# Rendered by `gateway render` from models/*/model.yaml and deploy/settings.yaml: do not edit.\n"
    "# `docker compose up` runs what `make up` runs, in containers: build the images first\n"
    "# (`make images`), then set TAG (their tag), REDIS_PASSWORD and GATEWAY_ADMIN_TOKEN.\n"
    "# Redis gets no host port (add -f deploy/compose/expose-redis.yml for one).\n"
)
REDIS_URL = "redis://redis:6379/0"


def _image(settings: DeploySettings, kind: str, model: str) -> str:
    # No default tag: compose runs the images `make images` built, named by their commit.
    return f"${{REGISTRY:-{settings.images.registry}}}/{kind}-{dns(model)}:${{TAG:?set TAG to the tag make images built}}"


def _logic(settings: DeploySettings, spec: ModelSpec) -> dict[str, Any]:
    assert spec.deploy is not None
    env = {
        "GATEWAY_MODEL": spec.name,
        "GATEWAY_REDIS_URL": REDIS_URL,
        "GATEWAY_REDIS_PASSWORD_FILE": "/run/secrets/redis_password",
        "GATEWAY_ADMIN_TOKEN_FILE": "/run/secrets/admin_token",
    }
    depends: dict[str, Any] = {
        "redis": {"condition": "service_healthy"},
        "features": {"condition": "service_completed_successfully"},
    }
    service: dict[str, Any] = {"image": _image(settings, "logic", spec.name)}
    if isinstance(spec, GraphModelSpec):
        env["GATEWAY_GRAPH_TARGETS"] = f'["graph-{dns(spec.name)}:{GRPC}"]'
        env["GATEWAY_MODEL_CONFIG_FILE"] = "/config/models.config"
        env["GATEWAY_GRAPH_BASE_PATH"] = f"{MODELS_DIR}/{graph_name(spec)}"
        depends[f"graph-{dns(spec.name)}"] = {"condition": "service_healthy"}
        service["volumes"] = [f"config-{dns(spec.name)}:/config"]
    service.update(
        environment=env,
        secrets=["redis_password", "admin_token"],
        ports=[f"{spec.deploy.ports.logic}:{LOGIC}"],
        depends_on=depends,
        read_only=True,
        tmpfs=["/tmp"],
        restart="unless-stopped",
        healthcheck={
            "test": [
                "CMD",
                "python",
                "-c",
                f"import urllib.request as u; u.urlopen('http://127.0.0.1:{LOGIC}/ready', timeout=2)",
            ],
            "interval": "10s",
            "timeout": "3s",
            "retries": 3,
            "start_period": "60s",
        },
        deploy={
            "resources": {
                "limits": {
                    "cpus": spec.deploy.logic.cpu,
                    "memory": spec.deploy.logic.memory.replace("i", "").lower(),
                }
            }
        },
    )
    return service


def _graph(settings: DeploySettings, spec: GraphModelSpec) -> dict[str, Any]:
    assert spec.deploy is not None
    ports = spec.deploy.ports
    return {
        "image": _image(settings, "graph", spec.name),
        "command": container_args(spec),
        "volumes": [f"config-{dns(spec.name)}:/config"],  # labels moved through the logic service's admin API
        "ports": [f"{ports.grpc}:{GRPC}", f"{ports.rest}:{REST}"],
        "read_only": True,
        "tmpfs": ["/tmp"],
        "restart": "unless-stopped",
        "healthcheck": {
            "test": ["CMD", *graph_probe(spec)],
            "interval": "10s",
            "timeout": "3s",
            "retries": 3,
            "start_period": "60s",
        },
        "deploy": {
            "resources": {
                "limits": {
                    "cpus": spec.deploy.graph.cpu,
                    "memory": spec.deploy.graph.memory.replace("i", "").lower(),
                }
            }
        },
    }


def compose(settings: DeploySettings, models: list[ModelSpec]) -> str:
    first = models[0].name if models else "risk"
    services: dict[str, Any] = {
        "redis": {
            "image": settings.redis.image,
            "command": [
                "sh",
                "-c",
                'exec redis-server --requirepass "$$(cat /run/secrets/redis_password)" '
                "--appendonly yes --save 300 1",
            ],
            "secrets": ["redis_password"],
            "volumes": ["redis-data:/data"],
            "restart": "unless-stopped",
            "healthcheck": {
                "test": [
                    "CMD",
                    "sh",
                    "-c",
                    'redis-cli -a "$$(cat /run/secrets/redis_password)" --no-auth-warning ping',
                ],
                "interval": "5s",
                "timeout": "2s",
                "retries": 10,
            },
        },
        "features": {
            "image": _image(settings, "logic", first),
            "command": [
                "gateway",
                "features",
                "demo",
                "--root",
                "/data/models",
                "--redis-url",
                REDIS_URL,
                "--redis-password-file",
                "/run/secrets/redis_password",
            ],
            "volumes": ["./models:/data/models:ro"],
            "secrets": ["redis_password"],
            "depends_on": {"redis": {"condition": "service_healthy"}},
            "restart": "no",
        },
    }
    volumes: dict[str, Any] = {"redis-data": {}}
    for spec in models:
        if isinstance(spec, GraphModelSpec):
            services[f"graph-{dns(spec.name)}"] = _graph(settings, spec)
            volumes[f"config-{dns(spec.name)}"] = {}
        services[f"logic-{dns(spec.name)}"] = _logic(settings, spec)
    doc = {
        "name": "scoring-gateway",
        "services": services,
        "volumes": volumes,
        "secrets": {
            "redis_password": {"environment": "REDIS_PASSWORD"},
            "admin_token": {"environment": "GATEWAY_ADMIN_TOKEN"},
        },
    }
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=110)


def expose_redis(settings: DeploySettings) -> str:
    """An override file that publishes Redis on the host (for `gateway features load` from the host)."""
    doc = {"services": {"redis": {"ports": [f"127.0.0.1:{settings.redis.port}:6379"]}}}
    return (
        "# Rendered by `gateway render`: docker compose -f docker-compose.yml -f deploy/compose/expose-redis.yml up\n"
        + yaml.safe_dump(doc)
    )
