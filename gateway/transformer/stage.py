"""The request path's transform stage: the model version's fitted feature transformer.

A published version carries its transformer twice: ``transformer.pkl`` (the fitted
scikit-learn object) and ``transformer.compiled.npz`` (that object compiled into numpy
operations and stored as data, see ``gateway.transformer``). ``load_transform`` builds
the request path from the compiled file when the manifest vouches for it (sha256; the
pickle's is checked too, so a damaged version never starts) and records it as serving
alone: nothing is unpickled, and scikit-learn, pandas and scipy are never imported. Otherwise (a version published before compiled files existed, a
program with blocks only scikit-learn can run, a format this gateway does not read) it
unpickles ``transformer.pkl`` once its sha256 and library versions check out, compiles it
at load and logs why. ``Transform.source`` says which path was taken.

Either way the result equals ``fitted.transform(pandas.DataFrame(columns))``. The one
difference is for inputs a compiled block does not model (an infinity from the feature
store, an integer beyond 64 bits, ...): with the pickle loaded the reference computes
them; from the compiled file alone they are refused with a 400 naming the column
(``UnsupportedValue``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gateway import artifacts
from gateway.errors import ArtifactError
from gateway.spec import ModelSpec, TransformerSpec
from gateway.transformer import Program, ir, load_program
from gateway.transformer.columns import FLOAT, STR, Column, Defer, as_list, infer

log = logging.getLogger("gateway.logic")


class Transform:
    """Columns in, a dense float matrix out, in the spec's column order.

    ``columns`` maps every name of ``spec.columns`` to a list of ``n`` request values.
    ``Transform(fitted, spec)`` compiles ``fitted``; with ``compile=False`` every call takes
    the reference path (pandas + scikit-learn). ``Transform.from_program`` wraps a stored
    program instead.
    """

    def __init__(self, fitted: Any, spec: TransformerSpec, compile: bool = True) -> None:
        from gateway.transformer.compiler import compile_transformer, reference_program

        build = compile_transformer if compile else reference_program
        self._setup(build(fitted, list(spec.columns)), spec, "pickle", lambda: fitted, fitted)

    @classmethod
    def from_program(
        cls, program: Program, spec: TransformerSpec, load_fitted: Callable[[], Any]
    ) -> Transform:
        """A transform running a loaded program; ``load_fitted`` is called only if ``fitted`` is needed."""
        transform = cls.__new__(cls)
        transform._setup(program, spec, "artifact", load_fitted)
        return transform

    def _setup(
        self,
        program: Program,
        spec: TransformerSpec,
        source: str,
        load: Callable[[], Any],
        fitted: Any = None,
    ) -> None:
        self.program = program
        self.columns = list(spec.columns)
        self.dtype = np.dtype(spec.output_dtype)
        self.source = source  # "artifact": the compiled file; "pickle": the fitted transformer
        self._fitted = fitted
        self._load_fitted = load
        self._lock = threading.Lock()

    @property
    def fitted(self) -> Any:
        """The fitted scikit-learn transformer (from a stored program: unpickled, verified, on first use)."""
        with self._lock:
            if self._fitted is None:
                self._fitted = self._load_fitted()
            return self._fitted

    @property
    def report(self) -> list[str]:
        """What runs through scikit-learn instead of compiled code, and why (empty when all compiled)."""
        return list(self.program.report)

    @property
    def compiled(self) -> bool:
        return self.program.compiled

    @property
    def deferred(self) -> int:
        """Block computations that met an input the compiled ops do not model (referred or refused)."""
        return self.program.deferred

    def __call__(self, columns: dict[str, Any], n: int) -> np.ndarray[Any, Any]:
        return self._finish(self.program(columns, n))

    def reference(self, columns: dict[str, Any], n: int) -> np.ndarray[Any, Any]:
        """The reference path: ``fitted.transform`` on a pandas DataFrame (benchmarks, checks)."""
        import pandas as pd

        frame = pd.DataFrame({c: as_list(columns[c]) for c in self.columns}, index=range(n))
        return self._finish(self.fitted.transform(frame))

    def _finish(self, out: Any) -> np.ndarray[Any, Any]:
        return np.ascontiguousarray(dense(out), dtype=self.dtype)


# A transformer's output goes to the graph as dense float rows: a sparse one (one-hot columns under
# a ColumnTransformer's sparse_threshold) is densified, up to this many columns.
MAX_DENSE_COLUMNS = 20_000


def dense(out: Any, source: str = "the transformer") -> np.ndarray[Any, Any]:
    """``transform``'s output as a dense array (a sparse matrix densified; too wide is refused)."""
    if hasattr(out, "toarray"):  # scipy.sparse
        width = int(out.shape[1])
        if width > MAX_DENSE_COLUMNS:
            raise ArtifactError(
                f"{source} outputs a sparse matrix of {width} columns; the graph takes dense rows "
                f"(at most {MAX_DENSE_COLUMNS} columns): limit the one-hot categories (OneHotEncoder "
                "max_categories or min_frequency) or the features"
            )
        out = out.toarray()
    return np.asarray(out)


