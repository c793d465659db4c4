"""Verify and load one published version into what a worker needs to serve it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import artifacts
from gateway.errors import ArtifactError
from gateway.estimator.program import FORMAT, CompiledEstimator
from gateway.logic.resilience.light import LightModel, load_light_model
from gateway.spec import ModelSpec, SklearnModelSpec
from gateway.transformer.stage import Transform, load_transform

log = logging.getLogger("gateway.logic")


@dataclass
class ModelVersion:
    """One published version as a worker holds it: its transformer (and, in-process, its estimator)."""

    version: int
    path: Path
    manifest: dict[str, Any]
    transform: Transform
    estimator: Any = None  # backend sklearn: its compiled program, or the verified estimator pickle
    light: LightModel | None = None  # the fallback's light model, when the version has one


def load_version(spec: ModelSpec, vdir: Path, version: int, allow_drift: list[str]) -> ModelVersion:
    """Check the manifest and hashes and load the transformer (compiled form when it serves alone).

    Raises ``ArtifactError`` naming the file for anything that does not check out; only the
    files the logic tier uses are read (the SavedModel is the graph's).
    """
    manifest = artifacts.read_manifest(vdir)
    name = manifest.get("model")
    if name is not None and name != spec.name:
        raise ArtifactError(f"{vdir}: manifest is for model {name!r}, not {spec.name!r}")
    transform = load_transform(vdir, manifest, spec.transformer, allow_drift)
    estimator = None
    if isinstance(spec, SklearnModelSpec):
        estimator = load_estimator(vdir, manifest, spec, allow_drift)
        if not hasattr(estimator, spec.estimator.method):
            raise ArtifactError(
                f"{vdir / spec.estimator.file}: {type(estimator).__name__} has no method {spec.estimator.method!r}"
            )
    light = load_light_model(vdir, manifest)
    return ModelVersion(
        version=version, path=vdir, manifest=manifest, transform=transform, estimator=estimator, light=light
    )


def load_estimator(
    vdir: Path, manifest: dict[str, Any], spec: SklearnModelSpec, allow_drift: list[str]
) -> Any:
    """The version's estimator: its compiled program when packaging verified one (no scikit-learn
    import, no unpickling), else its verified pickle."""
    compiled = (manifest.get("estimator") or {}).get("compiled") or {}
    if compiled.get("file") and compiled.get("format") == FORMAT:
        # The pickle is not loaded, but a version whose files were changed is refused all the same.
        artifacts.verify_files(vdir, manifest, only=[compiled["file"], spec.estimator.file])
        program = CompiledEstimator.load(vdir / compiled["file"])
        if program.has(spec.estimator.method):
            log.info("%s: compiled estimator loaded (numpy only)", vdir / compiled["file"])
            return program
    why = compiled.get("reason") or "the version has no compiled estimator"
    log.info("%s: estimator served from %s: %s", vdir, spec.estimator.file, why)
    return artifacts.load_verified_pickle(vdir, spec.estimator.file, manifest, allow_drift)
