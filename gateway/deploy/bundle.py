"""``gateway bundle MODEL``: the build context of a model's two images, and nothing else.

The package's source and metadata (for the logic image), the spec files the model needs
(its own and those it ``extends``), its published versions, and TF-Serving's configs for
it (``graph/config`` and ``graph/models/<graph name>/<version>``, what the graph image
copies to ``/config`` and ``/models``). The versions come from the model store: the directory published versions live in
between the data scientist and the images (``models/`` here; the pipeline syncs it from
the store first, ``make fetch-models``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gateway import artifacts
from gateway.deploy.kube import spec_texts
from gateway.deploy.serving import graph_name
from gateway.errors import ConfigError
from gateway.spec import GraphModelSpec, load_spec

SOURCE = ("pyproject.toml", "constraints.txt", "README.md", "LICENSE")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def bundle(repo: Path, model: str, out: Path, store: Path | None = None) -> list[int]:
    """Write the build context of ``model`` into ``out``; returns the versions it carries."""
    store = store or repo / "models"
    spec = load_spec(repo / "models" / model / "model.yaml")
    versions = artifacts.list_versions(store / model)
    if not versions:
        raise ConfigError(f"{store / model}: no published version to put in the images")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in SOURCE:
        shutil.copy2(repo / name, out / name)
    shutil.copytree(repo / "gateway", out / "gateway", ignore=IGNORE)
    for name, text in spec_texts(repo, spec).items():
        (out / "models" / name).mkdir(parents=True, exist_ok=True)
        (out / "models" / name / "model.yaml").write_text(text)
    for v in versions:
        vdir = artifacts.version_dir(store / model, v)
        problems = artifacts.audit(vdir, artifacts.read_manifest(vdir))
        if problems:
            raise ConfigError(f"{vdir}: not as published: {problems[0]}")
        shutil.copytree(vdir, out / "models" / model / vdir.name)
    if isinstance(spec, GraphModelSpec):  # the graph image's two directories, as TF-Serving sees them
        name = graph_name(spec)
        shutil.copytree(repo / "deploy" / "serving" / name, out / "graph" / "config")
        for v in versions:
            vdir = artifacts.version_dir(store / model, v)
            shutil.copytree(vdir, out / "graph" / "models" / name / vdir.name)
    return versions
