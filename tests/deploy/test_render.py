"""`gateway render`: the committed deployment files are what the specs render; a change shows as stale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from gateway.deploy.render import check, render, write
from gateway.deploy.settings import load_models
from gateway.errors import ConfigError
from tests.support import REPO


def checkout(tmp_path: Path) -> Path:
    """The render step's inputs (specs, settings, the TensorFlow pin), rendered and written."""
    root = tmp_path / "checkout"
    (root / "deploy").mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "settings.yaml", root / "deploy" / "settings.yaml")
    shutil.copy(REPO / "constraints.txt", root / "constraints.txt")
    for spec in sorted((REPO / "models").glob("*/model.yaml")):
        (root / "models" / spec.parent.name).mkdir(parents=True)
        shutil.copy(spec, root / "models" / spec.parent.name / "model.yaml")
    write(root, render(root))
    return root


def edit_spec(root: Path, model: str, **changes: object) -> None:
    path = root / "models" / model / "model.yaml"
    raw = yaml.safe_load(path.read_text())
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_the_committed_files_are_what_the_specs_render() -> None:
    problems = check(REPO)
    assert problems == [], "\n".join(problems) + "\nrun `gateway render` and commit the result"


def test_a_changed_spec_leaves_named_files_stale_until_rendered(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    assert check(root) == []
    edit_spec(root, "ctr", deploy={"ports": {"logic": 9101, "grpc": 9102, "rest": 9103}})
    stale = check(root)
    assert "docker-compose.yml: stale, run `gateway render`" in stale
    assert "deploy/local/supervisord.conf: stale, run `gateway render`" in stale
    assert main(["render", "--check", "--repo", str(root)]) == 1
    assert main(["render", "--repo", str(root)]) == 0
    assert check(root) == []
    assert "9101:8000" in (root / "docker-compose.yml").read_text()


def test_a_file_no_model_renders_is_stale_and_removed(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    left = root / "deploy" / "k8s" / "base" / "gone-model.yaml"
    left.write_text("kind: Deployment\n")
    assert check(root) == [
        "deploy/k8s/base/gone-model.yaml (no model renders it): stale, run `gateway render`"
    ]
    write(root, render(root))
    assert not left.exists() and check(root) == []


def test_adding_a_model_is_one_spec_and_one_render(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    (root / "models" / "fraud_lr").mkdir()
    spec = yaml.safe_load((root / "models" / "risk_lr" / "model.yaml").read_text())
    spec.update(name="fraud_lr", deploy={"ports": {"logic": 8090}})
    (root / "models" / "fraud_lr" / "model.yaml").write_text(yaml.safe_dump(spec))
    changed = write(root, render(root))
    assert "deploy/k8s/base/fraud-lr.yaml" in changed
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    assert compose["services"]["logic-fraud-lr"]["ports"] == ["8090:8000"]
    assert "graph-fraud-lr" not in compose["services"]  # in-process: no graph container
    kustomization = yaml.safe_load((root / "deploy" / "k8s" / "base" / "kustomization.yaml").read_text())
    assert "fraud-lr.yaml" in kustomization["resources"]
    assert "[program:logic-fraud_lr]" in (root / "deploy" / "local" / "supervisord.conf").read_text()
    for env in ("sit", "stg", "prd"):
        overlay = yaml.safe_load(
            (root / "deploy" / "k8s" / "overlays" / env / "kustomization.yaml").read_text()
        )
        assert "logic-fraud-lr" in {i["name"] for i in overlay["images"]}


def test_colliding_ports_are_refused_naming_both_models(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    edit_spec(root, "risk_lr", deploy={"ports": {"logic": 8001}})  # ctr's logic port
    with pytest.raises(ConfigError, match=r"risk_lr/model.yaml: deploy.ports: 8001 is ctr's too"):
        load_models(root)
    assert check(root) == ["models/risk_lr/model.yaml: deploy.ports: 8001 is ctr's too"]


def test_the_graph_image_must_be_the_tensorflow_that_exports(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    settings = yaml.safe_load((root / "deploy" / "settings.yaml").read_text())
    serving = settings["images"]["tf_serving"].rsplit(":", 1)[1]
    pin = root / "constraints.txt"
    pin.write_text(pin.read_text().replace(f"tensorflow=={serving}\n", "tensorflow==2.20.0\n"))
    assert check(root) == [
        f"constraints.txt exports with tensorflow 2.20.0; the graph image is {settings['images']['tf_serving']}"
    ]
    shutil.copy(REPO / "constraints.txt", pin)
    version = root / "models" / "risk" / "3"
    version.mkdir()
    (version / "manifest.json").write_text(json.dumps({"environment": {"tensorflow": "2.18.1"}}))
    assert check(root) == [
        f"models/risk/3/manifest.json: exported with tensorflow 2.18.1; the graph image is "
        f"{settings['images']['tf_serving']}"
    ]


def test_batching_is_rendered_for_the_graph_and_passed_in_every_environment(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    spec = yaml.safe_load((root / "models" / "ctr" / "model.yaml").read_text())
    spec["deploy"]["batching"] = {"max_batch_size": 500, "batch_timeout_micros": 200}
    edit_spec(root, "ctr", deploy=spec["deploy"])
    write(root, render(root))
    config = (root / "deploy" / "serving" / "ctr" / "batching.config").read_text()
    assert config == (
        "max_batch_size { value: 500 }\nbatch_timeout_micros { value: 200 }\n"
        "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 64 }\n"
    )
    flags = ["--enable_batching=true", "--batching_parameters_file=/config/batching.config"]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    assert compose["services"]["graph-ctr"]["command"][-2:] == flags
    docs = list(yaml.safe_load_all((root / "deploy" / "k8s" / "base" / "ctr.yaml").read_text()))
    graph = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "graph-ctr")
    assert graph["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == flags
    served = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "ctr-serving")
    assert served["data"]["batching.config"] == config
    local = (root / "deploy" / "local" / "supervisord.conf").read_text()
    assert "--enable_batching=true --batching_parameters_file=deploy/serving/ctr/batching.config" in local
    del spec["deploy"]["batching"]
    edit_spec(root, "ctr", deploy=spec["deploy"])
    write(root, render(root))
    assert not (root / "deploy" / "serving" / "ctr" / "batching.config").exists()


@pytest.mark.parametrize(
    ("model", "batching", "error"),
    [
        ("ctr", {"max_batch_size": 100}, "max_batch_size 100 is below request.max_items 500"),
        ("risk_lr", {"max_batch_size": 500}, "an in-process \\(sklearn\\) model has no graph to batch in"),
    ],
)
def test_batching_the_graph_could_not_honour_is_refused(
    tmp_path: Path, model: str, batching: dict[str, int], error: str
) -> None:
    root = checkout(tmp_path)
    spec = yaml.safe_load((root / "models" / model / "model.yaml").read_text())
    spec["deploy"]["batching"] = batching
    edit_spec(root, model, deploy=spec["deploy"])
    with pytest.raises(ConfigError, match=error):
        load_models(root)
