"""The TensorFlow backend's part of a version: a SavedModel, its signature check, its warm-up records.

The graph inputs are built from the spec exactly as the logic service builds them at
serving time (``transformed`` = the fitted transformer's output; ``view:<name>`` = a
stored vector), so offline and online inputs cannot drift apart.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gateway import artifacts
from gateway.saver.inspect import serving_signatures
from gateway.saver.package import Sample
from gateway.spec import GraphModelSpec

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
WARMUP_BATCHES = (1, 8, 32)
# Files of a source SavedModel directory that packaging writes itself.
REGENERATED = {artifacts.MANIFEST, WARMUP_FILE}


def graph_inputs(
    spec: GraphModelSpec, matrix: np.ndarray[Any, Any], vectors: dict[str, Any]
) -> dict[str, np.ndarray[Any, Any]]:
    """The graph's inputs exactly as the logic service builds them."""
    return {
        alias: matrix if src.view is None else np.asarray(vectors[src.view], np.float32)
        for alias, src in spec.graph.inputs.items()
    }


def signature_problems(spec: GraphModelSpec, signatures: dict[str, Any], dims: dict[str, int]) -> list[str]:
    """How the SavedModel's serving signature disagrees with what the logic service will send."""
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


def run_graph(
    spec: GraphModelSpec, vdir: Path, inputs: dict[str, np.ndarray[Any, Any]]
) -> np.ndarray[Any, Any]:
    """Raw outputs for ``inputs`` from the SavedModel in ``vdir``, loaded as the graph service loads it."""
    from gateway.graph_server.servable import Servable

    servable = Servable(spec.graph.model_name, 0, vdir)
    try:
        _, out = servable.predict(spec.graph.signature, inputs, [spec.graph.output])
    finally:
        servable.close()
    rows = len(next(iter(inputs.values())))
    return np.asarray(out[spec.graph.output], dtype=np.float64).reshape(rows, -1)


def write_warmup(path: Path, spec: GraphModelSpec, inputs: dict[str, np.ndarray[Any, Any]]) -> int:
    """Real PredictionLog records from held-out rows, so TF-Serving warms every batch shape."""
    import tensorflow as tf

    from gateway.wire.protos import prediction_log_pb2
    from gateway.wire.tensors import to_proto

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


def copy_saved_model(source: Path, skip: set[str]) -> Callable[[Path], None]:
    """A writer copying a SavedModel directory, leaving out files packaging writes itself."""

    def copy(dst: Path) -> None:
        for src in sorted(source.rglob("*")):
            rel = src.relative_to(source).as_posix()
            if src.is_file() and rel not in REGENERATED and rel not in skip:
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst / rel)

    return copy


class GraphPayload:
    """A SavedModel written by ``write_graph``; scores are one output column (or the best class)."""

    def __init__(self, spec: GraphModelSpec, write_graph: Callable[[Path], None]) -> None:
        self.spec = spec
        self.write_graph = write_graph

    def write(self, staging: Path) -> None:
        self.write_graph(staging)

    def problems(self, staging: Path, sample: Sample) -> list[str]:
        dims = {a: int(v.shape[1]) for a, v in sample.inputs.items()}
        return signature_problems(self.spec, serving_signatures(staging), dims)

    def scores(self, staging: Path, sample: Sample) -> np.ndarray[Any, Any]:
        return run_graph(self.spec, staging, sample.inputs)

    def finish(self, staging: Path, sample: Sample) -> dict[str, Any]:
        records = write_warmup(staging / WARMUP_FILE, self.spec, sample.inputs)
        g = self.spec.graph
        return {
            "signature": g.signature,
            "graph_inputs": {a: [None, int(v.shape[1])] for a, v in sample.inputs.items()},
            "graph_output": g.output,
            "training": {"warmup_records": records},
        }
