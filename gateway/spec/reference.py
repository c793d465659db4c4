"""The reference of ``model.yaml``, generated from the spec's own types.

Two files, committed and checked current by a test (``gateway spec docs --check``):

* ``models/model.schema.json``: a JSON Schema (draft 2020-12) of a spec file, for editors
  (the demo specs name it in a ``yaml-language-server`` modeline) and other tools. A file
  that ``extends`` another may leave out what it inherits.
* ``models/README.md``: every key with its type, default, description and an example. An
  example is the first value the specs under ``models/`` give the key, else one the field
  declares, else its default; every key has one.

Descriptions are the fields' docstrings (``Strict`` turns them into schema descriptions), so
the reference cannot say something the code does not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

from gateway.spec.model import INHERITED, SPEC_FILE, ModelSpec

SCHEMA_FILE = Path("models") / "model.schema.json"
REFERENCE_FILE = Path("models") / "README.md"
SCHEMA_ID = "model.schema.json"
VARIANTS = {"GraphModelSpec": "tensorflow", "SklearnModelSpec": "sklearn"}


def json_schema() -> dict[str, Any]:
    """The schema of a spec file: the spec's types, and ``extends`` making inherited keys optional."""
    schema: dict[str, Any] = TypeAdapter(ModelSpec).json_schema()
    defs = schema["$defs"]
    for variant in VARIANTS:
        model = defs[variant]
        inherited = [k for k in model.get("required", []) if k in INHERITED]
        model["required"] = [k for k in model.get("required", []) if k not in INHERITED]
        if inherited:
            model["if"] = {"not": {"required": ["extends"]}}
            model["then"] = {"required": inherited}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "model.yaml",
        "description": "The spec of one model served by the scoring gateway (models/<name>/model.yaml).",
        **schema,
    }


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


