"""The spec's reference: a JSON Schema and a key table generated from its types, committed and current."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import gateway.spec as spec_package
from gateway.cli import main
from gateway.spec.base import Strict
from gateway.spec.reference import (
    REFERENCE_FILE,
    SCHEMA_FILE,
    examples_from,
    json_schema,
    reference_text,
    spec_files,
    stale,
)
from tests.support import REPO
from tests.walkthrough import readme_blocks

SCHEMA = json.loads((REPO / SCHEMA_FILE).read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def spec_classes() -> list[type[Strict]]:
    found = {c for _, c in inspect.getmembers(spec_package, inspect.isclass) if issubclass(c, Strict)}
    for module in ("backend", "degrade", "deploy", "features", "postprocess", "request", "versions", "model"):
        mod = __import__(f"gateway.spec.{module}", fromlist=["_"])
        found |= {
            c
            for _, c in inspect.getmembers(mod, inspect.isclass)
            if issubclass(c, Strict) and c is not Strict
        }
    return sorted(found, key=lambda c: c.__name__)


def test_the_committed_schema_and_reference_are_current() -> None:
    assert stale(REPO) == [], "run `gateway spec docs` and commit the result"
    assert main(["spec", "docs", "--check", "--repo", str(REPO)]) == 0


@pytest.mark.parametrize("cls", spec_classes(), ids=lambda c: c.__name__)
def test_every_key_of_every_block_is_in_the_schema_documented_and_exemplified(cls: type[Strict]) -> None:
    """So a key added to the spec's types without regenerating makes the currency test fail."""
    schema = json_schema()
    if cls.__name__ == "ModelSpecBase":
        return  # its keys are the two variants'
    props = schema["$defs"][cls.__name__]["properties"]
    assert set(props) == set(cls.model_fields), cls.__name__
    for key, prop in props.items():
        assert prop.get("description"), f"{cls.__name__}.{key}: no docstring or description"
    _, missing = reference_text(schema, examples_from(spec_files(REPO)))
    assert missing == []


def test_the_demo_specs_and_the_walkthroughs_validate_against_the_schema() -> None:
    for path in spec_files(REPO):
        VALIDATOR.validate(yaml.safe_load(path.read_text()))
        assert path.read_text().startswith("# yaml-language-server: $schema=../model.schema.json\n")
    VALIDATOR.validate(yaml.safe_load(readme_blocks()["models/churn/model.yaml"]))


def test_the_schema_refuses_what_the_spec_refuses() -> None:
    risk: dict[str, Any] = yaml.safe_load((REPO / "models" / "risk" / "model.yaml").read_text())
    assert not VALIDATOR.is_valid({**risk, "requests": {}})  # a typo
    assert not VALIDATOR.is_valid({**risk, "backend": "onnx"})
    without_request = {k: v for k, v in risk.items() if k != "request"}
    assert not VALIDATOR.is_valid(without_request)
    assert VALIDATOR.is_valid({**without_request, "extends": "other"})  # inherited


def test_the_reference_lists_every_section_with_types_defaults_and_examples() -> None:
    text = (REPO / REFERENCE_FILE).read_text()
    for heading in (
        "## Top level",
        "## `request.fields[]`",
        "## `feature_views[]`",
        "## `graph`",
        "## `deploy.batching`",
    ):
        assert heading in text
    row = next(line for line in text.splitlines() if line.startswith("| `deadline_ms` |"))
    assert "integer (>= 1)" in row and "`300`" in row and "deadline" in row.lower()


def test_spec_check_passes_good_files_and_names_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["spec", "check", *map(str, spec_files(REPO))]) == 0
    assert "models/risk/model.yaml: ok: model risk" in capsys.readouterr().out
    raw = yaml.safe_load(readme_blocks()["models/churn/model.yaml"])
    (tmp_path / "churnx").mkdir()
    (tmp_path / "churnx" / "model.yaml").write_text(yaml.safe_dump({**raw, "name": "churn2"}))
    assert main(["spec", "check", str(tmp_path / "churnx" / "model.yaml")]) == 2
    assert "name: 'churn2' differs from its directory 'churnx'" in capsys.readouterr().err
    typo = {**raw, "transformer": {"file": "transformer.pkl", "columns": ["tenure_monts", "plan"]}}
    (tmp_path / "churn").mkdir()
    (tmp_path / "churn" / "model.yaml").write_text(yaml.safe_dump(typo))
    assert main(["spec", "check", str(tmp_path / "churn" / "model.yaml")]) == 2
    err = capsys.readouterr().err
    assert (
        f"{tmp_path / 'churn' / 'model.yaml'}: transformer.columns: ['tenure_monts'] are neither request fields nor feature-view fields"
        in err
    )
