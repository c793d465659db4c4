"""The compiled transformer a version ships beside its pickle, checked before it is published.

Packaging compiles the fitted transformer (``gateway.transformer``), writes the program
as data (``transformer.compiled.npz``, see ``gateway.transformer.ir``), loads that file
back through the loader the logic service uses, and checks that it reproduces
``transformer.transform`` on the version's held-out sample rows within 1e-9 (float64).
A fully compiled program is loaded on its own, exactly as a worker will load it; a program
with fallback blocks is loaded with the fitted transformer running those blocks (a worker
then unpickles ``transformer.pkl``). If the check fails, nothing is published.

A fully compiled program is then probed with requests shaped by the spec: every optional
field absent and every entity missing from the feature store (so each column holds what
the logic service fills in: a field's default, a view's declared default), and every
optional field given. Where a compiled block does not model such a request (an optional
field with no default feeds a step that needs numbers, a string field feeds a scaler,
...) a worker without the pickle would refuse those requests: the version is then
recorded as not servable from the compiled file alone, and workers load the pickle.

The manifest's ``compiled_transformer`` record says what a worker will find:
``{"file", "format", "complete", "fallbacks": [reasons], "verified": {"rows", "max_abs_diff"}}``;
``complete`` means the compiled file serves on its own. The file is written before the
manifest, so the manifest's sha256 covers it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gateway.errors import ArtifactError, ConfigError, GatewayError
from gateway.spec import FieldSpec, ModelSpec
from gateway.transformer import Program, UnknownCategory, UnsupportedValue, ir, load_program, save_program
from gateway.transformer.compiler import compile_transformer

log = logging.getLogger("gateway.saver")
TOLERANCE = 1e-9


def write_compiled(staging: Path, spec: ModelSpec, fitted: Any, rows: pd.DataFrame) -> dict[str, Any]:
    """Compile ``fitted``, write it into ``staging``, verify the file on ``rows``; the manifest record."""
    columns = list(spec.transformer.columns)
    program = compile_transformer(fitted, columns)
    path = staging / ir.FILE
    header = save_program(program, path)
    complete = bool(header["complete"])
    fallbacks = list(header["report"])
    loaded = load_program(path, fitted=None if complete else fitted)
    gap = verify(loaded, fitted, rows[columns])
    if complete:
        refused = probe(loaded, fitted, spec_requests(spec))
        if refused:
            log.warning("model %s: workers will load the pickle: %s", spec.name, refused)
            complete, fallbacks = False, [*fallbacks, refused]
    return {
        "file": ir.FILE,
        "format": ir.FORMAT_VERSION,
        "complete": complete,
        "fallbacks": fallbacks,
        "verified": {"rows": len(rows), "max_abs_diff": gap},
    }


def verify(program: Program, fitted: Any, frame: pd.DataFrame) -> float:
    """The largest |program - fitted.transform| over ``frame``; ArtifactError beyond ``TOLERANCE``."""
    if frame.empty:
        raise ArtifactError("no sample rows to verify the compiled transformer on")
    want = _dense(fitted.transform(frame))
    columns = {c: frame[c].tolist() for c in frame.columns}  # request-like Python values
    try:
        got = _dense(program(columns, len(frame)))
    except GatewayError as e:
        raise ArtifactError(f"the compiled transformer refuses the sample rows: {e.msg}") from e
    if got.shape != want.shape:
        raise ArtifactError(f"the compiled transformer gives shape {got.shape}; transform gives {want.shape}")
    with np.errstate(invalid="ignore", over="ignore"):
        same = (got == want) | (np.isnan(got) & np.isnan(want))
        diff = np.where(same, 0.0, np.abs(got - want))
    gap = float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))
    if gap > TOLERANCE:
        raise ArtifactError(
            f"the compiled transformer differs from transform by up to {gap:.3g} on the sample rows "
            f"(tolerance {TOLERANCE:g}); refusing to publish"
        )
    return gap


def _dense(out: Any) -> np.ndarray[Any, Any]:
    if hasattr(out, "toarray"):
        out = out.toarray()
    return np.asarray(out, dtype=np.float64)


def spec_requests(spec: ModelSpec) -> list[dict[str, list[Any]]]:
    """Transformer columns of two one-row requests the spec allows (see the module docstring)."""
    defaults = {n: h.default for v in spec.feature_views if v.kind == "hash" for n, h in v.fields.items()}
    absent = {f.name: _typical(f) if f.required else f.default for f in spec.request.fields}
    given = {f.name: _typical(f) for f in spec.request.fields}
    out = []
    for fields in (absent, given):
        row = {**defaults, **fields}
        unknown = [c for c in spec.transformer.columns if c not in row]
        if unknown:
            raise ConfigError(
                f"{spec.name}: transformer columns {unknown} are neither request fields nor features"
            )
        out.append({c: [row[c]] for c in spec.transformer.columns})
    return out


def _typical(f: FieldSpec) -> Any:
    """A valid value of the field's type (the validator's own conversions applied)."""
    if f.type == "string":
        return f.enum[0] if f.enum else "x"
    if f.type == "bool":
        return False
    bound = f.min if f.min is not None else f.max if f.max is not None else 1
    return float(bound) if f.type == "float" else int(bound)


def probe(program: Program, fitted: Any, requests: list[dict[str, list[Any]]]) -> str:
    """Why ``program`` alone cannot answer one of ``requests`` ("" when it answers them all).

    An answer must equal the reference's; a category the encoder refuses is an answer too.
    """
    for columns in requests:
        try:
            got = _dense(program(columns, 1))
        except UnknownCategory:
            continue
        except UnsupportedValue as e:
            return f"requests the spec allows need scikit-learn ({e.msg})"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. handle_unknown="warn" meeting the probe's category
                want = _dense(fitted.transform(pd.DataFrame(columns)))
        except Exception as e:
            raise ArtifactError(
                f"transform fails on {columns} where the compiled transformer answers: {e}"
            ) from e
        if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=TOLERANCE, equal_nan=True):
            raise ArtifactError(f"the compiled transformer differs from transform on the request {columns}")
    return ""
