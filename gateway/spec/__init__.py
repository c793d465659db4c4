"""``models/<name>/model.yaml``: the validated spec that drives a model's serving.

Unknown keys are errors, and every error names the file and the field, so a typo
fails the service at start-up instead of silently changing behaviour. One module per
part of the file: ``request``, ``features`` (entities and feature views), ``backend``
(transformer, graph, estimator), ``postprocess``, ``versions`` (policy, promotion, canary,
shadow), ``degrade`` (fallback, circuit, overload); ``model`` puts them together.
"""

from gateway.spec.backend import EstimatorSpec, GraphInput, GraphSpec, TransformerSpec
from gateway.spec.degrade import CircuitSpec, FallbackSpec, OverloadSpec, PrecomputedSpec
from gateway.spec.features import EntitySpec, FeatureView, HashField, ViewCache
from gateway.spec.model import (
    SPEC_FILE,
    GraphModelSpec,
    ModelSpec,
    ModelSpecBase,
    SklearnModelSpec,
    load_spec,
    parse_spec,
)
from gateway.spec.postprocess import Calibration, PostprocessSpec
from gateway.spec.request import FieldSpec, RankingSpec, RequestSpec
from gateway.spec.versions import STABLE, CanarySpec, LatestPolicy, ShadowSpec, SpecificPolicy, VersionsSpec

__all__ = [
    "SPEC_FILE",
    "STABLE",
    "Calibration",
    "CanarySpec",
    "CircuitSpec",
    "EntitySpec",
    "EstimatorSpec",
    "FallbackSpec",
    "FeatureView",
    "FieldSpec",
    "GraphInput",
    "GraphModelSpec",
    "GraphSpec",
    "HashField",
    "LatestPolicy",
    "ModelSpec",
    "ModelSpecBase",
    "OverloadSpec",
    "PostprocessSpec",
    "PrecomputedSpec",
    "RankingSpec",
    "RequestSpec",
    "ShadowSpec",
    "SklearnModelSpec",
    "SpecificPolicy",
    "TransformerSpec",
    "VersionsSpec",
    "ViewCache",
    "load_spec",
    "parse_spec",
]
