"""`gateway bundle`: an image pair's build context carries the model's published versions, as published."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway import artifacts
from gateway.cli import main
from gateway.deploy.bundle import bundle
from gateway.errors import ConfigError
from tests.support import REPO


def test_a_graph_models_bundle_holds_both_images_contents(built_models: Path, tmp_path: Path) -> None:
    out = tmp_path / "risk"
    assert main(["bundle", "risk", "--out", str(out), "--store", str(built_models), "--repo", str(REPO)]) == 0
    versions = artifacts.list_versions(built_models / "risk")
    assert versions and artifacts.list_versions(out / "models" / "risk") == versions
    for v in versions:
        vdir = out / "models" / "risk" / str(v)
        assert artifacts.audit(vdir, artifacts.read_manifest(vdir)) == []
        assert (out / "graph" / "models" / "risk" / str(v) / "saved_model.pb").is_file()
    assert (out / "graph" / "config" / "models.config").read_text() == (
        REPO / "deploy" / "serving" / "risk" / "models.config"
    ).read_text()
    assert (out / "models" / "risk" / "model.yaml").read_text() == (
        REPO / "models" / "risk" / "model.yaml"
    ).read_text()
    assert (out / "gateway" / "logic" / "web" / "app.py").is_file() and (out / "pyproject.toml").is_file()
    assert not list(out.rglob("__pycache__")) and not (out / "models" / "risk" / "demo").exists()


def test_an_in_process_models_bundle_has_the_spec_it_extends_and_no_graph(
    built_models: Path, tmp_path: Path
) -> None:
    out = tmp_path / "risk_lr"
    bundle(REPO, "risk_lr", out, store=built_models)
    assert (out / "models" / "risk" / "model.yaml").is_file()  # risk_lr extends risk
    assert not (out / "models" / "risk" / "1").exists()  # ... but not risk's versions
    assert artifacts.list_versions(out / "models" / "risk_lr") == artifacts.list_versions(
        built_models / "risk_lr"
    )
    assert not (out / "graph").exists()


def test_a_version_changed_after_publishing_is_not_bundled(built_models: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(built_models / "risk", store / "risk")
    with (store / "risk" / "1" / "transformer.pkl").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ConfigError, match=r"not as published: transformer.pkl: sha256 does not match"):
        bundle(REPO, "risk", tmp_path / "out", store=store)
    with pytest.raises(ConfigError, match="no published version"):
        bundle(REPO, "risk", tmp_path / "out", store=tmp_path / "empty")
