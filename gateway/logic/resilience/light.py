"""The version's light model at serving time: a linear model over the transformed features, numpy only.

Read from ``light_model.json`` (written at packaging, ``gateway.saver.light``) once its
sha256 matches the manifest; data, not a pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gateway import artifacts
from gateway.errors import ArtifactError

FORMAT = "gateway.light-model"


class LightModel:
    def __init__(self, coef: np.ndarray[Any, Any], intercept: float, link: str) -> None:
        self.coef = coef
        self.intercept = intercept
        self.link = link

    def __call__(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The model output scale the graph's would have (a probability for a logistic link)."""
        z = np.asarray(x, dtype=np.float64) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z))) if self.link == "logistic" else z


def load_light_model(vdir: Path, manifest: dict[str, Any]) -> LightModel | None:
    """The version's light model, or None when it has none (published before light models, or multi-output)."""
    entry = manifest.get("light_model")
    rel = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(rel, str):
        return None
    artifacts.verify_files(vdir, manifest, only=[rel])
    try:
        data = json.loads((vdir / rel).read_text())
        if data.get("format") != FORMAT or data.get("link") not in ("logistic", "identity"):
            raise ValueError(f"not a light model of a format this gateway reads: {data.get('format')!r}")
        return LightModel(np.asarray(data["coef"], dtype=np.float64), float(data["intercept"]), data["link"])
    except (ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"{vdir / rel}: {e}") from e
