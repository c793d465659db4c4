"""What every compiled step shares: the shape it receives, the result of compiling it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.transformer.columns import Data

Op = Callable[[Data], Data]


class Unsupported(Exception):
    """A fitted estimator (or one of its parameters) has no compiled form; the message says why."""


@dataclass(frozen=True, slots=True)
class Shape:
    """What a step receives: column names when known, width, and whether it is a DataFrame."""

    names: list[str] | None
    width: int
    frame: bool

    def name(self, j: int) -> str:
        return self.names[j] if self.names is not None else f"feature {j}"

    def matrix(self, names: list[str] | None = None, width: int | None = None) -> Shape:
        """The shape of an ndarray output (same columns unless given)."""
        return Shape(self.names if names is None else names, self.width if width is None else width, False)


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled step: ``op`` maps what the step receives to what its ``transform`` returns."""

    op: Op
    out: Shape
    sparse: bool = False  # the reference returns a sparse matrix (same values, densified here)


def check_input(est: Any, shape: Shape) -> None:
    """Refuse estimators that would see other columns than at fit time, or wrap their output."""
    n = getattr(est, "n_features_in_", None)
    if n is None:
        raise Unsupported(f"{type(est).__name__} is not fitted")
    if n != shape.width:
        raise Unsupported(f"{type(est).__name__} was fitted on {n} features but receives {shape.width}")
    fitted_names = getattr(est, "feature_names_in_", None)
    if shape.frame and fitted_names is not None and list(fitted_names) != shape.names:
        fitted = list(fitted_names)
        raise Unsupported(f"{type(est).__name__} was fitted on columns {fitted}, not {shape.names}")
    config = getattr(est, "_sklearn_output_config", {}).get("transform", "default")
    if config != "default":
        raise Unsupported(f"{type(est).__name__} has set_output(transform={config!r})")


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise Unsupported(reason)
