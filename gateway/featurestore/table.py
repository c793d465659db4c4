"""Read an entity table and check every row against the spec before anything is written.

A table has an ``id`` column and one column per hash-view field; a vector view
comes either as one list column named after the view (Parquet) or as columns
``<view>_0 .. <view>_<dim-1>`` (CSV or Parquet). Columns no view uses are
ignored and named in the summary.

Validation is all-or-nothing: :func:`encode` either returns every row encoded
for Redis, or raises :class:`BadRows` listing the problems with their CSV line
numbers (Parquet: 1-based row numbers), so a bad file never reaches the store.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gateway.featurestore import keys
from gateway.spec import FeatureView, ModelSpec

ID_COLUMN = "id"
MAX_REPORTED = 20


class BadRows(ValueError):
    """The table failed validation; ``problems`` holds (row label, column, problem) triples."""

    def __init__(self, source: str, problems: list[tuple[str, str, str]], total: int) -> None:
        self.source = source
        self.problems = problems
        self.total = total
        shown = "\n".join(f"  {where}: {col}: {why}" for where, col, why in problems)
        more = f"\n  ... and {total - len(problems)} more" if total > len(problems) else ""
        super().__init__(f"{source}: {total} problem(s), nothing was written:\n{shown}{more}")


@dataclass
class Encoded:
    """A validated table, encoded the way Redis stores it."""

    ids: list[str]
    hashes: dict[str, list[list[str]]] = field(default_factory=dict)  # view -> per row [v1, v2, ...]
    vectors: dict[str, list[bytes]] = field(default_factory=dict)  # view -> per row packed float32
    ignored_columns: list[str] = field(default_factory=list)
    value_bytes: dict[str, int] = field(default_factory=dict)  # view -> bytes of field names and values

    @property
    def rows(self) -> int:
        return len(self.ids)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (optionally ``.gz``) or Parquet file; CSV cells stay strings so validation sees them raw."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        frame = pd.read_parquet(path)
        frame.attrs["first_line"] = 0
    elif name.endswith((".csv", ".csv.gz")):
        frame = _read_csv(path)
        frame.attrs["first_line"] = 2  # line 1 is the header
    else:
        raise ValueError(f"{path}: expected a .csv, .csv.gz or .parquet file")
    frame.attrs["source"] = str(path)
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    """Strict CSV: every record has as many cells as the header; ragged lines are reported."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8-sig") as f:  # tolerate a BOM
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise BadRows(str(path), [("line 1", "header", "file is empty")], 1)
        rows: list[list[str]] = []
        problems: list[tuple[str, str, str]] = []
        for rec in reader:
            if len(rec) != len(header):
                problems.append(
                    (f"line {reader.line_num}", "-", f"{len(rec)} cells, header has {len(header)}")
                )
            rows.append(rec)
    if problems:
        raise BadRows(str(path), problems[:MAX_REPORTED], len(problems))
    if len(set(header)) != len(header):
        raise ValueError(f"{path}: duplicate column names in the header")
    return pd.DataFrame(rows, columns=header, dtype=object)


def row_label(frame: pd.DataFrame, i: int) -> str:
    first = frame.attrs.get("first_line", 0)
    # CSV: the physical line of record i (one record per line); Parquet: 1-based row number.
    return f"line {i + first}" if first else f"row {i + 1}"


class _Problems:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.items: list[tuple[int, str, str]] = []

    def add(self, rows: Iterator[int] | np.ndarray[Any, Any], column: str, why: str) -> None:
        for i in rows:
            self.items.append((int(i), column, why))

    def raise_if_any(self) -> None:
        if self.items:
            self.items.sort()
            shown = [(row_label(self.frame, i), c, w) for i, c, w in self.items[:MAX_REPORTED]]
            raise BadRows(str(self.frame.attrs.get("source", "table")), shown, len(self.items))


def entity_views(spec: ModelSpec, entity: str) -> list[FeatureView]:
    """The views stored for ``entity``; names are checked against the key layout's alphabet."""
    views = [v for v in spec.feature_views if v.entity == entity]
    if not views:
        known = sorted({v.entity for v in spec.feature_views})
        raise ValueError(f"model {spec.name!r} has no feature view for entity {entity!r} (known: {known})")
    keys.check_name("model", spec.name)
    keys.check_name("entity", entity)
    for v in views:
        keys.check_name("view", v.name)
    return views


def encode(spec: ModelSpec, entity: str, frame: pd.DataFrame) -> Encoded:
    """Validate every row of ``frame`` for ``entity``'s views; encode them or raise :class:`BadRows`."""
    views = entity_views(spec, entity)
    _require_columns(spec, entity, views, frame)
    if frame.empty:
        raise ValueError(
            f"{frame.attrs.get('source', 'table')}: no data rows; refusing to publish an empty snapshot"
        )
    problems = _Problems(frame)
    ids = _ids(frame, problems, spec.entities[entity].max_length)
    out = Encoded(ids=ids)
    used = {ID_COLUMN}
    for v in views:
        if v.kind == "hash":
            out.hashes[v.name] = _hash_view(frame, v, problems)
            used.update(v.fields)
            names = sum(len(f) for f in v.fields) * len(frame)
            out.value_bytes[v.name] = names + sum(sum(map(len, row)) for row in out.hashes[v.name])
        else:
            out.vectors[v.name], cols = _vector_view(frame, v, problems)
            used.update(cols)
            out.value_bytes[v.name] = 4 * (v.dim or 0) * len(frame)
    problems.raise_if_any()
    out.ignored_columns = [c for c in frame.columns if c not in used]
    return out


