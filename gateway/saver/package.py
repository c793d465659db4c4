"""Package and publish a model version: the one path ``train`` and ``export`` share, for every backend.

Packaging checks what the serving side will rely on before anything is published:

* the transformer pickle loads through the logic tier's restricted unpickler, so it
  references no class outside sklearn/numpy/scipy/pandas/``gateway.transformer.classes``;
* the model files (a SavedModel, or an estimator pickle) match the spec: signature,
  input aliases, dtypes and widths (:class:`Payload.problems`);
* the transformer compiles into ``transformer.compiled.npz`` and that file, loaded as a
  worker loads it, reproduces ``transform`` on the held-out rows (``gateway.transformer.verify``);
* the held-out rows run through the staged model the way the serving side runs it,
  reproducing the in-memory model when its scores are given; they give the baseline
  score distribution, the metrics, the light model the version's fallback runs
  (``gateway.saver.light``) and, for a graph, the warm-up records TF-Serving replays.

Then the manifest is written last and the directory renamed into place (``publish``).
What differs per backend is a :class:`Payload`; everything else is here, once.
"""

from __future__ import annotations

import io
import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from gateway import artifacts
from gateway.acceptance import heldout
from gateway.errors import ArtifactError
from gateway.saver import light, publish, stats
from gateway.spec import GraphModelSpec, ModelSpec
from gateway.transformer.verify import write_compiled

log = logging.getLogger("gateway.saver")
# The staged model must reproduce the in-memory one; float32 kernels may differ in the last bits.
REPRODUCE_TOLERANCE = 1e-4


@dataclass
class Sample:
    """Held-out rows: the transformer's input columns, the model inputs built from them, labels if known."""

    frame: pd.DataFrame
    inputs: dict[str, np.ndarray[Any, Any]]
    labels: np.ndarray[Any, Any] | None = None
    rows: pd.DataFrame | None = None  # the same rows as served (ids, request fields, features): heldout.py


class Payload(Protocol):
    """What a backend adds to a version: its model files, their checks and their scores."""

    def write(self, staging: Path) -> None:
        """Put the model files into the staging directory."""
        ...

    def problems(self, staging: Path, sample: Sample) -> list[str]:
        """How the staged model disagrees with what the logic service will send it (empty: it agrees)."""
        ...

    def scores(self, staging: Path, sample: Sample) -> np.ndarray[Any, Any]:
        """The staged model's raw output for the sample rows (one value, or one row of values, per
        row), run the way the serving side runs it."""
        ...

    def finish(self, staging: Path, sample: Sample) -> dict[str, Any]:
        """Last files (e.g. warm-up records) once the model is checked; manifest fields to add."""
        ...


def pickle_environment(data: bytes, what: str, allow_drift: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment a version records: this one, with the library versions the pickle says it
    was written with. A difference the serving side would refuse is refused here already, by the
    same rule (``artifacts.check_environment``), unless ``allow_drift`` names the library."""
    written = artifacts.pickled_versions(data)
    env = {**artifacts.environment(), **written}
    try:
        drift = artifacts.check_environment({"environment": env}, allow_drift)
    except ArtifactError:
        lib, ver = next((k, v) for k, v in written.items() if v != artifacts.library_version(k))
        have = artifacts.library_version(lib)
        raise ArtifactError(
            f"{what}: pickled with {lib} {ver}; this environment runs {lib} {have}, and {lib} does not "
            f"support unpickling across versions (it may fail, or transform differently). Re-pickle it "
            f"with {lib} {have}, or pass --allow-drift {lib} to record {ver} and serve it anyway (the "
            f"logic service then needs GATEWAY_ALLOW_DRIFT='[\"{lib}\"]' too)"
        ) from None
    if drift:
        log.warning("%s: exported despite library drift (allowed): %s", what, ", ".join(drift))
    return env


def check_transformer_pickle(data: bytes) -> Any:
    """Load the pickle the way the logic tier will (restricted unpickler); errors name the class.

    A version mismatch is :func:`pickle_environment`'s to report: scikit-learn's own warning
    about it is not repeated here."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Trying to unpickle estimator")
            return artifacts.safe_unpickle(io.BytesIO(data))
    except ArtifactError as e:
        raise ArtifactError(
            f"transformer pickle: {e}; classes a pickle references must live in "
            "gateway.transformer.classes or sklearn/numpy/scipy/pandas"
        ) from e
    except Exception as e:
        raise ArtifactError(f"transformer pickle cannot be loaded: {type(e).__name__}: {e}") from e