def load_transform(
    vdir: Path, manifest: dict[str, Any], spec: TransformerSpec, allow_drift: list[str]
) -> Transform:
    """The version's transform: from its compiled file when usable, else from its pickle (logged)."""

    def load_fitted() -> Any:
        return artifacts.load_verified_pickle(vdir, spec.file, manifest, allow_drift)

    entry: Any = manifest.get(ir.MANIFEST_KEY)
    why = _why_not_compiled(entry)
    if why is None:
        program = _load_compiled(vdir, manifest, entry["file"], spec.file)
        if program.columns == list(spec.columns):
            log.info("%s: compiled transformer loaded (numpy only)", vdir / entry["file"])
            return Transform.from_program(program, spec, load_fitted)
        why = f"its compiled transformer takes columns {program.columns}, the spec lists {list(spec.columns)}"
    log.warning("%s: %s; loading %s and compiling it here", vdir, why, spec.file)
    transform = Transform(load_fitted(), spec)
    where = vdir / spec.file
    for line in transform.report:
        log.warning("%s: %s", where, line)
    if transform.compiled:
        log.info("%s: compiled to numpy operations", where)
    return transform


def _why_not_compiled(entry: Any) -> str | None:
    """Why the version's compiled file cannot serve on its own (None: it can)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        return "the version has no compiled transformer (published before compiled transformers)"
    if entry.get("format") != ir.FORMAT_VERSION:
        return f"its compiled transformer has format {entry.get('format')!r}; this gateway reads {ir.FORMAT_VERSION}"
    if entry.get("complete") is not True:
        fallbacks = "; ".join(str(f) for f in entry.get("fallbacks", [])) or "not recorded"
        return f"its compiled transformer does not serve alone ({fallbacks})"
    return None


def _load_compiled(vdir: Path, manifest: dict[str, Any], rel: str, pickle_rel: str) -> Program:
    # A changed file is refused, never skipped: the pickle too (hashed, not unpickled), so a
    # damaged version stops the worker at start whichever file serves.
    artifacts.verify_files(vdir, manifest, only=[rel, pickle_rel])
    return load_program(vdir / rel)  # refuses a file with fallback blocks: it has no pickle to run them


class ColumnAssembler:
    """The transformer's input columns for one request: validated request fields and stored features.

    Feature columns arrive as plain numpy arrays whose type the spec declares (see
    ``gateway.featurestore.reader.Features``): float fields (float64) and string fields (an
    object array of ``str``) go to the compiled program already inferred, exactly as pandas
    would infer the decoded values; int fields as Python values. Request columns are lists
    of validated values, inferred by the program as pandas infers them; a ranking's single
    context row is inferred once and broadcast.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.fields = [f.name for f in spec.request.fields]
        self.kinds = {
            name: field.dtype
            for v in spec.feature_views
            if v.kind == "hash"
            for name, field in v.fields.items()
        }

    def __call__(
        self, rows: list[dict[str, Any]], shared_row: bool, features: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, Any]:
        cols: dict[str, Any] = {name: self._feature(name, arr) for name, arr in features.items()}
        if shared_row and rows:  # one context for every item: infer each field once
            for name in self.fields:
                cols[name] = broadcast(rows[0][name], len(rows))
            return cols
        for name in self.fields:
            cols[name] = [r[name] for r in rows]
        return cols

    def _feature(self, name: str, values: np.ndarray[Any, Any]) -> Column | list[Any]:
        kind = self.kinds.get(name)
        if kind == "float":
            return Column(FLOAT, values)
        if kind == "string":
            return Column(STR, values)
        return values.tolist()  # type: ignore[no-any-return]  # ints may exceed int64: inferred like a list


def broadcast(value: Any, n: int) -> Column | list[Any]:
    """The column of ``n`` copies of ``value``, inferred once (pandas infers it the same way)."""
    try:
        col = infer([value])
    except Defer:
        return [value] * n
    return Column(col.kind, np.repeat(col.values, n))
