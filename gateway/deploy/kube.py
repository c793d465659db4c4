"""Kubernetes: a kustomize base with, per model, a graph and a logic Deployment, and overlays per environment.

Per model: the graph Deployment behind a headless Service (so the logic service's gRPC
channel resolves every pod and balances round_robin over them), its readiness a version
AVAILABLE; the logic Deployment (liveness ``/health``, readiness ``/ready``, a few seconds
of drain on SIGTERM) behind a ClusterIP Service, with an autoscaler and, for both, a
PodDisruptionBudget. Rolling updates never go below the serving replicas (surge one pod,
none unavailable). Pods run as a non-root user with a read-only root filesystem. The spec
and TF-Serving's configs are ConfigMaps; the Redis address and the admin token come from
the Secret ``scoring-gateway`` (keys ``redis-url``, ``admin-token``; made per namespace,
never committed).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from gateway.deploy.serving import (
    GRPC,
    LOGIC,
    REST,
    batching_config,
    container_args,
    graph_probe,
    models_config,
    monitoring_config,
)
from gateway.deploy.settings import DeploySettings
from gateway.spec import GraphModelSpec, ModelSpec

HEADER = "# Rendered by `gateway render` from models/*/model.yaml and deploy/settings.yaml: do not edit.\n"
SECRET = "scoring-gateway"
PART_OF = {"app.kubernetes.io/part-of": "scoring-gateway"}
USER = 10001
DRAIN_S = 5  # the logic pod's drain on SIGTERM: long enough for endpoints to drop it
GRACE_S = 35  # drain + gunicorn's graceful timeout (20 s) + margin
UNRELEASED = "unreleased"  # the overlays' tag until `gateway release` pins digests


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (specs, TF-Serving configs, patches) as literal blocks, readable in review."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text and not any(line != line.rstrip() for line in text.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def dump(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120)


def _meta(name: str, model: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {
            **PART_OF,
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/component": component,
            "model": model,
        },
    }


def _selector(name: str) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/name": name}}


def _security() -> tuple[dict[str, Any], dict[str, Any]]:
    pod = {
        "runAsNonRoot": True,
        "runAsUser": USER,
        "runAsGroup": USER,
        "fsGroup": USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    return pod, container


def _resources(cpu: str, memory: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}


def _deployment(
    name: str, model: str, component: str, replicas: int | None, pod: dict[str, Any]
) -> dict[str, Any]:
    """``replicas`` None: an autoscaler owns the count (an apply must not reset it)."""
    count = {} if replicas is None else {"replicas": replicas}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, model, component),
        "spec": {
            **count,
            "selector": _selector(name),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": _meta(name, model, component)["labels"]}, "spec": pod},
        },
    }


def _pdb(name: str, model: str, component: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(name, model, component),
        # One pod at a time may be evicted (a node drain); with one replica (sit) that is a short gap.
        "spec": {"maxUnavailable": 1, "selector": _selector(name)},
    }


def _workers(cpu: str) -> int:
    """gunicorn workers for a cpu limit ("500m", "1", "2"): one per core, at least one."""
    cores = int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    return max(1, math.floor(cores))


def dns(model: str) -> str:
    """A model name as a Kubernetes object name (DNS-1123: no underscores)."""
    return model.replace("_", "-")


def graph_resources(spec: GraphModelSpec) -> list[dict[str, Any]]:
    assert spec.deploy is not None
    name, model = f"graph-{dns(spec.name)}", dns(spec.name)
    pod_sec, sec = _security()
    container = {
        "name": "graph",
        "image": name,
        "args": container_args(spec),
        "ports": [{"name": "grpc", "containerPort": GRPC}, {"name": "rest", "containerPort": REST}],
        "readinessProbe": {"exec": {"command": graph_probe(spec)}, "periodSeconds": 5, "timeoutSeconds": 3},
        "startupProbe": {"tcpSocket": {"port": "grpc"}, "periodSeconds": 5, "failureThreshold": 60},
        "livenessProbe": {"tcpSocket": {"port": "grpc"}, "periodSeconds": 10, "failureThreshold": 3},
        "resources": _resources(spec.deploy.graph.cpu, spec.deploy.graph.memory),
        "securityContext": sec,
        "volumeMounts": [
            {"name": "serving", "mountPath": "/config", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod = {
        "securityContext": pod_sec,
        "containers": [container],
        "volumes": [
            {"name": "serving", "configMap": {"name": f"{model}-serving"}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, model, "graph"),
        "spec": {
            "clusterIP": "None",  # headless: one DNS record per pod, gRPC balances round_robin over them
            "selector": {"app.kubernetes.io/name": name},
            "ports": [
                {"name": "grpc", "port": GRPC, "targetPort": "grpc"},
                {"name": "rest", "port": REST, "targetPort": "rest"},
            ],
        },
    }
    serving = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(f"{model}-serving", model, "graph"),
        "data": {
            "models.config": models_config(spec),
            "monitoring.config": monitoring_config(),
            **({"batching.config": batching} if (batching := batching_config(spec)) is not None else {}),
        },
    }
    return [
        serving,
        _deployment(name, model, "graph", spec.deploy.replicas, pod),
        service,
        _pdb(name, model, "graph"),
    ]


def _secret_env(name: str, key: str, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": SECRET, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def logic_resources(spec: ModelSpec, specs: dict[str, str]) -> list[dict[str, Any]]:
    """The logic Deployment, Service, autoscaler and budget; ``specs``: model -> model.yaml text it needs."""
    assert spec.deploy is not None
    name, model = f"logic-{dns(spec.name)}", dns(spec.name)
    pod_sec, sec = _security()
    env: list[dict[str, Any]] = [
        {"name": "GATEWAY_MODEL", "value": spec.name},
        {"name": "GATEWAY_MODELS_ROOT", "value": "/app/models"},
        {"name": "GATEWAY_WORKERS", "value": str(_workers(spec.deploy.logic.cpu))},
        {"name": "GATEWAY_DRAIN_SECONDS", "value": str(DRAIN_S)},
        {"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp/metrics"},
        _secret_env("GATEWAY_REDIS_URL", "redis-url"),
        _secret_env("GATEWAY_REDIS_CLUSTER", "redis-cluster", optional=True),
        _secret_env("GATEWAY_ADMIN_TOKEN", "admin-token"),
    ]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    mounts += [
        {
            "name": "spec",
            "mountPath": f"/app/models/{m}/model.yaml",
            "subPath": f"{m}.model.yaml",
            "readOnly": True,
        }
        for m in specs
    ]
    volumes: list[dict[str, Any]] = [
        # In memory, as compose's tmpfs: gunicorn's worker heartbeat file (touched on every loop of
        # a worker; on a disk-backed volume that write can stall it) and the Prometheus
        # multiprocess files live here. It counts against the container's memory limit.
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "spec", "configMap": {"name": f"{model}-spec"}},
    ]
    if isinstance(spec, GraphModelSpec):
        env += [
            {"name": "GATEWAY_GRAPH_TARGETS", "value": f'["graph-{model}:{GRPC}"]'},
            {"name": "GATEWAY_MODEL_CONFIG_FILE", "value": "/config/models.config"},
        ]
        mounts.append({"name": "serving", "mountPath": "/config", "readOnly": True})
        volumes.append({"name": "serving", "configMap": {"name": f"{model}-serving"}})
    http = {"port": "http"}
    container = {
        "name": "logic",
        "image": name,
        "env": env,
        "ports": [{"name": "http", "containerPort": LOGIC}],
        "startupProbe": {"httpGet": {"path": "/health", **http}, "periodSeconds": 2, "failureThreshold": 60},
        "livenessProbe": {"httpGet": {"path": "/health", **http}, "periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/ready", **http}, "periodSeconds": 2, "failureThreshold": 1},
        "resources": _resources(spec.deploy.logic.cpu, spec.deploy.logic.memory),
        "securityContext": sec,
        "volumeMounts": mounts,
    }
    pod = {
        "securityContext": pod_sec,
        "terminationGracePeriodSeconds": GRACE_S,
        "containers": [container],
        "volumes": volumes,
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, model, "logic"),
        "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    auto = spec.deploy.autoscale
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(name, model, "logic"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": max(auto.min, spec.deploy.replicas),
            "maxReplicas": auto.max,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": auto.cpu_percent},
                    },
                }
            ],
        },
    }
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(f"{model}-spec", model, "logic"),
        "data": {f"{dns(m)}.model.yaml": text for m, text in specs.items()},
    }
    return [
        config,
        _deployment(name, model, "logic", None, pod),
        service,
        hpa,
        _pdb(name, model, "logic"),
    ]


def spec_texts(repo: Path, spec: ModelSpec) -> dict[str, str]:
    """The spec files a model's logic service reads: its own, and those it ``extends``."""
    out, name = {}, spec.name
    while name is not None:
        text = (repo / "models" / name / "model.yaml").read_text()
        out[name] = text
        name = yaml.safe_load(text).get("extends")
    return out


