"""Package and publish a model version: the hand-over step ``train`` and ``export`` share.

Packaging checks what the serving side will rely on before anything is published:

* the SavedModel has the spec's signature, input aliases, dtypes and widths and
  its output alias (read from ``saved_model.pb``, as ``gateway inspect`` shows it);
* the transformer pickle loads through the logic tier's restricted unpickler, so
  it references no class outside sklearn/numpy/scipy/pandas/``gateway``;
* the transformer compiles into ``transformer.compiled.npz`` and that file, loaded
  as a worker loads it, reproduces ``transform`` on the held-out rows
  (``gateway.transformer.verify``);
* the held-out rows run through the staged SavedModel the way the graph
  service runs it (a TF1 session over the MetaGraph), giving the baseline score
  distribution, the metrics, and the warmup records TF-Serving replays at load.

Then the manifest is written last and the directory renamed into place.

``gateway export`` is the path for a model trained elsewhere: a data
scientist's SavedModel directory, fitted transformer pickle and a file of
sample rows (the transformer's columns, each vector view the graph takes, and
optionally ``label``) become a verified version directory, exactly like one
``gateway train`` publishes.
"""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gateway import artifacts
from gateway.errors import ArtifactError, ConfigError
from gateway.saver import publish, stats
from gateway.saver.inspect import serving_signatures
from gateway.saver.recipe import LABEL
from gateway.spec import ModelSpec, load_spec
from gateway.transformer.verify import write_compiled

log = logging.getLogger("gateway.saver")
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
WARMUP_BATCHES = (1, 8, 32)
# Files of a source SavedModel directory that packaging writes itself.
_REGENERATED = {artifacts.MANIFEST, WARMUP_FILE}
# The exported graph must reproduce the in-memory model; float32 kernels may differ in the last bits.
EXPORT_TOLERANCE = 1e-4


@dataclass
class Sample:
    """Held-out rows: the transformer's input columns, the graph inputs built from them, labels if known."""

    frame: pd.DataFrame
    inputs: dict[str, np.ndarray[Any, Any]]
    labels: np.ndarray[Any, Any] | None = None


def graph_inputs(spec: ModelSpec, matrix: np.ndarray[Any, Any], vectors: dict[str, Any]) -> dict[str, Any]:
    """The graph's inputs exactly as the logic service builds them: ``transformed`` or ``view:<name>``."""
    assert spec.graph is not None
    out: dict[str, Any] = {}
    for alias, source in spec.graph.inputs.items():
        out[alias] = (
            matrix if source == "transformed" else np.asarray(vectors[source.split(":", 1)[1]], np.float32)
        )
    return out


def signature_problems(spec: ModelSpec, signatures: dict[str, Any], dims: dict[str, int]) -> list[str]:
    """How the SavedModel's serving signature disagrees with what the logic service will send."""
    assert spec.graph is not None
    g = spec.graph
    sig = signatures.get(g.signature)
    if sig is None:
        return [
            f"no signature {g.signature!r} (has {sorted(s for s in signatures if not s.startswith('__'))})"
        ]
    problems = []
    want, have = set(g.inputs), set(sig["inputs"])
    if want != have:
        problems.append(
            f"signature {g.signature!r} takes inputs {sorted(have)}; the spec sends {sorted(want)}"
        )
    for alias in sorted(want & have):
        t = sig["inputs"][alias]
        if t["dtype"] != "DT_FLOAT":
            problems.append(f"input {alias!r} is {t['dtype']}; the logic service sends DT_FLOAT")
        shape, width = t["shape"], dims.get(alias)
        if shape is not None and (len(shape) != 2 or (width is not None and shape[1] not in (-1, width))):
            problems.append(f"input {alias!r} has shape {shape}; the logic service sends [-1, {width}]")
    if g.output not in sig["outputs"]:
        problems.append(
            f"signature {g.signature!r} has no output {g.output!r} (has {sorted(sig['outputs'])})"
        )
    return problems


def check_transformer_pickle(data: bytes) -> Any:
    """Load the pickle the way the logic tier will (restricted unpickler); errors name the class."""
    try:
        return artifacts.safe_unpickle(io.BytesIO(data))
    except ArtifactError as e:
        raise ArtifactError(
            f"transformer pickle: {e}; classes a pickle references must live in the installed "
            "'gateway' package or sklearn/numpy/scipy/pandas"
        ) from e
    except Exception as e:
        raise ArtifactError(f"transformer pickle cannot be loaded: {type(e).__name__}: {e}") from e


