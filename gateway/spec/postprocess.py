"""``postprocess:``: raw model output -> the scores clients receive."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.spec.base import Strict


class Calibration(Strict):
    """``platt``: sigmoid(a * score + b); ``isotonic``: piecewise-linear through (x, y) points."""

    method: Literal["platt", "isotonic"]
    """platt: a logistic curve of the score; isotonic: a monotone piecewise-linear map."""
    a: float = 1.0
    """Platt slope."""
    b: float = 0.0
    """Platt intercept."""
    x: list[float] = Field(default_factory=list, examples=[[0.0, 0.2, 0.5, 1.0]])
    """Isotonic: raw scores, strictly increasing."""
    y: list[float] = Field(default_factory=list, examples=[[0.0, 0.1, 0.6, 1.0]])
    """Isotonic: the calibrated score at each x."""

    @model_validator(mode="after")
    def _points(self) -> Calibration:
        if self.method == "isotonic":
            if len(self.x) < 2 or len(self.x) != len(self.y):
                raise ValueError("isotonic calibration needs x and y of the same length (at least 2 points)")
            if any(b <= a for a, b in zip(self.x, self.x[1:], strict=False)):
                raise ValueError("isotonic calibration x must be strictly increasing")
        return self


class PostprocessSpec(Strict):
    """Raw graph output -> returned scores: activation, calibration, threshold/labels, ranking order."""

    activation: Literal["identity", "sigmoid", "softmax"] = "identity"
    """Applied to the raw output: identity (the graph already outputs probabilities), sigmoid, softmax."""
    calibration: Calibration | None = None
    """Maps each score through a fitted calibration (one score per row)."""
    threshold: float | None = Field(None, examples=[0.5])
    """Adds a label per row: labels[1] at or above the threshold, labels[0] below."""
    labels: list[str] | None = Field(None, examples=[["keep", "churn"]])
    """[below, at or above] with a threshold; one name per class with softmax."""
    score_field: str = "score"
    """The key of the score in each answer."""
    top_k: bool = False
    """Ranking: always answer best first (a request's top_k also cuts the list)."""

    @model_validator(mode="after")
    def _labels(self) -> PostprocessSpec:
        if self.threshold is not None and self.labels is not None and len(self.labels) != 2:
            raise ValueError("a threshold takes exactly two labels: [below, at or above]")
        if self.calibration is not None and self.activation == "softmax":
            raise ValueError("calibration applies to one score per row, not to softmax classes")
        return self
