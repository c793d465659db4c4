"""What the views need, built once per worker by ``create_app``: one typed object on the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from flask import Flask, current_app

from gateway.logic.orchestrator import Scorer
from gateway.logic.web.metrics import Metrics
from gateway.logic.web.readiness import Readiness
from gateway.settings import Settings

EXTENSION = "gateway"


@dataclass(frozen=True)
class AppState:
    settings: Settings
    scorer: Scorer
    metrics: Metrics
    readiness: Readiness
    openapi: dict[str, Any]

    def install(self, app: Flask) -> None:
        app.extensions[EXTENSION] = self


def app_state(app: Flask | None = None) -> AppState:
    """The state of ``app`` (default: the app handling the current request)."""
    return cast(AppState, (app or current_app).extensions[EXTENSION])
