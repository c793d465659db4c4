"""``transformer:``, ``graph:`` and ``estimator:``: what turns features into scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, PlainSerializer, PlainValidator, WithJsonSchema

from gateway.spec.base import Strict


class TransformerSpec(Strict):
    """The fitted scikit-learn transformer a version carries, and the columns it takes."""

    file: str = "transformer.pkl"
    """The pickle's file name in a version directory."""
    columns: list[str]
    """The transformer's input columns, in order: request fields and feature-view fields by name."""
    output_dtype: Literal["float32", "float64"] = "float32"
    """The dtype of the transformed matrix sent to the model."""


@dataclass(frozen=True, slots=True)
class GraphInput:
    """Where one graph input's tensor comes from: the transformer's output, or a vector view.

    Written in a spec as ``transformed`` or ``view:<vector view name>``; parsed once, here.
    """

    view: str | None = None  # None: the transformed matrix

    @property
    def transformed(self) -> bool:
        return self.view is None

    def __str__(self) -> str:
        return "transformed" if self.view is None else f"view:{self.view}"


def parse_graph_input(value: Any) -> GraphInput:
    if isinstance(value, GraphInput):
        return value
    if value == "transformed":
        return GraphInput()
    if isinstance(value, str) and value.startswith("view:") and len(value) > 5:
        return GraphInput(view=value[5:])
    raise ValueError(f"{value!r}: must be 'transformed' or 'view:<vector view name>'")


InputSource = Annotated[
    GraphInput,
    PlainValidator(parse_graph_input),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^(transformed|view:[A-Za-z0-9_]+)$"}),
]


class GraphSpec(Strict):
    """The model's graph service (TF-Serving's PredictionService over gRPC) and its signature."""

    targets: list[str] = Field(default_factory=lambda: ["127.0.0.1:8500"])
    """host:port of the graph service (several: balanced round_robin); deployments override it."""
    model_name: str
    """The model name the graph serves (TF-Serving's model_spec.name)."""
    signature: str = "serving_default"
    """The SavedModel signature to call."""
    inputs: dict[str, InputSource]
    """Signature input alias -> ``transformed`` (the transformer's output) or ``view:<vector view>``."""
    output: str
    """The signature output alias holding the scores."""
    deadline_ms: int = Field(300, ge=1)
    """Per-call deadline; a graph slower than this answers from the fallback (or 504)."""

    @property
    def transformed_alias(self) -> str | None:
        """The input that takes the transformer's output (None if every input is a view)."""
        return next((alias for alias, src in self.inputs.items() if src.transformed), None)

    @property
    def views(self) -> list[str]:
        """Vector views the graph takes as they are stored."""
        return [src.view for src in self.inputs.values() if src.view is not None]


class EstimatorSpec(Strict):
    """``backend: sklearn``: a pickled scikit-learn estimator served in-process (no graph)."""

    file: str = "model.pkl"
    """The estimator pickle's file name in a version directory."""
    method: Literal["predict_proba", "decision_function", "predict"] = "predict_proba"
    """The estimator method that gives the scores."""
    column: int = Field(1, ge=0, description="predict_proba column to return (1: the positive class)")
