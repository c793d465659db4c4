"""The source: which versions are published, which the policy aspires, and what the labels say."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gateway.spec import GraphModelSpec, ModelSpec
from gateway.wire import model_config


@dataclass(frozen=True)
class Observed:
    """One look at the model directory and the model config file."""

    on_disk: dict[int, Path]
    aspired: list[int]
    labels: dict[str, int] = field(default_factory=dict)
    problem: str = ""  # why the labels could not be read ("" when they could, or no file is configured)


def scan_versions(base: Path) -> dict[int, Path]:
    """Numeric version directories under ``base`` (staging and hidden directories are not versions)."""
    try:
        entries = list(os.scandir(base))
    except OSError:
        return {}
    return {int(e.name): Path(e.path) for e in entries if e.is_dir() and e.name.isdigit()}


def config_name(spec: ModelSpec) -> str:
    """The model's name in the model config file: the graph's model name, else the spec's."""
    return spec.graph.model_name if isinstance(spec, GraphModelSpec) else spec.name


class VersionSource:
    """Reads ``models/<name>/`` and the model config file (labels) on every poll."""

    def __init__(
        self, spec: ModelSpec, base: Path, config_file: Path | None, only: int | None = None
    ) -> None:
        self.spec = spec
        self.base = base
        self.config_file = config_file
        self.only = only  # a pinned version (settings.version): the policy is just this one
        self._labels: dict[str, int] = {}

    def read(self) -> Observed:
        on_disk = scan_versions(self.base)
        if self.only is not None:
            aspired = [self.only] if self.only in on_disk else []
        else:
            aspired = self.spec.versions.aspired(sorted(on_disk))
        labels, problem = self._read_labels()
        return Observed(on_disk, aspired, labels, problem)

    def _read_labels(self) -> tuple[dict[str, int], str]:
        if self.config_file is None:
            return {}, ""
        try:
            entries = model_config.entries(model_config.read(self.config_file))
        except model_config.ModelConfigError as e:
            # As TF-Serving does with a config it cannot read: keep what was in force.
            return dict(self._labels), str(e)
        entry = entries.get(config_name(self.spec))
        if entry is None:
            return dict(self._labels), f"{self.config_file}: no model {config_name(self.spec)!r}"
        self._labels = entry.labels
        return dict(entry.labels), ""
