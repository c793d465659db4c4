"""Which version answers a request: pinned, labelled, canary or default. Pure functions of shared state.

Every worker computes the same answer from the same inputs (the versions it holds, the
labels in the model config file and the spec), so workers agree once they have polled.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from gateway.errors import UnknownVersion, VersionUnavailable
from gateway.spec import STABLE, VersionsSpec

BASIS_POINTS = 10_000


@dataclass(frozen=True)
class Routing:
    """An immutable snapshot: swapped whole, so a request sees one consistent table."""

    model: str
    available: frozenset[int] = frozenset()
    held: frozenset[int] = frozenset()  # loading, available or unloading: known, maybe not servable now
    default: int | None = None
    labels: dict[str, int] = field(default_factory=dict)  # every label of the config file
    canary: int | None = None  # the canary version, when it is available and not the default
    canary_bp: int = 0  # share of unpinned requests it takes, in basis points
    shadow: int | None = None  # the shadow version, when available
    waiting: str = ""  # what the versions not available are waiting for (shown when none is)

    def pick(self, version: int | None, label: str | None, entity: str | None) -> tuple[int, str | None]:
        """(version, how it was chosen: a label name, "canary", or None for the default or a pinned version)."""
        if label is not None:
            if label not in self.labels:
                raise UnknownVersion(
                    f"label {label!r} is not served by model {self.model} (labels: {sorted(self.labels)})"
                )
            return self._servable(self.labels[label], f"label {label!r}"), label
        if version is not None:
            return self._servable(version, f"version {version}"), None
        if self.canary is not None and entity is not None and bucket(entity) < self.canary_bp:
            return self.canary, "canary"
        if self.default is None:
            why = f" ({self.waiting})" if self.waiting else ""
            raise VersionUnavailable(f"model {self.model} has no version available yet{why}")
        return self.default, None

    def _servable(self, version: int, what: str) -> int:
        if version in self.available:
            return version
        if version in self.held:
            raise VersionUnavailable(
                f"{what} of model {self.model} is not available yet (loading or leaving)"
            )
        raise UnknownVersion(f"{what} is not served by model {self.model} (serving {sorted(self.available)})")


def bucket(entity: str) -> int:
    """A stable bucket in [0, 10000) for an entity id: the same id lands on the same side every time."""
    return zlib.crc32(entity.encode("utf-8")) % BASIS_POINTS


def build(
    model: str,
    spec: VersionsSpec,
    available: set[int],
    held: set[int],
    labels: dict[str, int],
    waiting: str = "",
) -> Routing:
    """The routing table for the versions this worker can serve now."""
    default = default_version(spec, available, labels)
    canary = shadow = None
    canary_bp = 0
    if spec.canary is not None:
        v = labels.get(spec.canary.label)
        if v is not None and v in available and v != default:
            canary, canary_bp = v, round(spec.canary.percent * BASIS_POINTS / 100)
    if spec.shadow is not None:
        v = labels.get(spec.shadow.label)
        shadow = v if v is not None and v in available else None
    return Routing(
        model=model,
        available=frozenset(available),
        held=frozenset(held),
        default=default,
        labels=dict(labels),
        canary=canary,
        canary_bp=canary_bp,
        shadow=shadow,
        waiting=waiting,
    )


def default_version(spec: VersionsSpec, available: set[int], labels: dict[str, int]) -> int | None:
    """The version for requests that name none (see ``VersionsSpec.promotion``)."""
    if not available:
        return None
    stable = labels.get(STABLE)
    if stable is not None and stable in available:
        return stable
    return max(available) if spec.promotion == "auto" else min(available)
