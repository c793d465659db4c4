"""What the committed deployment files promise, per model: compose, Kubernetes, Dockerfiles, Jenkinsfile.

Their syntax is the validators' business (test_validators.py); here: each model has its pair,
health checks, pinned images, its own ports, and every environment runs the graph the same way.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from gateway.deploy import serving
from gateway.deploy.kube import UNRELEASED, dns
from gateway.deploy.settings import graph_models, load_models, load_settings
from gateway.spec import GraphModelSpec, ModelSpec
from tests.support import REPO

MODELS = load_models(REPO)
SETTINGS = load_settings(REPO)
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def kube_docs() -> list[dict[str, Any]]:
    base = REPO / "deploy" / "k8s" / "base"
    names = yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]
    return [d for n in names for d in yaml.safe_load_all((base / n).read_text()) if d]


KUBE = kube_docs()


def kube(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in KUBE if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def dockerfile(name: str) -> str:
    # Continuation lines joined, so each instruction is one line.
    return (REPO / "deploy" / "docker" / f"{name}.Dockerfile").read_text().replace("\\\n", " ")


def instruction(text: str, keyword: str) -> list[str]:
    return [line[len(keyword) + 1 :].strip() for line in text.splitlines() if line.startswith(f"{keyword} ")]


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_compose_has_each_models_pair_healthy_before_use(spec: ModelSpec) -> None:
    assert spec.deploy is not None
    logic = SERVICES[f"logic-{dns(spec.name)}"]
    assert logic["healthcheck"]["test"][-1].endswith("/ready', timeout=2)")
    assert logic["restart"] == "unless-stopped" and logic["read_only"] is True
    assert logic["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert logic["depends_on"]["features"] == {"condition": "service_completed_successfully"}
    assert logic["ports"] == [f"{spec.deploy.ports.logic}:{serving.LOGIC}"]
    assert logic["deploy"]["resources"]["limits"]["cpus"] == spec.deploy.logic.cpu
    if isinstance(spec, GraphModelSpec):
        graph = SERVICES[f"graph-{dns(spec.name)}"]
        assert logic["depends_on"][f"graph-{dns(spec.name)}"] == {"condition": "service_healthy"}
        # The graph is healthy when its version is AVAILABLE, asked with what the TF-Serving image has.
        assert graph["healthcheck"]["test"] == ["CMD", *serving.graph_probe(spec)]
        assert f"/v1/models/{serving.graph_name(spec)} " in graph["healthcheck"]["test"][-1]
        assert graph["ports"] == [
            f"{spec.deploy.ports.grpc}:{serving.GRPC}",
            f"{spec.deploy.ports.rest}:{serving.REST}",
        ]
        assert graph["restart"] == "unless-stopped"
        assert graph["command"] == serving.container_args(spec)  # the same flags as in Kubernetes
        assert json.loads(logic["environment"]["GATEWAY_GRAPH_TARGETS"]) == [
            f"graph-{dns(spec.name)}:{serving.GRPC}"
        ]
        # Both tiers read one model config file; the logic service keeps it the spec's.
        assert (
            f"config-{dns(spec.name)}:/config" in graph["volumes"]
            and f"config-{dns(spec.name)}:/config" in logic["volumes"]
        )
        assert logic["environment"]["GATEWAY_GRAPH_BASE_PATH"] == f"/models/{serving.graph_name(spec)}"
    else:
        assert f"graph-{dns(spec.name)}" not in SERVICES


def test_compose_pins_images_has_unique_host_ports_and_keeps_redis_private() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        assert not image.endswith(":latest") and ":" in image.rsplit("/", 1)[-1], f"{name}: {image}"
        if "${TAG" in image:
            assert "${TAG:?" in image, f"{name}: no default tag may stand in for the built one"
    ports = [p.split(":")[0] for s in SERVICES.values() for p in s.get("ports", [])]
    assert len(ports) == len(set(ports)), ports
    redis = SERVICES["redis"]
    assert "ports" not in redis and "redis-data:/data" in redis["volumes"]
    assert "--requirepass" in redis["command"][-1] and "--appendonly yes" in redis["command"][-1]
    assert redis["healthcheck"]["test"]
    assert set(COMPOSE["secrets"]) == {"redis_password", "admin_token"}
    features = SERVICES["features"]
    assert features["command"][:3] == ["gateway", "features", "demo"] and features["restart"] == "no"


def test_compose_uses_the_ports_of_the_local_stack() -> None:
    conf = (REPO / "deploy" / "local" / "supervisord.conf").read_text()
    for spec in MODELS:
        assert spec.deploy is not None
        assert f'GATEWAY_BIND="127.0.0.1:{spec.deploy.ports.logic}"' in conf
        if spec.deploy.ports.grpc is not None:
            assert f"--port={spec.deploy.ports.grpc} --rest_api_port={spec.deploy.ports.rest}" in conf
    assert f"--port {SETTINGS.redis.port} " in conf


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_kubernetes_has_each_models_pair_probed_safe_and_scaled(spec: ModelSpec) -> None:
    name = dns(spec.name)
    logic = kube("Deployment", f"logic-{name}")
    strategy = logic["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0  # a rollout never goes below the serving replicas
    assert "replicas" not in logic["spec"]  # the autoscaler's
    pod = logic["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # Its one writable place is in memory, as compose's tmpfs: gunicorn's heartbeat, the metric files.
    tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
    assert next(v for v in pod["volumes"] if v["name"] == tmp["name"])["emptyDir"]["medium"] == "Memory"
    assert c["resources"]["limits"] == c["resources"]["requests"]
    env = {e["name"]: e for e in c["env"]}
    assert env["GATEWAY_REDIS_URL"]["valueFrom"]["secretKeyRef"]["key"] == "redis-url"
    assert env["GATEWAY_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "admin-token"
    # gunicorn: one worker per core of the cpu limit; drain and graceful stop fit the grace period.
    assert int(env["GATEWAY_WORKERS"]["value"]) >= 1
    assert pod["terminationGracePeriodSeconds"] > int(env["GATEWAY_DRAIN_SECONDS"]["value"]) + 20
    assert (
        kube("HorizontalPodAutoscaler", f"logic-{name}")["spec"]["scaleTargetRef"]["name"] == f"logic-{name}"
    )
    assert kube("PodDisruptionBudget", f"logic-{name}")["spec"]["maxUnavailable"] == 1
    assert kube("Service", f"logic-{name}")["spec"]["selector"] == {"app.kubernetes.io/name": f"logic-{name}"}
    spec_map = kube("ConfigMap", f"{name}-spec")["data"]
    assert spec_map[f"{name}.model.yaml"] == (REPO / "models" / spec.name / "model.yaml").read_text()
    if isinstance(spec, GraphModelSpec):
        graph = kube("Deployment", f"graph-{name}")
        assert graph["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        (g,) = graph["spec"]["template"]["spec"]["containers"]
        assert g["args"] == serving.container_args(spec)
        assert g["readinessProbe"]["exec"]["command"] == serving.graph_probe(spec)
        assert g["securityContext"]["readOnlyRootFilesystem"] is True
        service = kube("Service", f"graph-{name}")
        assert service["spec"]["clusterIP"] == "None"  # headless: gRPC round_robin over the pods
        assert env["GATEWAY_GRAPH_TARGETS"]["value"] == f'["graph-{name}:{serving.GRPC}"]'
        cm = kube("ConfigMap", f"{name}-serving")["data"]
        assert (
            cm["models.config"]
            == (REPO / "deploy" / "serving" / serving.graph_name(spec) / "models.config").read_text()
        )
        assert kube("PodDisruptionBudget", f"graph-{name}")
    else:
        assert not [d for d in KUBE if d["metadata"]["name"] == f"graph-{name}"]


def test_overlays_deploy_released_digests_only() -> None:
    for env, e in SETTINGS.environments.items():
        doc = yaml.safe_load((REPO / "deploy" / "k8s" / "overlays" / env / "kustomization.yaml").read_text())
        assert doc["namespace"] == e.namespace
        want = {
            f"{k}-{dns(s.name)}"
            for s in MODELS
            for k in ("graph", "logic")
            if k == "logic" or isinstance(s, GraphModelSpec)
        }
        assert {i["name"] for i in doc["images"]} == want
        assert {i.get("newTag") for i in doc["images"]} == {
            UNRELEASED
        }  # until `gateway release` pins digests


def test_graph_runs_with_the_same_flags_and_env_everywhere() -> None:
    graph = dockerfile("graph")
    (cmd,) = instruction(graph, "CMD")
    assert json.loads(cmd) == serving.graph_args()
    assert instruction(graph, "ENTRYPOINT") == ['["tensorflow_model_server"]']
    env = dict(item.split("=", 1) for line in instruction(graph, "ENV") for item in line.split())
    assert env == serving.GRAPH_ENV
    assert instruction(graph, "ARG") == [f"TF_SERVING_IMAGE={SETTINGS.images.tf_serving}"]
    assert re.search(r"^USER 10001$", graph, re.M)
    conf = (REPO / "deploy" / "local" / "supervisord.conf").read_text()
    for spec in graph_models(MODELS):
        assert (
            spec.deploy is not None
            and spec.deploy.ports.grpc is not None
            and spec.deploy.ports.rest is not None
        )
        local = serving.graph_args(
            spec.deploy.ports.grpc,
            spec.deploy.ports.rest,
            config=f".run/config/{spec.name}.config",
            monitoring=f"deploy/serving/{serving.graph_name(spec)}/monitoring.config",
            batching=f"deploy/serving/{serving.graph_name(spec)}/batching.config"
            if serving.batching_config(spec) is not None
            else None,
        )
        assert f"-m gateway.graph_server {' '.join(local)}\n" in conf
        assert all(f'{k}="{v}"' in conf for k, v in serving.GRAPH_ENV.items())


def test_logic_image_is_non_root_without_tensorflow_and_runs_the_stacks_gunicorn() -> None:
    logic = dockerfile("logic")
    assert instruction(logic, "ARG")[0] == f"PYTHON_IMAGE={SETTINGS.images.python}"
    assert re.search(r"^USER 10001$", logic, re.M)
    runs = " ".join(instruction(logic, "RUN"))
    # The package's own extras, never a copied dependency list; TF-Serving's API without TensorFlow.
    assert "pip install --no-cache-dir -c constraints.txt ." in runs
    assert "--no-deps -c constraints.txt tensorflow-serving-api" in runs
    assert "-m gateway.wire.closure" in runs
    final = logic[logic.rindex("FROM ") :]
    assert "/opt/tf" not in final.replace("COPY --from=build /opt/venv /opt/venv", "")
    (entry,) = instruction(logic, "ENTRYPOINT")
    conf = (REPO / "deploy" / "local" / "supervisord.conf").read_text()
    assert " ".join(json.loads(entry)[1:]) in conf  # the same gunicorn config and app as the local stack
    assert instruction(logic, "HEALTHCHECK")


def test_every_pipeline_step_runs_on_a_laptop_and_credentials_come_from_bindings() -> None:
    text = (REPO / "Jenkinsfile").read_text()
    steps = re.findall(r"\bsh\s+'([^']*)'", text)
    assert steps
    for step in steps:
        for command in re.split(r"\s*(?:\|\||&&)\s*", step.strip("() ")):
            assert re.match(r"^\(?(make|gateway|false)\b", command), (
                f"not a make target or gateway command: {step}"
            )
    targets = set(re.findall(r"^([a-z-]+):", (REPO / "Makefile").read_text(), re.M))
    for step in steps:
        for target in re.findall(r"\bmake ([a-z-]+(?: [a-z-]+)*)", step):
            assert set(target.split()) <= targets, f"{step}: no such Makefile target"
    assert "password" not in text.lower() or "credentials(" in text
    for stage in ("Deploy sit", "Promote stg", "Approve prd", "Promote prd"):
        assert f"stage('{stage}')" in text
    assert text.index("stage('Approve prd')") < text.index("stage('Promote prd')")
    assert "input message:" in text
    # every failed smoke (sit, stg, prd) or consistency check (sit, stg) rolls its environment back
    for env in ("sit", "stg", "prd"):
        assert f"make smoke ENV={env} || (make rollback ENV={env} && false)" in text
    for env in ("sit", "stg"):
        assert f"make verify ENV={env} || (make rollback ENV={env} && false)" in text
        assert f"credentials('admin-token-{env}')" in text


def test_nothing_cleans_away_published_versions() -> None:
    makefile = (REPO / "Makefile").read_text()
    clean = re.search(r"^clean:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert clean is not None
    assert "models" not in clean.group(1)


def test_compose_and_kubernetes_name_the_same_image_per_model() -> None:
    for spec in MODELS:
        kinds = ("graph", "logic") if isinstance(spec, GraphModelSpec) else ("logic",)
        for kind in kinds:
            name = f"{kind}-{dns(spec.name)}"
            assert f"/{name}:" in SERVICES[name]["image"]
            (c,) = kube("Deployment", name)["spec"]["template"]["spec"]["containers"]
            assert c["image"] == name
