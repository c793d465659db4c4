"""The whole spec of one model, one class per backend, and how a spec file is read.

``ModelSpec`` is a union discriminated by ``backend``: a ``tensorflow`` model has a
``graph`` block, a ``sklearn`` model an ``estimator`` block, and code that needs one
narrows with ``isinstance`` instead of asserting that an optional block is there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Discriminator, Field, Tag, TypeAdapter, ValidationError, model_validator

from gateway.errors import ConfigError
from gateway.spec.backend import EstimatorSpec, GraphSpec, TransformerSpec
from gateway.spec.base import Strict
from gateway.spec.degrade import CircuitSpec, FallbackSpec, OverloadSpec
from gateway.spec.deploy import DeploySpec
from gateway.spec.features import EntitySpec, FeatureView
from gateway.spec.postprocess import PostprocessSpec
from gateway.spec.request import RequestSpec
from gateway.spec.versions import VersionsSpec

SPEC_FILE = "model.yaml"
# What ``extends: <model>`` takes from the other model's spec when this one does not set it:
# the data contract (request schema, entities, feature views, transformer, post-processing),
# never the identity or the backend.
INHERITED = ("request", "entities", "feature_views", "transformer", "postprocess")


class ModelSpecBase(Strict):
    name: str
    """The model's name: its directory under models/ (they must match), URLs and metric labels."""
    description: str = ""
    """One line for people: shown in the OpenAPI document."""
    extends: str | None = Field(
        None,
        description=(
            "Model (in the same models directory) whose data contract this one reuses: request, entities, "
            "feature_views, transformer and postprocess, unless set here."
        ),
    )
    recipe: str | None = None
    """Fit code transformers/<recipe>.py for `gateway train` (default: the model's name; exported models have none)."""
    request: RequestSpec
    """What a client sends."""
    entities: dict[str, EntitySpec] = Field(default_factory=dict)
    """Entity name -> the request field holding its id; entities key feature views."""
    feature_views: list[FeatureView] = Field(default_factory=list)
    """Features read from Redis, one round trip per request for all views."""
    transformer: TransformerSpec
    """The pickled scikit-learn transformer from request fields and features to the model's matrix."""
    postprocess: PostprocessSpec = PostprocessSpec()
    """From the model's raw output to the answer."""
    versions: VersionsSpec = VersionsSpec()
    """Which published versions are held, and which one answers (labels, canary, shadow)."""
    fallback: FallbackSpec | None = None
    """Where a degraded answer comes from when the model cannot answer (none: a 503/504)."""
    circuit: CircuitSpec = CircuitSpec()
    """The circuit breaker in front of the graph."""
    overload: OverloadSpec = OverloadSpec()
    """The bound on requests one worker works on, and what shed requests get."""
    deploy: DeploySpec | None = None
    """Ports, replicas, resources and batching: read by `gateway render` (none: not deployed)."""

    @model_validator(mode="after")
    def _cross_refs(self) -> ModelSpecBase:
        fields = {f.name for f in self.request.fields}
        for ent_name, ent in self.entities.items():
            if ent.field not in fields and self.request.form == "records":
                raise ValueError(f"entities.{ent_name}.field '{ent.field}' is not a request field")
        for view in self.feature_views:
            if view.entity not in self.entities:
                raise ValueError(f"feature view '{view.name}' uses unknown entity '{view.entity}'")
        pre = self.fallback.precomputed if self.fallback is not None else None
        if pre is not None:
            scores = next((v for v in self.feature_views if v.name == pre.view), None)
            if scores is None or scores.kind != "hash" or pre.field not in scores.fields:
                raise ValueError(
                    f"fallback.precomputed: no hash view {pre.view!r} with a field {pre.field!r}"
                )
        if self.overload.shed == "fallback" and self.fallback is None:
            raise ValueError("overload.shed 'fallback' needs a 'fallback' block")
        known = fields | {f for v in self.feature_views if v.kind == "hash" for f in v.fields}
        unknown = [c for c in self.transformer.columns if c not in known]
        if unknown:
            raise ValueError(
                f"transformer.columns: {unknown} are neither request fields nor feature-view fields "
                f"(those are {sorted(known)})"
            )
        return self

    def view(self, name: str) -> FeatureView:
        for v in self.feature_views:
            if v.name == name:
                return v
        raise KeyError(name)


