"""Fixtures of the logic-tier tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.fixture(scope="session")
def strict(built_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The risk model without its fallback and with a 503 for an unreadable feature store: failures show."""
    root = tmp_path_factory.mktemp("strict")
    raw = yaml.safe_load((built_models / "risk" / "model.yaml").read_text())
    raw.pop("fallback")
    raw.pop("overload")
    raw["feature_views"][0]["on_unavailable"] = "error"
    (root / "risk").mkdir()
    (root / "risk" / "model.yaml").write_text(yaml.safe_dump(raw))
    (root / "risk" / "1").symlink_to(built_models / "risk" / "1")
    return root
