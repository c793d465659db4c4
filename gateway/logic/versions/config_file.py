"""The model config file a model's tiers share, written from the spec (labels kept across rewrites)."""

from __future__ import annotations

from pathlib import Path

from gateway.logic.versions.source import config_name
from gateway.spec import ModelSpec, SpecificPolicy
from gateway.spec.versions import LatestPolicy
from gateway.wire import model_config


def graph_entry(spec: ModelSpec, base_path: str, labels: dict[str, int]) -> model_config.ModelEntry:
    """The model's entry for the graph: the spec's policy (one version more for ``latest``), these labels."""
    policy = spec.versions.graph_policy()
    entry = model_config.ModelEntry(name=config_name(spec), base_path=base_path, labels=dict(labels))
    if policy == "all":
        entry.policy = "all"
    elif isinstance(policy, SpecificPolicy):
        entry.policy, entry.versions = "specific", list(policy.specific)
    elif isinstance(policy, LatestPolicy):
        entry.policy, entry.num_versions = "latest", policy.latest
    return entry


def ensure(path: Path, spec: ModelSpec, base_path: str) -> model_config.ModelEntry:
    """Write the model's config file from its spec, keeping the labels an existing file has."""
    labels: dict[str, int] = {}
    if path.exists():
        old = model_config.entries(model_config.read(path)).get(config_name(spec))
        labels = old.labels if old is not None else {}
    entry = graph_entry(spec, base_path, labels)
    if not path.exists() or model_config.read(path) != model_config.parse_text(model_config.render([entry])):
        model_config.write(path, [entry])
    return entry
