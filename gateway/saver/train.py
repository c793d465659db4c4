"""Train a model from its recipe and publish it as a new version.

The graph inputs are built from the spec exactly as the logic service builds
them at serving time (``transformed`` = the fitted transformer's output;
``view:<name>`` = a stored vector), so offline and online inputs cannot drift
apart. Packaging (checks, warmup records, manifest, atomic publish) is shared
with ``gateway export``; see ``gateway.saver.export``.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from gateway.errors import ConfigError
from gateway.saver import stats
from gateway.saver.export import Sample, graph_inputs, package
from gateway.saver.recipe import LABEL, Dataset, load_recipe
from gateway.spec import ModelSpec, load_spec

log = logging.getLogger("gateway.saver")
DEFAULT_SEED = 20261122


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def split(n: int, seed: int, holdout: float = 0.2) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Train and held-out row indices (sorted), the same for every run with ``seed``."""
    order = np.random.default_rng(seed + 1).permutation(n)
    cut = int(n * (1 - holdout))
    return np.sort(order[:cut]), np.sort(order[cut:])


def export_saved_model(model: Any, spec: ModelSpec, dims: dict[str, int], path: Path) -> None:
    """A SavedModel whose signature is the spec's name, inputs and output alias."""
    tf = _tf()
    import keras

    assert spec.graph is not None
    aliases = list(spec.graph.inputs)
    output = spec.graph.output
    tensor_specs = [tf.TensorSpec([None, dims[a]], tf.float32, name=a) for a in aliases]

    def serve(*tensors: Any) -> dict[str, Any]:
        x = tensors[0] if len(tensors) == 1 else dict(zip(aliases, tensors, strict=True))
        return {output: model(x, training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=spec.graph.signature, fn=serve, input_signature=tensor_specs)
    archive.write_out(str(path), verbose=False)


def fit_network(recipe: Any, x_train: dict[str, Any], y_train: Any, seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    cfg = recipe.TRAINING
    model = recipe.build_network({a: v.shape[1] for a, v in x_train.items()})
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.get("learning_rate", 1e-3)),
        loss="binary_crossentropy",
    )
    x = next(iter(x_train.values())) if len(x_train) == 1 else x_train
    model.fit(x, y_train, epochs=cfg["epochs"], batch_size=cfg["batch_size"], verbose=0, shuffle=True)
    return model


def predict(model: Any, inputs: dict[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """The in-memory Keras model's scores, which the exported graph has to reproduce."""
    x = next(iter(inputs.values())) if len(inputs) == 1 else inputs
    return np.asarray(model.predict(x, verbose=0, batch_size=4096)).reshape(-1)


def train(
    name: str,
    models_root: Path,
    recipes_dir: Path | None = None,
    seed: int | None = None,
    version: int | None = None,
) -> tuple[int, Path]:
    """Train ``name`` from its recipe and publish a new version under ``models_root/name``."""
    t0 = time.perf_counter()
    spec = load_spec(models_root / name / "model.yaml")
    recipe = load_recipe(spec.recipe or name, recipes_dir)
    seed = seed if seed is not None else getattr(recipe, "SEED", DEFAULT_SEED)
    ds: Dataset = recipe.make_dataset(seed)
    if spec.backend == "sklearn":
        from gateway.saver.train_estimator import train_estimator

        return train_estimator(spec, recipe, ds, models_root / name, seed, version)
    for attr in ("build_network", "TRAINING"):
        if not hasattr(recipe, attr):
            raise ConfigError(f"recipe for {name} must define {attr} (backend: tensorflow)")
    _tf().config.experimental.enable_op_determinism()
    columns = list(spec.transformer.columns)
    frame = ds.frame
    train_idx, hold_idx = split(len(frame), seed)
    transformer = recipe.fit_transformer(frame.iloc[train_idx][columns])
    matrix = np.asarray(transformer.transform(frame[columns]), dtype=np.float32)
    inputs = graph_inputs(spec, matrix, ds.vectors)
    y = frame[LABEL].to_numpy(np.float32)
    model = fit_network(recipe, {a: v[train_idx] for a, v in inputs.items()}, y[train_idx], seed)
    hold = Sample(
        frame=frame.iloc[hold_idx][columns],
        inputs={a: np.ascontiguousarray(v[hold_idx]) for a, v in inputs.items()},
        labels=y[hold_idx].astype(np.float64),
    )
    dims = {a: int(v.shape[1]) for a, v in inputs.items()}
    fields = {
        "source": "train",
        "training": {
            "seed": seed,
            "config": dict(recipe.TRAINING),
            "rows": {"train": len(train_idx), "holdout": len(hold_idx)},
            "seconds": round(time.perf_counter() - t0, 2),
        },
    }
    published, path, scores = package(
        spec,
        models_root / name,
        lambda dst: export_saved_model(model, spec, dims, dst),
        pickle.dumps(transformer, protocol=5),
        hold,
        fields,
        version=version,
        expected_scores=predict(model, hold.inputs),
    )
    log.info("model %s: holdout %s", name, stats.classification_metrics(y[hold_idx], scores))
    write_demo_entities(models_root / name, ds)
    log.info("model %s: published version %d in %.1fs", name, published, time.perf_counter() - t0)
    return published, path


def write_demo_entities(base: Path, ds: Dataset) -> list[Path]:
    """The recipe's entity tables, ready for ``gateway features load``."""
    demo = base / "demo"
    demo.mkdir(exist_ok=True)
    paths = []
    for entity, table in ds.entities.items():
        path = demo / f"{entity}.parquet"
        tmp = path.with_suffix(".parquet.part")
        table.to_parquet(tmp, index=False)
        tmp.rename(path)
        paths.append(path)
    return paths
