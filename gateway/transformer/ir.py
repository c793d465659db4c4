"""A compiled program as a file of data: ``transformer.compiled.npz``.

The file is a zip archive in numpy's ``.npz`` layout: ``program.json``, the header (format
version, input columns, and per block its name, columns, weight and either its step tree
of kinds and parameters or the reason it falls back to scikit-learn), and one ``.npy``
member per array the header names. Why this shape: arrays keep their exact dtype, shape
and bytes with no text round trip (a float parameter is the same 64 bits after loading,
so results stay bit-identical), everything else stays readable JSON (``unzip -p FILE
program.json``), and it is one file, so the manifest's single sha256 vouches for all of
it. Members are written in a fixed order with fixed timestamps: compiling the same fitted
transformer twice gives the same bytes.

Loading is data only: JSON, and ``numpy.lib.format.read_array(..., allow_pickle=False)``
for each array (object arrays are never stored as arrays). It imports neither
scikit-learn nor pandas nor scipy. Without a fitted transformer, a loaded program has no
reference path: only a fully compiled program loads that way.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from gateway.errors import ArtifactError
from gateway.transformer.base import Unsupported
from gateway.transformer.codec import Malformed, Reader, Writer
from gateway.transformer.columns import Array
from gateway.transformer.combine import Chain, Columns
from gateway.transformer.cyclical import Cyclical
from gateway.transformer.encoders import OneHot, Ordinal
from gateway.transformer.numeric import Apply, Impute, MinMax, Standardize
from gateway.transformer.program import Block, Program

FORMAT = "gateway.compiled-transformer"
FORMAT_VERSION = 1
HEADER = "program.json"
FILE = "transformer.compiled.npz"  # its name in a version directory
MANIFEST_KEY = "compiled_transformer"  # the manifest's record of it (see gateway.transformer.verify)
KINDS: dict[str, Any] = {
    cls.kind: cls for cls in (Standardize, MinMax, Apply, Impute, OneHot, Ordinal, Cyclical, Chain, Columns)
}
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest zip timestamp: fixed, so the bytes are reproducible


def describe(program: Program) -> tuple[dict[str, Any], dict[str, Array]]:
    """The program as (JSON header, arrays by name); a step that cannot be stored becomes a fallback."""
    w = Writer()
    blocks = [_block_ir(b, w) for b in program.blocks]
    report = list(program.report) + [
        f"block {d['name']!r} runs scikit-learn: {d['fallback']}"
        for d, b in zip(blocks, program.blocks, strict=True)
        if "fallback" in d and b.op is not None
    ]
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "columns": list(program.columns),
        "stacked": program.stacked,
        "complete": all("step" in d for d in blocks),
        "report": report,
        "blocks": blocks,
    }
    return header, w.arrays


def _block_ir(b: Block, w: Writer) -> dict[str, Any]:
    columns = b.columns if isinstance(b.columns, str) else [str(c) for c in b.columns]
    d = {"name": b.name, "columns": columns, "weight": w.value(b.weight), "sparse": b.sparse}
    if b.op is None:
        return {**d, "fallback": b.reason}
    mark = len(w.arrays)
    try:
        return {**d, "step": w.op(b.op)}
    except Unsupported as e:
        for name in list(w.arrays)[mark:]:
            del w.arrays[name]
        return {**d, "fallback": f"its compiled form cannot be stored: {e}"}


def save_program(program: Program, path: Path) -> dict[str, Any]:
    """Write ``program`` to ``path`` (reproducible bytes); returns the header written."""
    header, arrays = describe(program)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(_member(HEADER), json.dumps(header, indent=1, sort_keys=True, allow_nan=False) + "\n")
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            z.writestr(_member(f"{name}.npy"), buf.getvalue())
    return header


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def load_program(path: Path, fitted: Any = None) -> Program:
    """Build the program stored at ``path``, with numpy only.

    ``fitted`` (the transformer the program was compiled from) gives every block its
    estimator back: fallback blocks run it, compiled blocks defer odd inputs to it.
    Without it the file must hold a fully compiled program.
    """
    header, arrays = _read(path)
    try:
        if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
            raise Malformed(f"format {header.get('format')!r} version {header.get('version')!r} is not ours")
        estimators = None
        if fitted is not None:
            from gateway.transformer.compiler import block_estimators  # fitted: sklearn is loaded

            estimators = block_estimators(fitted, bool(header["stacked"]))
        reader = Reader(arrays, KINDS)
        blocks = [_load_block(d, reader, estimators) for d in Reader.listed(header, "blocks")]
        columns, report = reader.names(header, "columns"), reader.names(header, "report")
        return Program(columns, blocks, report, stacked=bool(header["stacked"]), fitted=fitted)
    except (Malformed, KeyError, TypeError, ValueError, IndexError) as e:
        raise ArtifactError(f"{path}: not a usable compiled transformer: {type(e).__name__}: {e}") from e


def _read(path: Path) -> tuple[dict[str, Any], dict[str, Array]]:
    try:
        with zipfile.ZipFile(path) as z:
            header = json.loads(z.read(HEADER))
            arrays = {}
            for name in z.namelist():
                if name.endswith(".npy"):
                    with z.open(name) as f:
                        arrays[name.removesuffix(".npy")] = np.lib.format.read_array(f, allow_pickle=False)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise ArtifactError(f"{path}: unreadable compiled transformer: {type(e).__name__}: {e}") from e
    if not isinstance(header, dict):
        raise ArtifactError(f"{path}: {HEADER} is not a JSON object")
    return header, arrays


def _load_block(d: dict[str, Any], r: Reader, estimators: dict[str, Any] | None) -> Block:
    name, columns = d["name"], d["columns"]
    if not isinstance(columns, str):
        columns = r.names(d, "columns")
    est = None
    if estimators is not None:
        if name not in estimators:
            raise Malformed(f"block {name!r} is not a block of the fitted transformer")
        est = estimators[name]
    weight = r.value(d["weight"])
    if "step" in d:
        return Block(name, columns, weight, r.op(d["step"]), est=est, sparse=bool(d["sparse"]))
    if est is None:
        raise Malformed(
            f"block {name!r} runs scikit-learn ({d.get('fallback')}): it needs the fitted transformer"
        )
    return Block(name, columns, weight, None, est=est, sparse=bool(d["sparse"]), reason=str(d["fallback"]))