def _require_columns(spec: ModelSpec, entity: str, views: list[FeatureView], frame: pd.DataFrame) -> None:
    source = frame.attrs.get("source", "table")
    absent = [] if ID_COLUMN in frame.columns else [ID_COLUMN]
    for v in views:
        if v.kind == "hash":
            absent += [f for f in v.fields if f not in frame.columns]
        elif v.name not in frame.columns and f"{v.name}_0" not in frame.columns:
            absent.append(f"{v.name} (or {v.name}_0..{v.name}_{(v.dim or 1) - 1})")
    if absent:
        raise ValueError(f"{source}: no column {', '.join(absent)} for {spec.name}/{entity}")


def _missing(series: pd.Series) -> np.ndarray[Any, Any]:
    """Null cells, and for text columns (all CSV columns) blank ones."""
    na = np.asarray(series.isna().to_numpy(), dtype=bool)
    if pd.api.types.is_numeric_dtype(series):
        return na
    blank = np.asarray([isinstance(x, str) and not x.strip() for x in series.tolist()], dtype=bool)
    return np.asarray(na | blank)


def _ids(frame: pd.DataFrame, problems: _Problems, max_length: int) -> list[str]:
    col = frame[ID_COLUMN]
    empty = _missing(col)
    problems.add(np.flatnonzero(empty), ID_COLUMN, "empty id")
    ids = [_id_text(x) for x in col.tolist()]
    too_long = np.asarray([len(x) > max_length for x in ids])
    problems.add(np.flatnonzero(too_long), ID_COLUMN, f"longer than {max_length} characters")
    first: dict[str, int] = {}
    for i, x in enumerate(ids):
        if empty[i]:
            continue
        j = first.setdefault(x, i)
        if j != i:
            problems.add(
                iter([i]), ID_COLUMN, f"duplicate id {x!r} (first at {row_label(problems.frame, j)})"
            )
    return ids


def _id_text(x: Any) -> str:
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return str(int(x))  # a numeric id column read from Parquet
    return str(x)


def _hash_view(frame: pd.DataFrame, view: FeatureView, problems: _Problems) -> list[list[str]]:
    columns: list[list[str]] = []
    for name, fld in view.fields.items():
        series = frame[name]
        missing = _missing(series)
        problems.add(np.flatnonzero(missing), name, "empty value")
        if fld.dtype == "string":
            columns.append(series.astype(str).tolist())
            continue
        num = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(num) & ~missing
        what = "an integer" if fld.dtype == "int" else "a finite number"
        problems.add(np.flatnonzero(bad), name, f"{_shown(series, bad)} is not {what}")
        if fld.dtype == "int":
            frac = np.isfinite(num) & (num != np.round(num))
            problems.add(np.flatnonzero(frac), name, "is not an integer")
            columns.append([str(int(x)) if np.isfinite(x) else "" for x in num.tolist()])
        else:
            columns.append([repr(x) for x in num.tolist()])
    return [list(row) for row in zip(*columns, strict=True)]


def _shown(series: pd.Series, bad: np.ndarray[Any, Any]) -> str:
    idx = np.flatnonzero(bad)
    return repr(str(series.iloc[idx[0]])) if len(idx) else "value"


def _vector_view(
    frame: pd.DataFrame, view: FeatureView, problems: _Problems
) -> tuple[list[bytes], list[str]]:
    dim = view.dim or 0
    if view.name in frame.columns:
        cols = [view.name]
        mat = np.zeros((len(frame), dim))
        for i, cell in enumerate(frame[view.name].tolist()):
            vec = _as_vector(cell)
            if vec is None:
                problems.add(iter([i]), view.name, "not a list of numbers")
            elif vec.shape != (dim,):
                problems.add(iter([i]), view.name, f"expected {dim} numbers, got {vec.size}")
            else:
                mat[i] = vec
    else:
        cols = [f"{view.name}_{k}" for k in range(dim)]
        absent = [c for c in cols if c not in frame.columns]
        if absent:
            raise ValueError(
                f"{frame.attrs.get('source', 'table')}: vector view {view.name!r} lacks {absent[0]!r}"
            )
        mat = frame[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(mat).all(axis=1)
    problems.add(np.flatnonzero(bad), view.name, "vector has a missing or non-finite value")
    packed = np.ascontiguousarray(np.nan_to_num(mat), dtype="<f4")
    return [row.tobytes() for row in packed], cols


def _as_vector(cell: Any) -> np.ndarray[Any, Any] | None:
    """A list cell (Parquet) or numbers separated by spaces/commas (CSV); None if neither."""
    if cell is None:
        return None
    if isinstance(cell, str):
        text = cell.strip().strip("[]").replace(",", " ").replace(";", " ")
        try:
            return np.asarray([float(x) for x in text.split()], dtype=np.float64) if text else None
        except ValueError:
            return None
    try:
        return np.asarray(cell, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None


def vector_matrix(frame: pd.DataFrame, view: FeatureView) -> np.ndarray[Any, Any]:
    """A vector view's values as a ``(rows, dim)`` float32 matrix; raises :class:`BadRows` on bad cells."""
    if view.kind != "vector":
        raise ValueError(f"view {view.name!r} is not a vector view")
    if view.name not in frame.columns and f"{view.name}_0" not in frame.columns:
        raise ValueError(f"{frame.attrs.get('source', 'table')}: no column {view.name!r} nor {view.name}_0..")
    problems = _Problems(frame)
    packed, _ = _vector_view(frame, view, problems)
    problems.raise_if_any()
    return np.frombuffer(b"".join(packed), dtype="<f4").reshape(len(packed), view.dim or 0).copy()
