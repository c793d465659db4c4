"""The contract between the generic saver and a model's fit code in ``transformers/<name>.py``.

A recipe module defines:

``make_dataset(seed: int) -> Dataset``
    deterministic training data: one row per scored example, with every column
    the serving transformer sees (request fields and stored features), the
    label, the vectors the graph takes straight from feature views, and the
    entity tables that ``features load`` puts into Redis.
``fit_transformer(frame: pandas.DataFrame) -> transformer``
    a fitted scikit-learn transformer (classes from sklearn or ``gateway``).
``build_network(input_dims: dict[str, int]) -> keras.Model``
    the network, with one named input per graph input of the spec.
``build_estimator() -> sklearn estimator`` (only for ``backend: sklearn``)
    an unfitted estimator served in-process instead of a graph.
``TRAINING: dict``
    ``epochs``, ``batch_size``, ``learning_rate``.

The recipe lives outside the installed package on purpose: pickles must only
reference importable classes (sklearn, ``gateway.*``), never a script's module.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from gateway.errors import ConfigError

LABEL = "label"


@dataclass
class Dataset:
    frame: Any  # pandas.DataFrame: transformer columns + LABEL (+ entity id columns)
    vectors: dict[str, Any] = field(default_factory=dict)  # view name -> (n, dim) float32
    entities: dict[str, Any] = field(default_factory=dict)  # entity -> DataFrame ("id" + view columns)


def default_recipes_dir() -> Path:
    """``transformers/`` of the source checkout this package was installed from, else of the cwd."""
    here = Path(__file__).resolve().parents[2] / "transformers"
    return here if here.is_dir() else Path.cwd() / "transformers"


def load_recipe(name: str, recipes_dir: Path | None = None) -> ModuleType:
    path = (recipes_dir or default_recipes_dir()) / f"{name}.py"
    if not path.is_file():
        raise ConfigError(f"{path}: no fit code for model {name!r}")
    mod_name = f"_gateway_recipe_{name}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    for attr in ("make_dataset", "fit_transformer"):
        if not hasattr(module, attr):
            raise ConfigError(f"{path}: recipe must define {attr}")
    return module
