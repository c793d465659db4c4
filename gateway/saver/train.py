"""Train a model from its recipe and publish it as a new version.

One path for both backends: the recipe's data is split (the same split for every run
with a seed), its transformer fitted on the training rows, then either a network
(``backend: tensorflow``, exported as a SavedModel) or an estimator (``backend:
sklearn``) is fitted on the transformed rows, and :func:`gateway.saver.package.package`
checks and publishes the version with the held-out rows as its sample.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from gateway.acceptance import heldout
from gateway.saver import stats
from gateway.saver.estimator import EstimatorPayload, estimator_scores
from gateway.saver.graph import GraphPayload, graph_inputs
from gateway.saver.package import ESTIMATOR_INPUT, Payload, Sample, package
from gateway.saver.recipe import LABEL, Dataset, NetworkRecipe, estimator_recipe, load_recipe, network_recipe
from gateway.spec import GraphModelSpec, SklearnModelSpec, load_spec
from gateway.transformer.stage import dense

log = logging.getLogger("gateway.saver")
DEFAULT_SEED = 20261122
Array = np.ndarray[Any, Any]


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def split(n: int, seed: int, holdout: float = 0.2) -> tuple[Array, Array]:
    """Train and held-out row indices (sorted), the same for every run with ``seed``."""
    order = np.random.default_rng(seed + 1).permutation(n)
    cut = int(n * (1 - holdout))
    return np.sort(order[:cut]), np.sort(order[cut:])


def export_saved_model(model: Any, spec: GraphModelSpec, dims: dict[str, int], path: Path) -> None:
    """A SavedModel whose signature is the spec's name, inputs and output alias."""
    tf = _tf()
    import keras

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


def fit_network(recipe: NetworkRecipe, x_train: dict[str, Array], y_train: Array, seed: int) -> Any:
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


def predict(model: Any, inputs: dict[str, Array]) -> Array:
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
    module = load_recipe(spec.recipe or name, recipes_dir, spec.backend)
    seed = seed if seed is not None else getattr(module, "SEED", DEFAULT_SEED)
    ds: Dataset = module.make_dataset(seed)
    columns = list(spec.transformer.columns)
    train_idx, hold_idx = split(len(ds.frame), seed)
    transformer = module.fit_transformer(ds.frame.iloc[train_idx][columns])
    y = ds.frame[LABEL].to_numpy(np.float64)
    if isinstance(spec, GraphModelSpec):
        matrix = np.asarray(dense(transformer.transform(ds.frame[columns])), dtype=np.float32)
        inputs = graph_inputs(spec, matrix, ds.vectors)
        payload, expected, config = _network(
            spec, network_recipe(module), inputs, y, train_idx, hold_idx, seed
        )
    else:
        x = np.asarray(dense(transformer.transform(ds.frame[columns])), dtype=np.float64)
        inputs = {ESTIMATOR_INPUT: x}
        payload, expected, config = _estimator(spec, module, x, y, train_idx, hold_idx)
    hold = Sample(
        frame=ds.frame.iloc[hold_idx][columns],
        inputs={a: np.ascontiguousarray(v[hold_idx]) for a, v in inputs.items()},
        labels=y[hold_idx],
        rows=heldout.served_rows(
            spec, ds.frame.iloc[hold_idx], {v: np.asarray(m)[hold_idx] for v, m in ds.vectors.items()}
        ),
    )
    fields = {
        "source": "train",
        "training": {
            "seed": seed,
            "config": config,
            "rows": {"train": len(train_idx), "holdout": len(hold_idx)},
            "seconds": round(time.perf_counter() - t0, 2),
        },
    }
    published, path, scores = package(
        spec,
        models_root / name,
        payload,
        pickle.dumps(transformer, protocol=5),
        hold,
        fields,
        version=version,
        expected_scores=expected,
    )
    log.info("model %s: holdout %s", name, stats.classification_metrics(y[hold_idx], scores))
    write_demo_entities(models_root / name, ds)
    log.info("model %s: version %d trained and published in %.1fs", name, published, time.perf_counter() - t0)
    return published, path


def _network(
    spec: GraphModelSpec,
    recipe: NetworkRecipe,
    inputs: dict[str, Array],
    y: Array,
    train_idx: Array,
    hold_idx: Array,
    seed: int,
) -> tuple[Payload, Array, dict[str, Any]]:
    _tf().config.experimental.enable_op_determinism()
    model = fit_network(
        recipe, {a: v[train_idx] for a, v in inputs.items()}, y[train_idx].astype(np.float32), seed
    )
    dims = {a: int(v.shape[1]) for a, v in inputs.items()}
    payload = GraphPayload(spec, lambda dst: export_saved_model(model, spec, dims, dst))
    expected = predict(model, {a: np.ascontiguousarray(v[hold_idx]) for a, v in inputs.items()})
    return payload, expected, dict(recipe.TRAINING)


def _estimator(
    spec: SklearnModelSpec, module: Any, x: Array, y: Array, train_idx: Array, hold_idx: Array
) -> tuple[Payload, Array, dict[str, Any]]:
    estimator = estimator_recipe(module).build_estimator().fit(x[train_idx], y[train_idx])
    expected = estimator_scores(estimator, spec.estimator, x[hold_idx])
    params = {k: v for k, v in estimator.get_params().items() if isinstance(v, (int, float, str, bool))}
    return EstimatorPayload(spec, estimator), expected, {"estimator": type(estimator).__name__, **params}


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
