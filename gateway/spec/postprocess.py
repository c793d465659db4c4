"""``postprocess:``: raw model output -> the scores clients receive."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.spec.base import Strict


class Calibration(Strict):
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


class PostprocessSpec(Strict):
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
