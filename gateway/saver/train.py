"""Train, export and publish one model version from its recipe.

The one place on the saver side that imports TensorFlow. The graph inputs are
built from the spec exactly as the logic service builds them at serving time
(``transformed`` = the fitted transformer's output; ``view:<name>`` = a stored
vector), so offline and online inputs cannot drift apart.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from gateway.saver import publish, stats
from gateway.saver.recipe import LABEL, Dataset, load_recipe
from gateway.spec import ModelSpec, load_spec

log = logging.getLogger("gateway.saver")
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
DEFAULT_SEED = 20261122


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def graph_inputs(spec: ModelSpec, matrix: np.ndarray[Any, Any], vectors: dict[str, Any]) -> dict[str, Any]:
    assert spec.graph is not None
    out: dict[str, Any] = {}
    for alias, source in spec.graph.inputs.items():
        out[alias] = (
            matrix if source == "transformed" else np.asarray(vectors[source.split(":", 1)[1]], np.float32)
        )
    return out


def split(n: int, seed: int, holdout: float = 0.2) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
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


def write_warmup(
    path: Path,
    spec: ModelSpec,
    inputs: dict[str, np.ndarray[Any, Any]],
    batches: tuple[int, ...] = (1, 8, 32),
) -> int:
    """Real PredictionLog records from held-out rows, so TF-Serving warms every batch shape."""
    tf = _tf()
    from gateway.protos import prediction_log_pb2
    from gateway.tensors import to_proto

    assert spec.graph is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with tf.io.TFRecordWriter(str(path)) as writer:
        for b in batches:
            log_rec = prediction_log_pb2.PredictionLog()
            req = log_rec.predict_log.request
            req.model_spec.name = spec.graph.model_name
            req.model_spec.signature_name = spec.graph.signature
            for alias, arr in inputs.items():
                req.inputs[alias].CopyFrom(to_proto(arr[:b]))
            writer.write(log_rec.SerializeToString())
            n += 1
    return n


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


def train(
    name: str,
    models_root: Path,
    recipes_dir: Path | None = None,
    seed: int | None = None,
    version: int | None = None,
) -> tuple[int, Path]:
    """Train ``name`` from its recipe and publish a new version under ``models_root/name``."""
    t0 = time.perf_counter()
    _tf().config.experimental.enable_op_determinism()
    spec = load_spec(models_root / name / "model.yaml")
    recipe = load_recipe(name, recipes_dir)
    seed = seed if seed is not None else getattr(recipe, "SEED", DEFAULT_SEED)
    ds: Dataset = recipe.make_dataset(seed)
    columns = list(spec.transformer.columns)
    frame = ds.frame
    train_idx, hold_idx = split(len(frame), seed)
    transformer = recipe.fit_transformer(frame.iloc[train_idx][columns])
    matrix = np.asarray(transformer.transform(frame[columns]), dtype=np.float32)
    inputs = graph_inputs(spec, matrix, ds.vectors)
    y = frame[LABEL].to_numpy(np.float32)
    model = fit_network(recipe, {a: v[train_idx] for a, v in inputs.items()}, y[train_idx], seed)
    hold_inputs = {a: v[hold_idx] for a, v in inputs.items()}
    x_hold = next(iter(hold_inputs.values())) if len(hold_inputs) == 1 else hold_inputs
    p_hold = np.asarray(model.predict(x_hold, verbose=0, batch_size=4096)).reshape(-1)
    metrics = stats.classification_metrics(y[hold_idx], p_hold)
    log.info("model %s: holdout %s", name, metrics)

    base = models_root / name
    staging = publish.staging_dir(base)
    export_saved_model(model, spec, {a: v.shape[1] for a, v in inputs.items()}, staging)
    with (staging / spec.transformer.file).open("wb") as f:
        pickle.dump(transformer, f, protocol=5)
    n_warm = write_warmup(staging / WARMUP_FILE, spec, hold_inputs)
    assert spec.graph is not None
    publish.write_manifest(
        staging,
        {
            "model": name,
            "signature": spec.graph.signature,
            "graph_inputs": {a: [None, int(v.shape[1])] for a, v in inputs.items()},
            "graph_output": spec.graph.output,
            "features": stats.feature_dtypes(frame[columns]),
            "training": {
                "seed": seed,
                "metrics": metrics,
                "config": dict(recipe.TRAINING),
                "rows": {"train": len(train_idx), "holdout": len(hold_idx)},
                "seconds": round(time.perf_counter() - t0, 2),
                "warmup_records": n_warm,
            },
            "baseline": {
                "score": stats.score_distribution(p_hold),
                "features": stats.feature_distribution(frame.iloc[hold_idx][columns]),
            },
        },
    )
    published = publish.publish(staging, base, version)
    write_demo_entities(base, ds)
    log.info("model %s: published version %d in %.1fs", name, published[0], time.perf_counter() - t0)
    return published


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
