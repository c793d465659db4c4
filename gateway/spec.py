"""``models/<name>/model.yaml``: the validated spec that drives a model's serving.

Unknown keys are errors, and every error names the file and the field, so a
typo fails the service at start-up instead of silently changing behaviour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """One request field: its type and the checks applied before anything else runs."""

    name: str
    type: Literal["string", "float", "int", "bool"]
    required: bool = True
    default: str | float | int | bool | None = None
    min: float | None = None
    max: float | None = None
    max_length: int = 256
    enum: list[str] | None = None
    description: str = ""


class RankingSpec(_Strict):
    """Ranking form: one entity (e.g. a user) scored against many items."""

    user_field: str = "uid"
    items_field: str = "item_ids"
    context_field: str = "context"
    user_entity: str = "user"
    item_entity: str = "item"
    default_top_k: int | None = None


class RequestSpec(_Strict):
    form: Literal["records", "ranking"] = "records"
    max_items: int = Field(100, ge=1, le=10000)
    fields: list[FieldSpec]
    ranking: RankingSpec | None = None

    @model_validator(mode="after")
    def _ranking_needs_block(self) -> RequestSpec:
        if self.form == "ranking" and self.ranking is None:
            raise ValueError("form 'ranking' needs a 'ranking' block")
        names = [f.name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate field names in {names}")
        return self


class EntitySpec(_Strict):
    """An entity whose id comes from a request field and keys feature views."""

    field: str
    max_length: int = 128


class HashField(_Strict):
    dtype: Literal["float", "int", "string"] = "float"
    default: str | float | int

    @model_validator(mode="after")
    def _default_has_dtype(self) -> HashField:
        # A default stands in for a stored value, so it takes the type a stored value decodes
        # to: `default: 0` on a float field is 0.0, exactly as "0" read from Redis would be.
        d = self.default
        if self.dtype == "string" and not isinstance(d, str):
            raise ValueError(f"default {d!r} of a string field must be a string")
        if self.dtype != "string" and isinstance(d, (str, bool)):
            raise ValueError(f"default {d!r} of a {self.dtype} field must be a number")
        if self.dtype == "int" and isinstance(d, float) and not d.is_integer():
            raise ValueError(f"default {d!r} of an int field must be a whole number")
        object.__setattr__(self, "default", {"float": float, "int": int, "string": str}[self.dtype](d))
        return self


class ViewCache(_Strict):
    """Keep this view's decoded entities in each worker (see ``gateway.featurestore.cache``).

    Worth it for entities many requests share (a ranking's candidate items); the
    values are exact, not a stale copy: a snapshot's keys never change except by an
    incremental load, which bumps the snapshot's generation, and every request
    checks both the alias and the generation in its one round trip.
    """

    max_entities: int = Field(ge=1, le=10_000_000)


class FeatureView(_Strict):
    """A group of features stored per entity: hash fields, or one packed vector."""

    name: str
    entity: str
    kind: Literal["hash", "vector"] = "hash"
    fields: dict[str, HashField] = Field(default_factory=dict)
    dim: int | None = Field(None, ge=1)
    default: Literal["zeros"] = "zeros"
    cache: ViewCache | None = None

    @model_validator(mode="after")
    def _shape(self) -> FeatureView:
        if self.kind == "hash" and not self.fields:
            raise ValueError(f"hash view '{self.name}' needs 'fields'")
        if self.kind == "vector" and self.dim is None:
            raise ValueError(f"vector view '{self.name}' needs 'dim'")
        return self


class TransformerSpec(_Strict):
    file: str = "transformer.pkl"
    columns: list[str]
    output_dtype: Literal["float32", "float64"] = "float32"


class GraphSpec(_Strict):
    targets: list[str] = Field(default_factory=lambda: ["127.0.0.1:8500"])
    model_name: str
    signature: str = "serving_default"
    # tensor name -> source: "transformed", or "view:<vector view name>"
    inputs: dict[str, str]
    output: str
    deadline_ms: int = Field(300, ge=1)


class Calibration(_Strict):
    """``platt``: sigmoid(a * score + b); ``isotonic``: piecewise-linear through (x, y) points."""

    method: Literal["platt", "isotonic"]
    a: float = 1.0
    b: float = 0.0
    x: list[float] = Field(default_factory=list)
    y: list[float] = Field(default_factory=list)

    @model_validator(mode="after")
    def _points(self) -> Calibration:
        if self.method == "isotonic":
            if len(self.x) < 2 or len(self.x) != len(self.y):
                raise ValueError("isotonic calibration needs x and y of the same length (at least 2 points)")
            if any(b <= a for a, b in zip(self.x, self.x[1:], strict=False)):
                raise ValueError("isotonic calibration x must be strictly increasing")
        return self


class PostprocessSpec(_Strict):
    """Raw graph output -> returned scores: activation, calibration, threshold/labels, ranking order."""

    activation: Literal["identity", "sigmoid", "softmax"] = "identity"
    calibration: Calibration | None = None
    threshold: float | None = None
    labels: list[str] | None = None  # [negative, positive] with a threshold; one per class with softmax
    score_field: str = "score"
    top_k: bool = False  # ranking: always sort best first (a request's top_k also cuts)

    @model_validator(mode="after")
    def _labels(self) -> PostprocessSpec:
        if self.threshold is not None and self.labels is not None and len(self.labels) != 2:
            raise ValueError("a threshold takes exactly two labels: [below, at or above]")
        if self.calibration is not None and self.activation == "softmax":
            raise ValueError("calibration applies to one score per row, not to softmax classes")
        return self


class EstimatorSpec(_Strict):
    """``backend: sklearn``: a pickled scikit-learn estimator served in-process (no graph)."""

    file: str = "model.pkl"
    method: Literal["predict_proba", "decision_function", "predict"] = "predict_proba"
    column: int = Field(1, ge=0, description="predict_proba column to return (1: the positive class)")


class FallbackSpec(_Strict):
    policy: Literal["none", "default_score", "precomputed", "model"] = "none"
    default_score: float | None = None
    model: str | None = None


class ModelSpec(_Strict):
    name: str
    description: str = ""
    backend: Literal["tensorflow", "sklearn"] = "tensorflow"
    recipe: str | None = None  # fit code transformers/<recipe>.py; default: the model's name
    request: RequestSpec
    entities: dict[str, EntitySpec] = Field(default_factory=dict)
    feature_views: list[FeatureView] = Field(default_factory=list)
    transformer: TransformerSpec
    graph: GraphSpec | None = None
    estimator: EstimatorSpec | None = None
    postprocess: PostprocessSpec = PostprocessSpec()
    fallback: FallbackSpec = FallbackSpec()

    @model_validator(mode="after")
    def _cross_refs(self) -> ModelSpec:
        fields = {f.name for f in self.request.fields}
        for ent_name, ent in self.entities.items():
            if ent.field not in fields and self.request.form == "records":
                raise ValueError(f"entities.{ent_name}.field '{ent.field}' is not a request field")
        for view in self.feature_views:
            if view.entity not in self.entities:
                raise ValueError(f"feature view '{view.name}' uses unknown entity '{view.entity}'")
        if self.backend == "tensorflow" and self.graph is None:
            raise ValueError("backend 'tensorflow' needs a 'graph' block")
        if self.backend == "sklearn" and (self.estimator is None or self.graph is not None):
            raise ValueError("backend 'sklearn' needs an 'estimator' block and no 'graph' block")
        return self

    def view(self, name: str) -> FeatureView:
        for v in self.feature_views:
            if v.name == name:
                return v
        raise KeyError(name)


def load_spec(path: Path) -> ModelSpec:
    """Read and validate a spec file; errors name the file and the field."""
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read spec: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    try:
        return ModelSpec.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{path}: {_describe(e)}") from e


def _describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
