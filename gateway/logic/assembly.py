"""Build a worker's ``Scorer`` from settings: spec, clients, the version manager. Fails fast, naming the cause."""

from __future__ import annotations

import logging
from pathlib import Path

from gateway.featurestore.reader import FeatureReader, connect
from gateway.logic.events import ScoringEvents
from gateway.logic.graph_client import GraphClient
from gateway.logic.orchestrator import Scorer
from gateway.logic.predictors import GraphPredictor, Predictor, SklearnPredictor
from gateway.logic.resilience.fallback import FallbackChain
from gateway.logic.versions.loader import ModelVersion, load_version
from gateway.logic.versions.manager import VersionManager
from gateway.logic.versions.source import VersionSource
from gateway.settings import Settings
from gateway.spec import SPEC_FILE, GraphModelSpec, ModelSpec, load_spec

log = logging.getLogger("gateway.logic")


def graph_client(spec: GraphModelSpec, settings: Settings) -> GraphClient:
    g = spec.graph
    deadline_ms = settings.graph_deadline_ms or g.deadline_ms
    return GraphClient(settings.graph_targets or g.targets, g.model_name, g.signature, deadline_ms / 1000)


def make_predictor(spec: ModelSpec, settings: Settings) -> Predictor:
    if isinstance(spec, GraphModelSpec):
        return GraphPredictor(graph_client(spec, settings), spec.graph.output, settings.coalesce_max_rows)
    return SklearnPredictor(spec.estimator)


def build_scorer(
    settings: Settings,
    predictor: Predictor | None = None,
    events: ScoringEvents | None = None,
    start: bool = True,
) -> Scorer:
    """The worker's scorer, its versions loaded as far as they can be now; ``start`` keeps polling."""
    base = Path(settings.models_root) / settings.model
    spec = load_spec(base / SPEC_FILE)
    client = connect(settings)
    fallback = None
    scoring_views = spec.feature_views
    if spec.fallback is not None:
        fallback = FallbackChain(spec, spec.fallback, client, settings.redis_cluster)
        pre = spec.fallback.precomputed
        if pre is not None:  # read only when the fallback needs it
            scoring_views = [v for v in spec.feature_views if v.name != pre.view]
    reader = FeatureReader(spec, client, cluster=settings.redis_cluster, views=scoring_views)
    predictor = predictor or make_predictor(spec, settings)

    def load(version: int, path: Path) -> ModelVersion:
        return load_version(spec, path, version, settings.allow_drift)

    source = VersionSource(spec, base, settings.model_config_file, only=settings.version)
    manager = VersionManager(spec.name, source, load, predictor)
    scorer = Scorer(spec, reader, predictor, manager, fallback)
    if events is not None:
        scorer.events = events
    if not settings.warmup:
        manager.warm = None
    manager.poll()  # the first pass at start: a worker usually starts ready
    if start:
        manager.start(settings.version_poll_ms / 1000)
    return scorer
