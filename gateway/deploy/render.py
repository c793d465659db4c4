"""``gateway render``: every deployment file, from ``models/*/model.yaml`` and ``deploy/settings.yaml``.

Adding a model is its spec plus ``gateway render``. The output is committed; ``--check``
(and a test) fails when a committed file is not what the specs render, or when the
graph image's TF-Serving is not the TensorFlow the versions are exported with.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from gateway.deploy import compose, kube, serving, supervisor
from gateway.deploy.settings import DeploySettings, graph_models, load_models, load_settings
from gateway.errors import ConfigError

GENERATED = (
    "deploy/serving",
    "deploy/k8s",
    "deploy/local/supervisord.conf",
    "deploy/compose",
    "docker-compose.yml",
)


def render(repo: Path) -> dict[Path, str]:
    """Every rendered file: path (relative to ``repo``) -> content."""
    settings = load_settings(repo)
    models = load_models(repo)
    out: dict[Path, str] = {
        Path("deploy/local/supervisord.conf"): supervisor.supervisord_conf(settings, models),
        Path("docker-compose.yml"): compose.compose(settings, models),
        Path("deploy/compose/expose-redis.yml"): compose.expose_redis(settings),
    }
    for spec in graph_models(models):
        where = Path("deploy/serving") / serving.graph_name(spec)
        out[where / "models.config"] = serving.models_config(spec)
        out[where / "monitoring.config"] = serving.monitoring_config()
        batching = serving.batching_config(spec)
        if batching is not None:
            out[where / "batching.config"] = batching
    for name, text in kube.base(repo, models).items():
        out[Path("deploy/k8s/base") / name] = text
    for env in settings.environments:
        out[Path("deploy/k8s/overlays") / env / "kustomization.yaml"] = kube.overlay(settings, env, models)
    return out


def stale(repo: Path, rendered: dict[Path, str]) -> list[str]:
    """Rendered files whose committed copy differs or is missing, and generated files no model makes."""
    problems = [
        str(p) for p, text in rendered.items() if not (repo / p).is_file() or (repo / p).read_text() != text
    ]
    for root in ("deploy/serving", "deploy/k8s"):
        for p in sorted((repo / root).rglob("*")) if (repo / root).is_dir() else []:
            if p.is_file() and p.relative_to(repo) not in rendered:
                problems.append(f"{p.relative_to(repo)} (no model renders it)")
    return problems


def write(repo: Path, rendered: dict[Path, str]) -> list[str]:
    changed = []
    for p, text in rendered.items():
        target = repo / p
        if not target.is_file() or target.read_text() != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            changed.append(str(p))
    for line in stale(repo, rendered):
        if line.endswith("(no model renders it)"):
            (repo / line.split(" ", 1)[0]).unlink()
            changed.append(line)
    return changed


def tensorflow_mismatches(repo: Path, settings: DeploySettings) -> list[str]:
    """Where the TensorFlow that exports (or exported) graph versions differs from the graph image's."""
    want = settings.images.tf_serving_version
    problems = []
    pinned = re.search(r"^tensorflow==(\S+)$", (repo / "constraints.txt").read_text(), re.M)
    if pinned and pinned[1] != want:
        problems.append(
            f"constraints.txt exports with tensorflow {pinned[1]}; the graph image is {settings.images.tf_serving}"
        )
    for spec in graph_models(load_models(repo)):
        for manifest in sorted((repo / "models" / spec.name).glob("[0-9]*/manifest.json")):
            recorded = json.loads(manifest.read_text()).get("environment", {}).get("tensorflow")
            if recorded not in (None, want):
                problems.append(
                    f"{manifest.relative_to(repo)}: exported with tensorflow {recorded}; the graph image is {settings.images.tf_serving}"
                )
    return problems


def check(repo: Path) -> list[str]:
    """Everything wrong with the committed deployment files (empty: they are current)."""
    try:
        problems = [f"{p}: stale, run `gateway render`" for p in stale(repo, render(repo))]
    except ConfigError as e:
        return [str(e)]
    return problems + tensorflow_mismatches(repo, load_settings(repo))