class GraphModelSpec(ModelSpecBase):
    """``backend: tensorflow``: the model runs on a graph service (TF-Serving) over gRPC."""

    backend: Literal["tensorflow"] = "tensorflow"
    """tensorflow: a SavedModel served by a graph service; sklearn: an estimator in the logic service."""
    graph: GraphSpec
    """The graph service and the SavedModel signature (backend: tensorflow)."""

    @model_validator(mode="after")
    def _graph_ports(self) -> GraphModelSpec:
        if self.deploy is not None and (self.deploy.ports.grpc is None or self.deploy.ports.rest is None):
            raise ValueError("deploy.ports: a graph model needs grpc and rest ports")
        batching = self.deploy.batching if self.deploy is not None else None
        if batching is not None and batching.max_batch_size < self.request.max_items:
            raise ValueError(
                f"deploy.batching.max_batch_size {batching.max_batch_size} is below request.max_items "
                f"{self.request.max_items}: the graph would refuse the largest requests"
            )
        return self

    @model_validator(mode="after")
    def _graph_views(self) -> GraphModelSpec:
        vectors = {v.name for v in self.feature_views if v.kind == "vector"}
        for alias, src in self.graph.inputs.items():
            if src.view is not None and src.view not in vectors:
                raise ValueError(
                    f"graph.inputs.{alias}: '{src}' names no vector feature view (vector views: {sorted(vectors)})"
                )
        return self


class SklearnModelSpec(ModelSpecBase):
    """``backend: sklearn``: a scikit-learn estimator runs in the logic service (no graph service)."""

    backend: Literal["sklearn"]
    """tensorflow: a SavedModel served by a graph service; sklearn: an estimator in the logic service."""
    estimator: EstimatorSpec = EstimatorSpec()
    """The pickled estimator and the method giving scores (backend: sklearn)."""

    @model_validator(mode="after")
    def _no_graph_ports(self) -> SklearnModelSpec:
        if self.deploy is not None and (self.deploy.ports.grpc or self.deploy.ports.rest):
            raise ValueError(
                "deploy.ports: an in-process (sklearn) model has no graph, so no grpc or rest port"
            )
        if self.deploy is not None and self.deploy.batching is not None:
            raise ValueError("deploy.batching: an in-process (sklearn) model has no graph to batch in")
        return self


def _backend(value: Any) -> str:
    raw = value.get("backend", "tensorflow") if isinstance(value, dict) else getattr(value, "backend", "")
    return str(raw)


ModelSpec = Annotated[
    Annotated[GraphModelSpec, Tag("tensorflow")] | Annotated[SklearnModelSpec, Tag("sklearn")],
    Discriminator(
        _backend, custom_error_type="backend", custom_error_message="backend must be tensorflow or sklearn"
    ),
]
_ADAPTER: TypeAdapter[GraphModelSpec | SklearnModelSpec] = TypeAdapter(ModelSpec)


def parse_spec(raw: Any) -> GraphModelSpec | SklearnModelSpec:
    """Validate a spec's data (raises pydantic's ValidationError)."""
    return _ADAPTER.validate_python(raw)


def load_spec(path: Path) -> GraphModelSpec | SklearnModelSpec:
    """Read and validate a spec file (following ``extends``); errors name the file and the field."""
    raw = _with_bases(path, [])
    name = raw.get("name")
    if path.name == SPEC_FILE and isinstance(name, str) and name != path.parent.name:
        raise ConfigError(
            f"{path}: name: {name!r} differs from its directory {path.parent.name!r} "
            "(a model's spec lives at <models>/<name>/model.yaml)"
        )
    try:
        return parse_spec(raw)
    except ValidationError as e:
        raise ConfigError(f"{path}: {describe(e)}") from e


def _read(path: Path) -> dict[str, Any]:
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read spec: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return raw


def _with_bases(path: Path, seen: list[Path]) -> dict[str, Any]:
    """The file's data with the data contract of the model it ``extends`` filled in."""
    raw = _read(path)
    base = raw.get("extends")
    if base is None:
        return raw
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: extends: must name a model")
    base_path = path.parent.parent / base / SPEC_FILE
    if base_path.resolve() in seen or base_path.resolve() == path.resolve():
        chain = " -> ".join(str(p) for p in [*seen, path.resolve(), base_path.resolve()])
        raise ConfigError(f"{path}: extends: forms a cycle ({chain})")
    if not base_path.is_file():
        raise ConfigError(f"{path}: extends: {base!r}: no spec at {base_path}")
    inherited = _with_bases(base_path, [*seen, path.resolve()])
    return {**{k: inherited[k] for k in INHERITED if k in inherited}, **raw}


def describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in ("tensorflow", "sklearn"))
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        if err["type"] == "value_error":  # our validators' messages name their keys themselves
            msg = msg.removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
