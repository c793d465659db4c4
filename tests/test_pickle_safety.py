"""The logic service refuses transformers the manifest does not vouch for."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from gateway import artifacts
from gateway.errors import ArtifactError
from gateway.logic.versions.loader import load_version
from gateway.settings import Settings
from gateway.spec import load_spec


@pytest.fixture
def version_copy(built_models: Path, tmp_path: Path) -> Path:
    """A private copy of the risk model (spec + version 1) that a test may damage."""
    root = tmp_path / "models"
    (root / "risk").mkdir(parents=True)
    shutil.copy(built_models / "risk" / "model.yaml", root / "risk" / "model.yaml")
    shutil.copytree(built_models / "risk" / "1", root / "risk" / "1")
    return root


def _load(root: Path, **kw: object) -> object:
    spec = load_spec(root / "risk" / "model.yaml")
    settings = Settings(model="risk", models_root=root, **kw)  # type: ignore[arg-type]
    return load_version(spec, root / "risk" / "1", 1, settings.allow_drift)


def test_intact_version_loads(version_copy: Path) -> None:
    mv = _load(version_copy)
    assert mv.version == 1  # type: ignore[attr-defined]


def test_tampered_pickle_is_refused_before_unpickling(version_copy: Path) -> None:
    pkl = version_copy / "risk" / "1" / "transformer.pkl"
    evil = pickle.dumps(RuntimeError("would run"))  # any change at all, even a harmless one
    pkl.write_bytes(evil)
    with pytest.raises(ArtifactError, match=r"transformer\.pkl: sha256 .* does not match the manifest"):
        _load(version_copy)


def _set_manifest_env(root: Path, lib: str, version: str, compiled: bool = False) -> None:
    """Record another library version; unless ``compiled``, also drop the compiled transformer
    record, so the worker has to unpickle (as for a version published before compiled files)."""
    path = root / "risk" / "1" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["environment"][lib] = version
    if not compiled:
        manifest.pop("compiled_transformer", None)
    path.write_text(json.dumps(manifest))


def test_compiled_file_does_not_depend_on_library_versions(version_copy: Path) -> None:
    _set_manifest_env(version_copy, "scikit-learn", "0.24.2", compiled=True)
    mv = _load(version_copy)
    assert mv.transform.source == "artifact"  # type: ignore[attr-defined]


def test_library_mismatch_names_both_versions(version_copy: Path) -> None:
    _set_manifest_env(version_copy, "scikit-learn", "0.24.2")
    running = artifacts.library_version("scikit-learn")
    with pytest.raises(ArtifactError) as exc:
        _load(version_copy)
    assert "scikit-learn 0.24.2" in str(exc.value) and f"scikit-learn {running}" in str(exc.value)


def test_declared_drift_is_allowed(version_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    _set_manifest_env(version_copy, "numpy", "1.0.0")
    mv = _load(version_copy, allow_drift=["numpy"])
    assert mv.version == 1  # type: ignore[attr-defined]
    assert "numpy 1.0.0 ->" in caplog.text


def test_python_patch_releases_are_compatible(version_copy: Path) -> None:
    major_minor = ".".join(artifacts.library_version("python").split(".")[:2])
    _set_manifest_env(version_copy, "python", f"{major_minor}.0")
    assert _load(version_copy).version == 1  # type: ignore[attr-defined]


def test_restricted_unpickler_rejects_foreign_classes(tmp_path: Path) -> None:
    import io

    payload = pickle.dumps(shutil.rmtree)
    with pytest.raises(ArtifactError, match=r"shutil\.rmtree"):
        artifacts.safe_unpickle(io.BytesIO(payload))
