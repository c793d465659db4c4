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

from gateway.acceptance import heldout
from gateway.errors import ArtifactError, ConfigError
from gateway.saver.graph import GraphPayload, copy_saved_model, graph_inputs, signature_problems
from gateway.saver.inspect import serving_signatures
from gateway.saver.package import Sample, check_transformer_pickle, package, pickle_environment
from gateway.saver.recipe import LABEL
from gateway.spec import GraphModelSpec, load_spec
from gateway.transformer.stage import dense

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


def check_columns(spec: GraphModelSpec, fitted: Any, spec_path: Path, transformer: Path) -> None:
    """The spec's transformer columns against the columns the fitted transformer was fitted on."""
    fitted_on = [str(c) for c in getattr(fitted, "feature_names_in_", [])]
    if not fitted_on:
        return  # fitted on an array: it knows no column names
    columns = list(spec.transformer.columns)
    unknown = [c for c in columns if c not in fitted_on]
    if unknown:
        raise ConfigError(
            f"{spec_path}: transformer.columns: {unknown} are not columns {transformer} was fitted on "
            f"(it takes {fitted_on})"
        )
    # Columns it was fitted on but the spec leaves out are not checked here: a ColumnTransformer
    # fitted on a wide frame may use only some of them. If it needs one, the sample transform in
    # build_sample fails and names it.


def build_sample(
    spec: GraphModelSpec, fitted: Any, frame: pd.DataFrame, transformer: str = "the transformer"
) -> Sample:
    """Transform sample rows and collect the vector inputs, naming any column the spec needs but lacks."""
    from gateway.featurestore.table import vector_matrix

    columns = list(spec.transformer.columns)
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ConfigError(f"{frame.attrs.get('source')}: sample rows lack transformer columns {absent}")
    try:
        out = fitted.transform(frame[columns])
    except Exception as e:
        raise ArtifactError(
            f"{transformer} failed on the sample rows of {frame.attrs.get('source')}: {type(e).__name__}: {e}"
        ) from e
    matrix = np.asarray(dense(out, transformer), dtype=np.float32)
    vectors = {name: vector_matrix(frame, spec.view(name)) for name in spec.graph.views}
    labels = frame[LABEL].to_numpy(np.float64) if LABEL in frame.columns else None
    rows = heldout.served_rows(spec, frame, vectors)
    return Sample(frame[columns], graph_inputs(spec, matrix, vectors), labels, rows)


def width_problems(spec: GraphModelSpec, signatures: dict[str, Any], sample: Sample) -> list[str]:
    """Where the SavedModel's input widths differ from what the transformer and the views produce."""
    sig = signatures[spec.graph.signature]["inputs"]
    problems = []
    for alias, values in sample.inputs.items():
        shape = sig[alias]["shape"]
        if shape is not None and len(shape) == 2 and shape[1] not in (-1, values.shape[1]):
            src = spec.graph.inputs[alias]
            made = "the transformer outputs" if src.transformed else f"vector view {src.view!r} holds"
            problems.append(f"input {alias!r} takes {shape[1]} columns; {made} {values.shape[1]}")
    return problems


def export_version(
    name: str,
    models_root: Path,
    saved_model: Path,
    transformer: Path,
    sample_path: Path,
    *,
    version: int | None = None,
    allow_drift: tuple[str, ...] = (),
) -> tuple[int, Path]:
    """Turn a SavedModel directory + transformer pickle + sample rows into a published version.

    Every refusal names the file that is wrong: the spec, the SavedModel, the pickle or the sample.
    """
    spec_path = models_root / name / "model.yaml"
    spec = load_spec(spec_path)
    if not isinstance(spec, GraphModelSpec):
        raise ConfigError(
            f"model {name!r} is backend {spec.backend}: export takes a SavedModel (backend tensorflow)"
        )
    signatures = serving_signatures(saved_model)
    problems = signature_problems(spec, signatures, {})
    if problems:
        raise ArtifactError(f"{saved_model}: does not match {spec_path}: " + "; ".join(problems))
    data = transformer.read_bytes()
    pickle_environment(data, str(transformer), allow_drift)
    fitted = check_transformer_pickle(data)
    check_columns(spec, fitted, spec_path, transformer)
    sample = build_sample(spec, fitted, read_sample(sample_path), str(transformer))
    widths = width_problems(spec, signatures, sample)
    if widths:
        raise ArtifactError(f"{saved_model} does not take what {transformer} makes: " + "; ".join(widths))
    fields = {
        "source": "export",
        "exported_from": {"saved_model": str(saved_model), "sample": str(sample_path)},
    }
    payload = GraphPayload(spec, copy_saved_model(saved_model, skip={spec.transformer.file}))
    version_no, path, _ = package(
        spec, models_root / name, payload, data, sample, fields, version=version, allow_drift=allow_drift
    )
    log.info("model %s: exported version %d from %s", name, version_no, saved_model)
    return version_no, path
