"""Spec files: the shipped ones validate; mistakes fail naming file and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gateway.errors import ConfigError
from gateway.spec import GraphInput, GraphModelSpec, SklearnModelSpec, load_spec
from tests.support import REPO

SPECS = sorted((REPO / "models").glob("*/model.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.parent.name for p in SPECS])
def test_shipped_specs_validate(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.parent.name


def _write(tmp_path: Path, mutate: object) -> Path:
    raw = yaml.safe_load((REPO / "models/risk/model.yaml").read_text())
    mutate(raw)  # type: ignore[operator]
    path = tmp_path / str(raw["name"]) / "model.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
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


def test_backend_picks_the_spec_class_and_its_block(tmp_path: Path) -> None:
    assert isinstance(load_spec(REPO / "models/risk/model.yaml"), GraphModelSpec)
    lr = load_spec(REPO / "models/risk_lr/model.yaml")
    assert isinstance(lr, SklearnModelSpec) and lr.estimator.method == "predict_proba"
    path = _write(tmp_path, lambda r: r.__setitem__("backend", "sklearn"))
    with pytest.raises(ConfigError, match="graph: unknown field"):  # an sklearn model has no graph
        load_spec(path)
    path = _write(tmp_path, lambda r: r.pop("graph"))
    with pytest.raises(ConfigError, match="graph: Field required"):
        load_spec(path)
    path = _write(tmp_path, lambda r: r.__setitem__("backend", "onnx"))
    with pytest.raises(ConfigError, match="backend must be tensorflow or sklearn"):
        load_spec(path)


def test_graph_inputs_are_parsed_once_into_typed_sources(tmp_path: Path) -> None:
    ctr = load_spec(REPO / "models/ctr/model.yaml")
    assert isinstance(ctr, GraphModelSpec)
    assert ctr.graph.inputs == {"features": GraphInput(), "item_embedding": GraphInput(view="item_embedding")}
    assert ctr.graph.transformed_alias == "features" and ctr.graph.views == ["item_embedding"]
    assert ctr.model_dump()["graph"]["inputs"] == {
        "features": "transformed",
        "item_embedding": "view:item_embedding",
    }
    path = _write(tmp_path, lambda r: r["graph"]["inputs"].__setitem__("features", "transformd"))
    with pytest.raises(
        ConfigError, match=r"graph.inputs.features: .*'transformed' or 'view:<vector view name>'"
    ):
        load_spec(path)
    path = _write(tmp_path, lambda r: r["graph"]["inputs"].__setitem__("emb", "view:profile"))
    with pytest.raises(ConfigError, match=r"graph.inputs.emb: 'view:profile' names no vector feature view"):
        load_spec(path)


@pytest.mark.parametrize(
    ("fallback", "problem"),
    [
        ({"chain": ["default"]}, "the 'default' source needs default_score"),
        ({"chain": ["precomputed"]}, "needs a 'precomputed' block"),
        ({"chain": ["default", "default"], "default_score": 0.1}, "names a source twice"),
        (
            {"chain": ["precomputed"], "precomputed": {"view": "nope"}},
            "no hash view 'nope' with a field 'score'",
        ),
        (
            {"chain": ["crystal_ball"]},
            "fallback.chain.0: Input should be 'light_model', 'precomputed' or 'default'",
        ),
        ({"policy": "default_score"}, "fallback.policy: unknown field"),
    ],
)
def test_fallback_mistakes_are_named(tmp_path: Path, fallback: dict[str, object], problem: str) -> None:
    path = _write(tmp_path, lambda r: r.__setitem__("fallback", fallback))
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_spec(path)


def test_shedding_to_a_fallback_needs_one(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda r: (r.pop("fallback"), r.__setitem__("overload", {"shed": "fallback"})))
    with pytest.raises(ConfigError, match=r"overload.shed .fallback. needs a .fallback. block"):
        load_spec(path)


def _model(root: Path, name: str, raw: dict[str, object]) -> Path:
    (root / name).mkdir(parents=True, exist_ok=True)
    path = root / name / "model.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_extends_reuses_the_data_contract_and_nothing_else(tmp_path: Path) -> None:
    base = yaml.safe_load((REPO / "models/risk/model.yaml").read_text())
    _model(tmp_path, "risk", base)
    child = _model(
        tmp_path,
        "risk2",
        {"name": "risk2", "extends": "risk", "graph": {**base["graph"], "model_name": "risk2"}},
    )
    spec = load_spec(child)
    parent = load_spec(tmp_path / "risk/model.yaml")
    assert isinstance(spec, GraphModelSpec) and spec.name == "risk2" and spec.graph.model_name == "risk2"
    assert (spec.request, spec.feature_views, spec.transformer) == (
        parent.request,
        parent.feature_views,
        parent.transformer,
    )
    # A key the child sets replaces the parent's whole block.
    child = _model(
        tmp_path,
        "risk3",
        {"name": "risk3", "extends": "risk", "backend": "sklearn", "postprocess": {"activation": "sigmoid"}},
    )
    spec = load_spec(child)
    assert isinstance(spec, SklearnModelSpec) and spec.postprocess.activation == "sigmoid"


def test_extends_errors_name_the_file(tmp_path: Path) -> None:
    a = _model(tmp_path, "a", {"name": "a", "extends": "b"})
    _model(tmp_path, "b", {"name": "b", "extends": "a"})
    with pytest.raises(
        ConfigError, match=r"extends: forms a cycle \(.*a/model.yaml -> .*b/model.yaml -> .*a/model.yaml\)"
    ):
        load_spec(a)
    c = _model(tmp_path, "c", {"name": "c", "extends": "nope"})
    with pytest.raises(ConfigError, match=r"c/model.yaml: extends: 'nope': no spec at .*nope/model.yaml"):
        load_spec(c)
