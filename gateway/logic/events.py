"""What the scorer reports beyond its answers; the web layer turns it into metrics."""

from __future__ import annotations

from typing import Protocol


class ScoringEvents(Protocol):
    def version_event(self, model: str, version: int, event: str, detail: str) -> None: ...

    def shadow_scored(self, model: str, version: int, diffs: list[float]) -> None: ...

    def shadow_dropped(self, model: str, reason: str) -> None: ...


class NoEvents:
    def version_event(self, model: str, version: int, event: str, detail: str) -> None:
        pass

    def shadow_scored(self, model: str, version: int, diffs: list[float]) -> None:
        pass

    def shadow_dropped(self, model: str, reason: str) -> None:
        pass
