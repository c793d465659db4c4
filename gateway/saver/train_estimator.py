"""``backend: sklearn`` models: fit the transformer and an in-process estimator, publish both.

No graph, no TensorFlow: the version directory holds ``transformer.pkl``, its
compiled form (``transformer.compiled.npz``, verified on the held-out rows), the
estimator's pickle (``model.pkl`` by default) and the manifest vouching for all
of them, published atomically like every other version.
"""

from __future__ import annotations

import logging
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from gateway.errors import ConfigError
from gateway.saver import publish, stats
from gateway.saver.export import check_transformer_pickle
from gateway.saver.recipe import LABEL, Dataset
from gateway.spec import EstimatorSpec, ModelSpec
from gateway.transformer.verify import write_compiled

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
    holdout = frame.iloc[hold_idx][columns]
    fields = {
        "model": spec.name,
        "backend": "sklearn",
        "source": "train",
        "estimator": {"class": type(estimator).__name__, "file": est_spec.file, "method": est_spec.method},
        "features": stats.feature_dtypes(frame[columns]),
        "training": {
            "seed": seed,
            "metrics": stats.classification_metrics(y[hold_idx], scores),
            "rows": {"train": len(train_idx), "holdout": len(hold_idx)},
            "seconds": round(time.perf_counter() - t0, 2),
        },
        "baseline": {
            "score": stats.score_distribution(scores),
            "features": stats.feature_distribution(holdout),
        },
    }
    files = {
        spec.transformer.file: pickle.dumps(transformer, protocol=5),
        est_spec.file: pickle.dumps(estimator, protocol=5),
    }
    published = _publish(spec, base, version, files, holdout, fields)
    write_demo_entities(base, ds)
    log.info(
        "model %s: published sklearn version %d in %.1fs", spec.name, published[0], time.perf_counter() - t0
    )
    return published


def _publish(
    spec: ModelSpec,
    base: Path,
    version: int | None,
    files: dict[str, bytes],
    holdout: Any,
    fields: dict[str, Any],
) -> tuple[int, Path]:
    """Stage the pickles and the compiled transformer (verified on ``holdout``), the manifest last; publish."""
    # Compiled from the pickle as the logic tier's restricted unpickler loads it.
    fitted = check_transformer_pickle(files[spec.transformer.file])
    staging = publish.staging_dir(base)
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        compiled = write_compiled(staging, spec, fitted, holdout)
        publish.write_manifest(staging, {**fields, "compiled_transformer": compiled})
        return publish.publish(staging, base, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
