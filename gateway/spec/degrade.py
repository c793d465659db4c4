"""``fallback:``, ``circuit:`` and ``overload:``: how a model answers when its graph cannot.

Failing soft, in the spec's words: when the graph misses its deadline, is unavailable, its
circuit is open or the worker is over its in-flight budget, the answer comes from the first
source of ``fallback.chain`` that works, flagged ``"degraded": true`` with the reason.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.spec.base import Strict

Source = Literal["light_model", "precomputed", "default"]


class PrecomputedSpec(Strict):
    """Scores computed ahead of time and loaded into the feature store like any feature view."""

    view: str = Field(description="A hash feature view of this model that holds the scores.")
    field: str = Field("score", description="The view's field with the score.")


class FallbackSpec(Strict):
    """Where a degraded answer comes from, tried in order."""

    chain: list[Source] = Field(
        min_length=1,
        description=(
            "Sources tried in order: light_model (the version's in-process model, coefficients "
            "stored with it), precomputed (scores in the feature store), default (default_score)."
        ),
    )
    default_score: float | None = Field(None, description="The static score of the 'default' source.")
    precomputed: PrecomputedSpec | None = None
    """The view and field holding precomputed scores (the 'precomputed' source)."""

    @model_validator(mode="after")
    def _sources_configured(self) -> FallbackSpec:
        if len(set(self.chain)) != len(self.chain):
            raise ValueError(f"chain {self.chain} names a source twice")
        if "default" in self.chain and self.default_score is None:
            raise ValueError("the 'default' source needs default_score")
        if "precomputed" in self.chain and self.precomputed is None:
            raise ValueError("the 'precomputed' source needs a 'precomputed' block (view, field)")
        return self


class CircuitSpec(Strict):
    """A circuit breaker in front of the graph (per worker and graph target set)."""

    failures: int = Field(5, ge=1, description="Consecutive failures that open the circuit.")
    error_rate: float = Field(0.5, gt=0, le=1, description="Or this share of failures over the window.")
    window_s: float = Field(10.0, gt=0, description="The window the error rate is taken over.")
    min_calls: int = Field(20, ge=1, description="Calls in the window before the error rate counts.")
    open_s: float = Field(2.0, gt=0, description="Time open (straight to the fallback) before a probe.")


class OverloadSpec(Strict):
    """Load shedding: a bound on the requests one worker works on at once. A shed answer closes its
    connection, so the client's next connection can land on a less busy worker."""

    max_in_flight: int = Field(
        6,
        ge=1,
        description="Requests one worker works on at once; more are shed (keep it below the threads).",
    )
    shed: Literal["fallback", "429", "503"] | None = Field(
        None,
        description=(
            "What a shed request gets: a fallback answer, or the status with Retry-After "
            "(default: the fallback when the spec has one, else 503)."
        ),
    )
    retry_after_s: float = Field(1.0, gt=0, le=3600)
    """The Retry-After of a shed 429 or 503."""
