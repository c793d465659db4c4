"""``versions:``: which published versions a model's tiers hold, and which one answers a request.

The vocabulary is TF-Serving's: a version policy (``latest``, ``specific``, ``all``) says
which version directories are aspired, and labels (``stable``, ``canary``, any
``[a-z0-9_]+``) name versions. Labels are operational state, not part of the spec: they
live in the model config file both tiers read (``gateway.wire.model_config``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from gateway.spec.base import Strict

LABEL_PATTERN = r"^[a-z0-9_]{1,64}$"
Label = Annotated[str, Field(pattern=LABEL_PATTERN)]
STABLE = "stable"


class LatestPolicy(Strict):
    """Hold the newest N versions (TF-Serving's ``latest``)."""

    latest: int = Field(1, ge=1, description="Hold this many of the newest versions.")


class SpecificPolicy(Strict):
    """Hold exactly the listed versions (TF-Serving's ``specific``)."""

    specific: list[int] = Field(min_length=1, description="Hold exactly these versions.", examples=[[3, 4]])


class CanarySpec(Strict):
    """Send a share of the requests that name no version or label to the version behind ``label``."""

    percent: float = Field(ge=0, le=100, description="Share of unpinned requests, chosen by entity id.")
    label: Label = "canary"
    """The label naming the canary version (set with `gateway label MODEL canary=N`)."""


class ShadowSpec(Strict):
    """Also score each answered request with the version behind ``label``, off the request path."""

    label: Label = "candidate"
    """The label naming the shadow version."""
    queue: int = Field(
        256, ge=1, le=100_000, description="Requests waiting to be shadowed; more are dropped."
    )


class VersionsSpec(Strict):
    """Which published versions both tiers hold, and which one answers a request."""

    policy: LatestPolicy | SpecificPolicy | Literal["all"] = LatestPolicy()
    """Versions held: ``{latest: N}``, ``{specific: [N, ...]}`` or ``all``."""
    promotion: Literal["auto", "manual"] = Field(
        "auto",
        description=(
            "auto: requests naming no version go to the newest eligible version (a 'stable' label pins "
            "it); manual: to the version labelled 'stable' (without one, the oldest held version)."
        ),
    )
    canary: CanarySpec | None = None
    """Send a share of unpinned requests to a labelled version."""
    shadow: ShadowSpec | None = None
    """Also score answered requests with a labelled version, off the request path."""
    warmup_requests: int = Field(
        2, ge=1, le=100, description="Warm-up scorings through the full path before a version takes traffic."
    )

    @model_validator(mode="after")
    def _labels_differ(self) -> VersionsSpec:
        used = [s.label for s in (self.canary, self.shadow) if s is not None]
        if STABLE in used:
            raise ValueError(f"'{STABLE}' names the default version; canary and shadow need other labels")
        return self

    def aspired(self, on_disk: list[int]) -> list[int]:
        """The versions of ``on_disk`` (ascending) this policy holds."""
        if self.policy == "all":
            return list(on_disk)
        if isinstance(self.policy, SpecificPolicy):
            return [v for v in on_disk if v in self.policy.specific]
        return on_disk[-self.policy.latest :]

    def graph_policy(self) -> LatestPolicy | SpecificPolicy | Literal["all"]:
        """The graph's policy: one version more than the logic tier's latest N, so the outgoing
        version stays loaded in the graph while logic workers move off it."""
        if isinstance(self.policy, LatestPolicy):
            return LatestPolicy(latest=self.policy.latest + 1)
        return self.policy