def package(
    spec: ModelSpec,
    base: Path,
    payload: Payload,
    transformer_pickle: bytes,
    sample: Sample,
    fields: dict[str, Any],
    *,
    version: int | None = None,
    expected_scores: np.ndarray[Any, Any] | None = None,
    allow_drift: tuple[str, ...] = (),
) -> tuple[int, Path, np.ndarray[Any, Any]]:
    """Stage, check, score the sample, write the manifest, publish. Returns (version, dir, scores).

    ``expected_scores`` (the in-memory model's predictions on the sample) must be
    reproduced by the staged model, or nothing is published.
    """
    environment = pickle_environment(transformer_pickle, spec.transformer.file, allow_drift)
    fitted = check_transformer_pickle(transformer_pickle)
    staging = publish.staging_dir(base)
    try:
        payload.write(staging)
        problems = payload.problems(staging, sample)
        if problems:
            raise ArtifactError(f"the model does not match {spec.name}'s spec: " + "; ".join(problems))
        (staging / spec.transformer.file).write_bytes(transformer_pickle)
        compiled = write_compiled(staging, spec, fitted, sample.frame)
        raw = payload.scores(staging, sample)
        scores = raw if raw.ndim == 1 else raw[:, 0] if raw.shape[1] == 1 else raw.max(axis=1)
        _check_reproduced(scores, expected_scores)
        fields = {
            **fields,
            "light_model": light.write(staging, sample.inputs[transformed_alias(spec)], raw, sample.labels),
        }
        if sample.rows is not None:
            fields["heldout"] = heldout.write(staging, spec, sample.rows)
        extra = payload.finish(staging, sample)
        metrics = stats.classification_metrics(sample.labels, scores) if sample.labels is not None else {}
        training = {**fields.pop("training", {}), "metrics": metrics, **extra.pop("training", {})}
        publish.write_manifest(
            staging,
            {
                **describe(spec, fitted, sample),
                **extra,
                **fields,
                "environment": environment,
                "compiled_transformer": compiled,
                "training": training,
                "baseline": {
                    "score": stats.score_distribution(scores),
                    "features": stats.feature_distribution(sample.frame),
                    "bins": stats.drift_bins(sample.frame, scores),
                },
            },
        )
        version_no, path = publish.publish(staging, base, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("model %s: published version %d at %s", spec.name, version_no, path)
    return version_no, path, scores


def _check_reproduced(scores: np.ndarray[Any, Any], expected: np.ndarray[Any, Any] | None) -> None:
    if expected is None:
        return
    gap = float(np.max(np.abs(scores - expected)))
    if gap > REPRODUCE_TOLERANCE:
        raise ArtifactError(f"the packaged model differs from the trained model by up to {gap:.2e}")


def describe(spec: ModelSpec, fitted: Any, sample: Sample) -> dict[str, Any]:
    """Manifest fields every version has: model, backend, transformer, features, feature views."""
    widths = {alias: int(v.shape[1]) for alias, v in sample.inputs.items()}
    return {
        "model": spec.name,
        "backend": spec.backend,
        "transformer": {
            "file": spec.transformer.file,
            "class": f"{type(fitted).__module__}.{type(fitted).__qualname__}",
            "columns": list(spec.transformer.columns),
            "output_dim": widths.get(transformed_alias(spec), 0),
        },
        "features": stats.feature_dtypes(sample.frame),
        "feature_views": [
            {"name": v.name, "entity": v.entity, "kind": v.kind, "dim": v.dim}
            | ({"fields": {f: h.dtype for f, h in v.fields.items()}} if v.kind == "hash" else {})
            for v in spec.feature_views
        ],
    }


ESTIMATOR_INPUT = "inputs"  # the one input of an in-process estimator: the transformed matrix


def transformed_alias(spec: ModelSpec) -> str:
    """The model input that takes the transformer's output."""
    if isinstance(spec, GraphModelSpec):
        return spec.graph.transformed_alias or ""
    return ESTIMATOR_INPUT