# -- examples ----------------------------------------------------------------------------------
def examples_from(specs: list[Path]) -> dict[str, Any]:
    """Key path (``feature_views[].fields.<name>.dtype``) -> the first value the spec files give it."""
    out: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if path:
            out.setdefault(path, value)
        if isinstance(value, dict):
            for k, v in value.items():
                key = "<name>" if path in NAME_MAPS else str(k)
                walk(v, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    walk(item, f"{path}[]")

    for path in specs:
        walk(yaml.safe_load(path.read_text()), "")
    return out


# Keys whose values map names the user chooses (an entity, a field) to blocks.
NAME_MAPS = ("entities", "feature_views[].fields")


# -- the reference page --------------------------------------------------------------------------
class _Page:
    def __init__(self, schema: dict[str, Any], examples: dict[str, Any]) -> None:
        self.defs: dict[str, Any] = schema["$defs"]
        self.examples = examples
        self.sections: list[tuple[str, str, list[list[str]]]] = []  # (title, intro, rows)
        self.done: set[str] = set()
        self.missing: list[str] = []

    def ref(self, schema: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """(definition name, resolved schema); optional blocks (anyOf X | null) resolve to X."""
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            return name, self.defs[name]
        alts = [a for a in schema.get("anyOf", []) if a.get("type") != "null"]
        if len(alts) == 1 and "$ref" in alts[0]:
            return self.ref(alts[0])
        return None, schema

    def type_of(self, schema: dict[str, Any]) -> str:
        alts = schema.get("anyOf") or schema.get("oneOf")
        if alts:
            return " or ".join(self.type_of(a) for a in alts if a.get("type") != "null")
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            return f"{_block(name)} block"
        if "enum" in schema:
            return " \\| ".join(json.dumps(v) for v in schema["enum"])
        if "const" in schema:
            return json.dumps(schema["const"])
        kind = str(schema.get("type", "any"))
        if kind == "array":
            return f"list of {self.type_of(schema.get('items', {}))}"
        if kind == "object":
            return f"map of name to {self.type_of(schema.get('additionalProperties', {}))}"
        return {"integer": "integer", "number": "number", "string": "string", "boolean": "boolean"}.get(
            kind, kind
        ) + _bounds(schema)

    def section(self, path: str, name: str, schema: dict[str, Any], title: str = "") -> None:
        title = title or path
        if title in self.done:
            return
        self.done.add(title)
        rows: list[list[str]] = []
        required = set(schema.get("required", []))
        nested: list[tuple[str, str, dict[str, Any], str]] = []
        for key, prop in schema.get("properties", {}).items():
            key_path = f"{path}.{key}" if path else key
            default = (
                "required" if key in required else _shown(prop.get("default")) if "default" in prop else "—"
            )
            if not path and key in INHERITED and key in required:
                default = "required (unless inherited)"
            below = self.children(key_path, prop)
            example = "see below" if below else self.example(key_path, prop)
            rows.append([f"`{key}`", self.type_of(prop), default, prop.get("description") or "", example])
            nested += below
        self.sections.append((title or "(top level)", self.defs.get(name, {}).get("description", ""), rows))
        for child_path, child_name, child, child_title in nested:
            self.section(child_path, child_name, child, child_title)

    def children(self, path: str, prop: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str]]:
        """Blocks under a key: (path, definition, schema, section title); a block, a list or a map of
        blocks, or alternatives (each its own section)."""
        name, schema = self.ref(prop)
        if name is not None:
            return [(path, name, schema, path)]
        if schema.get("type") == "array":
            n, s = self.ref(schema.get("items", {}))
            return [(f"{path}[]", n, s, f"{path}[]")] if n is not None else []
        if schema.get("type") == "object":
            n, s = self.ref(schema.get("additionalProperties", {}))
            return [(f"{path}.<name>", n, s, f"{path}.<name>")] if n is not None else []
        out = []
        for alt in prop.get("anyOf", []):
            if "$ref" in alt:
                n, s = self.ref(alt)
                assert n is not None
                out.append((path, n, s, f"{path} ({_block(n)})"))
        return out

    def example(self, path: str, prop: dict[str, Any]) -> str:
        if path in self.examples:
            return _shown(self.examples[path])
        if prop.get("examples"):
            return _shown(prop["examples"][0])
        if "default" in prop and prop["default"] is not None:
            return _shown(prop["default"])
        if "enum" in prop:
            return _shown(prop["enum"][0])
        self.missing.append(path)
        return ""

    def text(self) -> str:
        parts = [HEADER]
        for path, intro, rows in self.sections:
            parts.append(f"\n## `{path}`\n" if path != "(top level)" else "\n## Top level\n")
            if intro:
                parts.append(f"{' '.join(intro.split())}\n")
            parts.append("\n| key | type | default | what | example |\n| --- | --- | --- | --- | --- |\n")
            for row in rows:
                parts.append("| " + " | ".join(_cell(c) for c in row) + " |\n")
        return "".join(parts)


HEADER = """# `model.yaml` reference

Generated by `gateway spec docs` from the spec's types (`gateway/spec/`): do not edit. Every key
of a model's spec, with its type, default, meaning and an example (from the specs in this
directory where they use the key). The same in machine form: [`model.schema.json`](model.schema.json)
(JSON Schema; editors with the YAML language server pick it up from the first line of a spec:
`# yaml-language-server: $schema=../model.schema.json`). Check one file without starting anything:
`gateway spec check models/<name>/model.yaml`. A walk-through from a SavedModel and a pickle to a
served model is in the top-level README ("Bring your own model").

A spec file may `extends:` another model: it then takes that model's `request`, `entities`,
`feature_views`, `transformer` and `postprocess` unless it sets them. Unknown keys are errors.
Map keys written `<name>` are names you choose (an entity, a field, an input alias).
"""


def _block(name: str) -> str:
    return name.removesuffix("Spec") or name


def _bounds(schema: dict[str, Any]) -> str:
    parts = []
    for key, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in schema:
            parts.append(f"{sign} {schema[key]}")
    if "pattern" in schema:
        parts.append(f"matching `{schema['pattern']}`")
    if "minItems" in schema:
        parts.append(f"at least {schema['minItems']}")
    return f" ({', '.join(parts)})" if parts else ""


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return f"`{text if len(text) <= 70 else text[:67] + '...'}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\\\\|", "\\|").replace("\n", " ")


def reference_text(schema: dict[str, Any], examples: dict[str, Any]) -> tuple[str, list[str]]:
    """The reference page, and the key paths it has no example for."""
    page = _Page(schema, examples)
    graph, sklearn = (schema["$defs"][v] for v in VARIANTS)
    properties: dict[str, Any] = {**graph["properties"], **sklearn["properties"]}
    properties["backend"] = {
        "enum": ["tensorflow", "sklearn"],
        "default": "tensorflow",
        "description": graph["properties"]["backend"].get("description", ""),
    }
    merged = {
        "properties": properties,
        "required": sorted(set(graph.get("required", [])) & set(sklearn.get("required", []))),
    }
    page.section("", "", merged)
    return page.text(), page.missing


def spec_files(repo: Path) -> list[Path]:
    return sorted((repo / "models").glob(f"*/{SPEC_FILE}"))


def render(repo: Path) -> dict[Path, str]:
    schema = json_schema()
    text, _ = reference_text(schema, examples_from(spec_files(repo)))
    return {SCHEMA_FILE: schema_text(), REFERENCE_FILE: text}


def stale(repo: Path) -> list[str]:
    return [
        f"{path}: stale, run `gateway spec docs`"
        for path, text in render(repo).items()
        if not (repo / path).is_file() or (repo / path).read_text() != text
    ]
