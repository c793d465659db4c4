"""The contract between the generic saver and a model's fit code in ``transformers/<name>.py``.

A recipe is a module; what it must define is written down as the ``Recipe`` protocols
below (a module satisfies a protocol structurally), and :func:`load_recipe` checks it
at load time, naming what is missing. Every recipe defines ``make_dataset`` and
``fit_transformer``; a ``backend: tensorflow`` model's recipe also ``build_network`` and
``TRAINING``, a ``backend: sklearn`` model's ``build_estimator``.

The recipe lives outside the installed package on purpose: pickles must only
reference importable classes (sklearn, ``gateway.transformer.classes``), never a
script's module.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

from gateway.errors import ConfigError

LABEL = "label"


@dataclass
class Dataset:
    frame: Any  # pandas.DataFrame: transformer columns + LABEL (+ entity id columns)
    vectors: dict[str, Any] = field(default_factory=dict)  # view name -> (n, dim) float32
    entities: dict[str, Any] = field(default_factory=dict)  # entity -> DataFrame ("id" + view columns)


class Recipe(Protocol):
    """What every recipe defines."""

    def make_dataset(self, seed: int) -> Dataset:
        """Deterministic training data: one row per scored example with every column the
        serving transformer sees (request fields and stored features), ``LABEL``, the vectors
        the graph takes straight from feature views, and the entity tables that
        ``features load`` puts into Redis."""
        ...

    def fit_transformer(self, frame: Any) -> Any:
        """A fitted scikit-learn transformer (classes from sklearn or ``gateway.transformer.classes``)."""
        ...


class NetworkRecipe(Recipe, Protocol):
    """A ``backend: tensorflow`` model's recipe."""

    TRAINING: dict[str, Any]  # epochs, batch_size, learning_rate

    def build_network(self, input_dims: dict[str, int]) -> Any:
        """A compiled-to-be Keras model with one named input per graph input of the spec."""
        ...


class EstimatorRecipe(Recipe, Protocol):
    """A ``backend: sklearn`` model's recipe."""

    def build_estimator(self) -> Any:
        """An unfitted scikit-learn estimator, served in-process instead of a graph."""
        ...


_REQUIRED: dict[str, tuple[str, ...]] = {
    "any": ("make_dataset", "fit_transformer"),
    "tensorflow": ("make_dataset", "fit_transformer", "build_network", "TRAINING"),
    "sklearn": ("make_dataset", "fit_transformer", "build_estimator"),
}


def default_recipes_dir() -> Path:
    """``transformers/`` of the source checkout this package was installed from, else of the cwd."""
    here = Path(__file__).resolve().parents[2] / "transformers"
    return here if here.is_dir() else Path.cwd() / "transformers"


def recipe_path(name: str, recipes_dir: Path | None = None) -> Path:
    return (recipes_dir or default_recipes_dir()) / f"{name}.py"


def load_recipe(name: str, recipes_dir: Path | None = None, backend: str = "any") -> ModuleType:
    """Import ``<recipes_dir>/<name>.py``, checking it defines what ``backend`` needs."""
    path = recipe_path(name, recipes_dir)
    if not path.is_file():
        raise ConfigError(f"{path}: no fit code for model {name!r}")
    mod_name = f"_gateway_recipe_{name}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    missing = [attr for attr in _REQUIRED[backend] if not hasattr(module, attr)]
    if missing:
        need = "" if backend == "any" else f" (backend: {backend})"
        raise ConfigError(f"{path}: recipe must define {', '.join(missing)}{need}")
    return module


def network_recipe(module: ModuleType) -> NetworkRecipe:
    return cast(NetworkRecipe, module)


def estimator_recipe(module: ModuleType) -> EstimatorRecipe:
    return cast(EstimatorRecipe, module)