def run_graph(spec: ModelSpec, vdir: Path, inputs: dict[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """Scores of ``inputs`` from the SavedModel in ``vdir``, loaded as the graph service loads it."""
    from gateway.graph_server.servable import Servable

    assert spec.graph is not None
    servable = Servable(spec.graph.model_name, 0, vdir)
    try:
        _, out = servable.predict(spec.graph.signature, inputs, [spec.graph.output])
    finally:
        servable.close()
    return np.asarray(out[spec.graph.output], dtype=np.float64).reshape(len(next(iter(inputs.values()))), -1)


def write_warmup(path: Path, spec: ModelSpec, inputs: dict[str, np.ndarray[Any, Any]]) -> int:
    """Real PredictionLog records from held-out rows, so TF-Serving warms every batch shape."""
    import tensorflow as tf

    from gateway.wire.protos import prediction_log_pb2
    from gateway.wire.tensors import to_proto

    assert spec.graph is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = len(next(iter(inputs.values())))
    sizes = sorted({min(b, rows) for b in WARMUP_BATCHES})
    with tf.io.TFRecordWriter(str(path)) as writer:
        for b in sizes:
            rec = prediction_log_pb2.PredictionLog()
            req = rec.predict_log.request
            req.model_spec.name = spec.graph.model_name
            req.model_spec.signature_name = spec.graph.signature
            for alias, arr in inputs.items():
                req.inputs[alias].CopyFrom(to_proto(np.ascontiguousarray(arr[:b])))
            writer.write(rec.SerializeToString())
    return len(sizes)


def package(
    spec: ModelSpec,
    base: Path,
    write_graph: Callable[[Path], None],
    transformer_pickle: bytes,
    sample: Sample,
    fields: dict[str, Any],
    *,
    version: int | None = None,
    expected_scores: np.ndarray[Any, Any] | None = None,
) -> tuple[int, Path, np.ndarray[Any, Any]]:
    """Stage, check, score the sample, write warmup and manifest, publish. Returns (version, dir, scores).

    ``expected_scores`` (the in-memory model's predictions on the sample) must be
    reproduced by the staged graph, or nothing is published.
    """
    assert spec.graph is not None
    fields = dict(fields)
    fitted = check_transformer_pickle(transformer_pickle)
    dims = {a: int(v.shape[1]) for a, v in sample.inputs.items()}
    staging = publish.staging_dir(base)
    try:
        write_graph(staging)
        problems = signature_problems(spec, serving_signatures(staging), dims)
        if problems:
            raise ArtifactError(f"SavedModel does not match {spec.name}'s spec: " + "; ".join(problems))
        (staging / spec.transformer.file).write_bytes(transformer_pickle)
        fields["compiled_transformer"] = write_compiled(staging, spec, fitted, sample.frame)
        scores = _staged_scores(spec, staging, sample, expected_scores)
        n_warm = write_warmup(staging / WARMUP_FILE, spec, sample.inputs)
        metrics = stats.classification_metrics(sample.labels, scores) if sample.labels is not None else {}
        training = {**fields.pop("training", {}), "metrics": metrics, "warmup_records": n_warm}
        publish.write_manifest(
            staging,
            {
                **_describe(spec, fitted, sample, dims),
                **fields,
                "training": training,
                "baseline": {
                    "score": stats.score_distribution(scores),
                    "features": stats.feature_distribution(sample.frame),
                },
            },
        )
        version_no, path = publish.publish(staging, base, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return version_no, path, scores


def _staged_scores(
    spec: ModelSpec, staging: Path, sample: Sample, expected: np.ndarray[Any, Any] | None
) -> np.ndarray[Any, Any]:
    """The sample's scores from the staged graph; they must reproduce ``expected`` if given."""
    raw = run_graph(spec, staging, sample.inputs)
    scores = raw[:, 0] if raw.shape[1] == 1 else raw.max(axis=1)
    if expected is not None:
        gap = float(np.max(np.abs(scores - expected)))
        if gap > EXPORT_TOLERANCE:
            raise ArtifactError(f"the exported graph differs from the trained model by up to {gap:.2e}")
    return scores


def _describe(spec: ModelSpec, fitted: Any, sample: Sample, dims: dict[str, int]) -> dict[str, Any]:
    assert spec.graph is not None
    return {
        "model": spec.name,
        "signature": spec.graph.signature,
        "graph_inputs": {a: [None, d] for a, d in dims.items()},
        "graph_output": spec.graph.output,
        "transformer": {
            "file": spec.transformer.file,
            "class": f"{type(fitted).__module__}.{type(fitted).__qualname__}",
            "columns": list(spec.transformer.columns),
            "output_dim": dims.get(
                next((a for a, s in spec.graph.inputs.items() if s == "transformed"), ""), 0
            ),
        },
        "features": stats.feature_dtypes(sample.frame),
        "feature_views": [
            {"name": v.name, "entity": v.entity, "kind": v.kind, "dim": v.dim}
            | ({"fields": {f: h.dtype for f, h in v.fields.items()}} if v.kind == "hash" else {})
            for v in spec.feature_views
        ],
    }


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


def build_sample(spec: ModelSpec, fitted: Any, frame: pd.DataFrame) -> Sample:
    """Transform sample rows and collect the vector inputs, naming any column the spec needs but lacks."""
    from gateway.featurestore.table import vector_matrix

    assert spec.graph is not None
    columns = list(spec.transformer.columns)
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ConfigError(f"{frame.attrs.get('source')}: sample rows lack transformer columns {absent}")
    try:
        matrix = np.asarray(fitted.transform(frame[columns]), dtype=np.float32)
    except Exception as e:
        raise ArtifactError(f"transformer failed on the sample rows: {type(e).__name__}: {e}") from e
    vectors = {
        name: vector_matrix(frame, spec.view(name))
        for name in (s.split(":", 1)[1] for s in spec.graph.inputs.values() if s.startswith("view:"))
    }
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
    if spec.graph is None:
        raise ConfigError(f"model {name!r} has no graph block; nothing to export")
    problems = signature_problems(spec, serving_signatures(saved_model), {})
    if problems:
        raise ArtifactError(f"{saved_model}: does not match {name}'s spec: " + "; ".join(problems))
    data = transformer.read_bytes()
    sample = build_sample(spec, check_transformer_pickle(data), read_sample(sample_path))

    def copy_graph(dst: Path) -> None:
        for src in sorted(saved_model.rglob("*")):
            rel = src.relative_to(saved_model).as_posix()
            if src.is_file() and rel not in _REGENERATED and rel != spec.transformer.file:
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst / rel)

    fields = {
        "source": "export",
        "exported_from": {"saved_model": str(saved_model), "sample": str(sample_path)},
    }
    version_no, path, _ = package(spec, models_root / name, copy_graph, data, sample, fields, version=version)
    log.info("model %s: exported version %d from %s", name, version_no, saved_model)
    return version_no, path