def base(repo: Path, models: list[ModelSpec]) -> dict[str, str]:
    """``deploy/k8s/base``: one file per model and the kustomization listing them."""
    files: dict[str, str] = {}
    for spec in models:
        docs = graph_resources(spec) if isinstance(spec, GraphModelSpec) else []
        docs += logic_resources(spec, spec_texts(repo, spec))
        files[f"{dns(spec.name)}.yaml"] = HEADER + yaml.dump_all(
            docs, Dumper=_Dumper, sort_keys=False, width=120
        )
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(files),
    }
    files["kustomization.yaml"] = HEADER + yaml.safe_dump(kustomization, sort_keys=False)
    return files


def overlay(settings: DeploySettings, env: str, models: list[ModelSpec]) -> str:
    e = settings.environments[env]
    images = []
    replicas = []
    patches = []
    for spec in models:
        kinds = ["graph", "logic"] if isinstance(spec, GraphModelSpec) else ["logic"]
        for kind in kinds:
            image = f"{kind}-{dns(spec.name)}"
            images.append(
                {"name": image, "newName": f"{settings.images.registry}/{image}", "newTag": UNRELEASED}
            )
            if e.replicas is not None and kind == "graph":  # the logic's count is its autoscaler's
                replicas.append({"name": image, "count": e.replicas})
        if e.replicas is not None:
            patch = [{"op": "replace", "path": "/spec/minReplicas", "value": e.replicas}]
            target = {"kind": "HorizontalPodAutoscaler", "name": f"logic-{dns(spec.name)}"}
            patches.append({"target": target, "patch": dump(patch)})
    doc: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": e.namespace,
        "resources": ["../../base"],
        "labels": [{"pairs": {"environment": env}, "includeSelectors": False}],
        "images": images,
    }
    if replicas:
        doc["replicas"] = replicas
    if patches:
        doc["patches"] = patches
    return (
        HEADER
        + f"# `gateway release {env} build/digests.json` pins each image to the digest the pipeline built;\n"
        + f"# until then the tag {UNRELEASED!r} names no image, so nothing unreleased is ever deployed.\n"
        + dump(doc)
    )
