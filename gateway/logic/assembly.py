"""Build a worker's ``Scorer`` from settings: spec, artifacts, clients. Fails fast, naming the cause."""

from __future__ import annotations

import logging

from gateway import artifacts
from gateway.errors import ArtifactError
from gateway.featurestore.reader import FeatureReader, connect
from gateway.logic.graph_client import GraphClient
from gateway.logic.orchestrator import ModelVersion, Predictor, Scorer
from gateway.logic.predictors import GraphPredictor, SklearnPredictor
from gateway.settings import Settings
from gateway.spec import GraphModelSpec, ModelSpec, load_spec
from gateway.transformer.stage import load_transform

log = logging.getLogger("gateway.logic")


def load_version(spec: ModelSpec, settings: Settings) -> ModelVersion:
    base = settings.models_root / spec.name
    version = settings.version if settings.version is not None else artifacts.latest_version(base)
    if version is None:
        raise ArtifactError(f"{base}: no published model version (run `make models`)")
    vdir = artifacts.version_dir(base, version)
    manifest = artifacts.read_manifest(vdir)
    # Library versions are checked where a pickle is actually loaded: a transformer served
    # from its compiled file (data, not code) does not depend on them.
    transform = load_transform(vdir, manifest, spec.transformer, settings.allow_drift)
    return ModelVersion(version=version, path=vdir, manifest=manifest, transform=transform)


def graph_client(spec: GraphModelSpec, settings: Settings) -> GraphClient:
    g = spec.graph
    deadline_ms = settings.graph_deadline_ms or g.deadline_ms
    return GraphClient(settings.graph_targets or g.targets, g.model_name, g.signature, deadline_ms / 1000)


def build_scorer(settings: Settings) -> Scorer:
    spec = load_spec(settings.models_root / settings.model / "model.yaml")
    mv = load_version(spec, settings)
    reader = FeatureReader(spec, connect(settings), cluster=settings.redis_cluster)
    return Scorer(spec, reader, {mv.version: mv}, make_predictor(spec, settings, mv))


def make_predictor(spec: ModelSpec, settings: Settings, mv: ModelVersion) -> Predictor:
    if isinstance(spec, GraphModelSpec):
        return GraphPredictor(graph_client(spec, settings), spec.graph.output)
    est = spec.estimator
    estimator = artifacts.load_verified_pickle(mv.path, est.file, mv.manifest, settings.allow_drift)
    return SklearnPredictor({mv.version: estimator}, est)
