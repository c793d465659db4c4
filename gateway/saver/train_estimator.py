"""``backend: sklearn`` models: fit the transformer and an in-process estimator, publish both.

No graph, no TensorFlow: the version directory holds ``transformer.pkl``, its
compiled form (``transformer.compiled.npz``, verified on the held-out rows), the
estimator's pickle (``model.pkl`` by default) and the manifest vouching for all
of them, published atomically like every other version.
"""

from __future__ import annotations

import logging
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from gateway.errors import ConfigError
from gateway.saver import publish, stats
from gateway.saver.compiled import write_compiled
from gateway.saver.export import check_transformer_pickle
from gateway.saver.recipe import LABEL, Dataset
from gateway.spec import EstimatorSpec, ModelSpec

log = logging.getLogger("gateway.saver")


def estimator_scores(est: Any, spec: EstimatorSpec, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The estimator's output as the logic service returns it (one float per row)."""
    out = np.asarray(getattr(est, spec.method)(x), dtype=np.float64)
    return out[:, spec.column] if out.ndim == 2 else out


def train_estimator(
    spec: ModelSpec, recipe: Any, ds: Dataset, base: Path, seed: int, version: int | None = None
) -> tuple[int, Path]:
    from gateway.saver.train import split, write_demo_entities

    t0 = time.perf_counter()
    if not hasattr(recipe, "build_estimator"):
        raise ConfigError(f"recipe for {spec.name} has no build_estimator() (needed by backend: sklearn)")
    est_spec = spec.estimator or EstimatorSpec()
    columns = list(spec.transformer.columns)
    frame = ds.frame
    train_idx, hold_idx = split(len(frame), seed)
    transformer = recipe.fit_transformer(frame.iloc[train_idx][columns])
    x = np.asarray(transformer.transform(frame[columns]), dtype=np.float64)
    y = frame[LABEL].to_numpy(np.float64)
    estimator = recipe.build_estimator().fit(x[train_idx], y[train_idx])
    scores = estimator_scores(estimator, est_spec, x[hold_idx])
    transformer_pickle = pickle.dumps(transformer, protocol=5)
    unpickled = check_transformer_pickle(transformer_pickle)  # as the logic tier's restricted unpickler does
    staging = publish.staging_dir(base)
    try:
        (staging / spec.transformer.file).write_bytes(transformer_pickle)
        compiled = write_compiled(staging, spec, unpickled, frame.iloc[hold_idx][columns])
        (staging / est_spec.file).write_bytes(pickle.dumps(estimator, protocol=5))
        publish.write_manifest(
            staging,
            {
                "model": spec.name,
                "backend": "sklearn",
                "source": "train",
                "estimator": {
                    "class": type(estimator).__name__,
                    "file": est_spec.file,
                    "method": est_spec.method,
                },
                "features": stats.feature_dtypes(frame[columns]),
                "compiled_transformer": compiled,
                "training": {
                    "seed": seed,
                    "metrics": stats.classification_metrics(y[hold_idx], scores),
                    "rows": {"train": len(train_idx), "holdout": len(hold_idx)},
                    "seconds": round(time.perf_counter() - t0, 2),
                },
                "baseline": {
                    "score": stats.score_distribution(scores),
                    "features": stats.feature_distribution(frame.iloc[hold_idx][columns]),
                },
            },
        )
        published = publish.publish(staging, base, version)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_demo_entities(base, ds)
    log.info(
        "model %s: published sklearn version %d in %.1fs", spec.name, published[0], time.perf_counter() - t0
    )
    return published
