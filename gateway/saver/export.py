"""``gateway export``: a model trained elsewhere, handed over as a checked, published version.

A data scientist's SavedModel directory, fitted transformer pickle and a file of sample
rows (the transformer's columns, each vector view the graph takes, and optionally
``label``) become a verified version directory, exactly like one ``gateway train``
publishes (:func:`gateway.saver.package.package`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gateway.errors import ArtifactError, ConfigError
from gateway.saver.graph import GraphPayload, copy_saved_model, graph_inputs, signature_problems
from gateway.saver.inspect import serving_signatures
from gateway.saver.package import Sample, check_transformer_pickle, package
from gateway.saver.recipe import LABEL
from gateway.spec import GraphModelSpec, load_spec

log = logging.getLogger("gateway.saver")


def read_sample(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith(".parquet"):
        frame = pd.read_parquet(path)
    elif name.endswith((".csv", ".csv.gz")):
        frame = pd.read_csv(path)
    else:
        raise ConfigError(f"{path}: sample rows must be a .csv, .csv.gz or .parquet file")
    frame.attrs["source"] = str(path)
    return frame


def build_sample(spec: GraphModelSpec, fitted: Any, frame: pd.DataFrame) -> Sample:
    """Transform sample rows and collect the vector inputs, naming any column the spec needs but lacks."""
    from gateway.featurestore.table import vector_matrix

    columns = list(spec.transformer.columns)
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ConfigError(f"{frame.attrs.get('source')}: sample rows lack transformer columns {absent}")
    try:
        matrix = np.asarray(fitted.transform(frame[columns]), dtype=np.float32)
    except Exception as e:
        raise ArtifactError(f"transformer failed on the sample rows: {type(e).__name__}: {e}") from e
    vectors = {name: vector_matrix(frame, spec.view(name)) for name in spec.graph.views}
    labels = frame[LABEL].to_numpy(np.float64) if LABEL in frame.columns else None
    return Sample(frame[columns], graph_inputs(spec, matrix, vectors), labels)


def export_version(
    name: str,
    models_root: Path,
    saved_model: Path,
    transformer: Path,
    sample_path: Path,
    *,
    version: int | None = None,
) -> tuple[int, Path]:
    """Turn a SavedModel directory + transformer pickle + sample rows into a published version."""
    spec = load_spec(models_root / name / "model.yaml")
    if not isinstance(spec, GraphModelSpec):
        raise ConfigError(
            f"model {name!r} is backend {spec.backend}: export takes a SavedModel (backend tensorflow)"
        )
    problems = signature_problems(spec, serving_signatures(saved_model), {})
    if problems:
        raise ArtifactError(f"{saved_model}: does not match {name}'s spec: " + "; ".join(problems))
    data = transformer.read_bytes()
    sample = build_sample(spec, check_transformer_pickle(data), read_sample(sample_path))
    fields = {
        "source": "export",
        "exported_from": {"saved_model": str(saved_model), "sample": str(sample_path)},
    }
    payload = GraphPayload(spec, copy_saved_model(saved_model, skip={spec.transformer.file}))
    version_no, path, _ = package(spec, models_root / name, payload, data, sample, fields, version=version)
    log.info("model %s: exported version %d from %s", name, version_no, saved_model)
    return version_no, path
