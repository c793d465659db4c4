"""The deployment files as the real tools see them (installed by `make install` and `make tools`).

The compose file against the compose-spec schema, every overlay through `kubectl kustomize`
and `kubernetes-validate` for the Kubernetes version we target, the Dockerfiles through
hadolint, the Jenkinsfile through npm-groovy-lint. Each tool is also shown a broken file, so
a tool that accepts anything cannot pass here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.deploy.release import set_images
from gateway.deploy.settings import load_settings
from gateway.errors import ConfigError
from tests.support import REPO

pytestmark = pytest.mark.slow

KUBERNETES = "1.37.0"
ENVS = sorted(load_settings(REPO).environments)


def tool(name: str) -> str:
    where = Path(sys.executable).parent / name
    if name == "npm-groovy-lint":
        where = REPO / ".tools" / "node_modules" / ".bin" / name
    if not where.exists():
        pytest.fail(f"{where}: missing; `make install tools` installs the validators")
    return str(where)


def run(*cmd: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_compose_file_follows_the_compose_spec(tmp_path: Path) -> None:
    ok = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    broken["services"]["redis"]["restart_policy"] = "always"  # a swarm key out of place
    (tmp_path / "compose.yml").write_text(yaml.safe_dump(broken))
    bad = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(tmp_path / "compose.yml")
    )
    assert bad.returncode != 0 and "restart_policy" in bad.stdout + bad.stderr


def kustomize(overlay: Path) -> str:
    out = run(tool("kubectl"), "kustomize", str(overlay))
    assert out.returncode == 0, out.stderr
    return out.stdout


def validate(manifest: Path) -> subprocess.CompletedProcess[str]:
    return run(tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES, str(manifest))


@pytest.mark.parametrize("env", ENVS)
def test_every_overlay_renders_and_is_valid_kubernetes(env: str, tmp_path: Path) -> None:
    manifest = tmp_path / f"{env}.yaml"
    manifest.write_text(kustomize(REPO / "deploy" / "k8s" / "overlays" / env))
    checked = validate(manifest)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    namespace = load_settings(REPO).environments[env].namespace
    assert {d["metadata"]["namespace"] for d in docs} == {namespace}
    assert all(d["metadata"]["labels"]["environment"] == env for d in docs)


def test_kubernetes_validate_refuses_a_broken_deployment(tmp_path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(kustomize(REPO / "deploy" / "k8s" / "overlays" / "prd")) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecs"] = 2
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(deployment))
    bad = validate(tmp_path / "bad.yaml")
    assert bad.returncode != 0 and "periodSecs" in bad.stdout + bad.stderr


def test_a_release_pins_the_built_digests_in_one_environment(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "deploy" / "k8s", checkout / "deploy" / "k8s")
    overlay = yaml.safe_load((checkout / "deploy/k8s/overlays/stg/kustomization.yaml").read_text())
    digests = {img["name"]: "sha256:" + f"{i:x}" * 64 for i, img in enumerate(overlay["images"], start=1)}
    (tmp_path / "digests.json").write_text(json.dumps(digests))
    assert run(sys.executable, "-m", "gateway.cli", "release", "stg", str(tmp_path / "digests.json"),
               "--registry", "reg.example.com/sg", "--repo", str(checkout)).returncode == 0  # fmt: skip
    rendered = kustomize(checkout / "deploy" / "k8s" / "overlays" / "stg")
    for name, digest in digests.items():
        assert f"image: reg.example.com/sg/{name}@{digest}" in rendered
    assert "unreleased" not in rendered
    assert "@sha256" not in kustomize(checkout / "deploy" / "k8s" / "overlays" / "sit")  # only stg moved
    with pytest.raises(ConfigError, match="not an image digest"):
        set_images(checkout, "stg", {"logic-risk": "latest"})
    with pytest.raises(ConfigError, match="no image"):
        set_images(checkout, "stg", {"logic-nope": "sha256:" + "0" * 64})


def test_dockerfiles_pass_hadolint(tmp_path: Path) -> None:
    files = sorted(str(p) for p in (REPO / "deploy" / "docker").glob("*.Dockerfile"))
    assert len(files) == 2
    ok = run(tool("hadolint"), *files)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "bad.Dockerfile").write_text("FROM python:latest\nRUN pip install flask\n")
    bad = run(tool("hadolint"), str(tmp_path / "bad.Dockerfile"))
    assert bad.returncode != 0 and "DL3007" in bad.stdout


def test_jenkinsfile_passes_npm_groovy_lint() -> None:
    out = run(tool("npm-groovy-lint"), "--failon", "warning", "--output", "txt", "Jenkinsfile")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Jenkinsfile" in out.stdout
