"""Spec files: the shipped ones validate; mistakes fail naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.errors import ConfigError
from gateway.spec import load_spec
from tests.support import REPO

SPECS = sorted((REPO / "models").glob("*/model.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.parent.name for p in SPECS])
def test_shipped_specs_validate(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.parent.name


def _write(tmp_path: Path, mutate: object) -> Path:
    raw = yaml.safe_load((REPO / "models/risk/model.yaml").read_text())
    mutate(raw)  # type: ignore[operator]
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_unknown_key_names_file_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda r: r["graph"].__setitem__("deadline_msec", 5))
    with pytest.raises(ConfigError) as exc:
        load_spec(path)
    assert str(path) in str(exc.value) and "graph.deadline_msec: unknown field" in str(exc.value)


def test_bad_reference_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda r: r["feature_views"][0].__setitem__("entity", "merchant"))
    with pytest.raises(ConfigError, match="unknown entity 'merchant'"):
        load_spec(path)


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(path)
