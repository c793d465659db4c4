"""Read an entity table and check every row against the spec before anything is written.

A table has an ``id`` column and one column per hash-view field; a vector view
comes either as one list column named after the view (Parquet) or as columns
``<view>_0 .. <view>_<dim-1>`` (CSV or Parquet). Columns no view uses are
ignored and named in the summary.

Validation is all-or-nothing and one pass: :func:`encode` either returns every row
encoded for Redis, or raises :class:`BadRows` listing every problem of the file (up
to ``MAX_REPORTED``; structural ones such as a ragged line or a missing column
first) with its CSV line number (Parquet: 1-based row number) and the offending cell
as it is in the file, so a bad file never reaches the store. An empty cell (or the
view's ``missing_marker``) is an error unless the view says ``missing: default``:
then it stores the field's declared default.
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
    """Strict CSV: a record with another number of cells than the header is left out and reported
    (with the rest of the file's problems, by :func:`encode`); cells stay the strings they are."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8-sig") as f:  # tolerate a BOM
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise BadRows(str(path), [("line 1", "header", "file is empty")], 1)
        rows: list[list[str]] = []
        lines: list[int] = []
        ragged: list[tuple[int, str]] = []
        start = reader.line_num + 1
        for rec in reader:
            if len(rec) != len(header):
                ragged.append((start, f"{len(rec)} cells, header has {len(header)}"))
            else:
                rows.append(rec)
                lines.append(start)
            start = reader.line_num + 1
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise BadRows(str(path), [("line 1", "header", f"duplicate column names {twice}")], 1)
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame.attrs["lines"] = lines
    frame.attrs["ragged"] = ragged
    return frame


def row_label(frame: pd.DataFrame, i: int) -> str:
    lines = frame.attrs.get("lines")
    if lines is not None:
        return f"line {lines[i]}"  # CSV: the physical line the record starts on
    first = frame.attrs.get("first_line", 0)
    return f"line {i + first}" if first else f"row {i + 1}"


def shown(cell: Any) -> str:
    """A cell as it is in the file: a CSV cell's text, a Parquet value."""
    if isinstance(cell, (float, np.floating)):
        return repr(str(float(cell)))
    return repr(cell if isinstance(cell, str) else str(cell))


class _Problems:
    """Every problem of a table: (order, where, column, why); the file's structure first."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.items: list[tuple[tuple[int, int], str, str, str]] = []
        for line, why in frame.attrs.get("ragged", []):
            self.items.append(((1, line), f"line {line}", "-", why))

    def header(self, column: str, why: str) -> None:
        self.items.append(((0, 0), "header", column, why))

    def add(self, rows: Iterator[int] | np.ndarray[Any, Any], column: str, why: Any) -> None:
        """``why``: a message, or a function of the row index giving one."""
        lines = self.frame.attrs.get("lines")
        for row in rows:
            i = int(row)
            order = lines[i] if lines is not None else i
            text = why(i) if callable(why) else why
            self.items.append(((1, order), row_label(self.frame, i), column, text))

    def raise_if_any(self) -> None:
        if self.items:
            self.items.sort(key=lambda item: item[0])
            shown_items = [(w, c, y) for _, w, c, y in self.items[:MAX_REPORTED]]
            raise BadRows(str(self.frame.attrs.get("source", "table")), shown_items, len(self.items))


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
    problems = _Problems(frame)
    if frame.empty and not problems.items:
        raise ValueError(
            f"{frame.attrs.get('source', 'table')}: no data rows; refusing to publish an empty snapshot"
        )
    present = _check_columns(views, frame, problems)
    ids = _ids(frame, problems, spec.entities[entity].max_length) if ID_COLUMN in present else []
    out = Encoded(ids=ids)
    used = {ID_COLUMN}
    for v in views:
        if v.kind == "hash":
            out.hashes[v.name] = _hash_view(frame, v, problems, present)
            used.update(v.fields)
            names = sum(len(f) for f in v.fields) * len(frame)
            out.value_bytes[v.name] = names + sum(sum(map(len, row)) for row in out.hashes[v.name])
        elif v.name in present:
            out.vectors[v.name], cols = _vector_view(frame, v, problems)
            used.update(cols)
            out.value_bytes[v.name] = 4 * (v.dim or 0) * len(frame)
    problems.raise_if_any()
    out.ignored_columns = [c for c in frame.columns if c not in used]
    return out


def _check_columns(views: list[FeatureView], frame: pd.DataFrame, problems: _Problems) -> set[str]:
    """Columns (and vector views) the file has; each one it lacks is a problem of its header."""
    present = set(frame.columns)
    if ID_COLUMN not in present:
        problems.header(ID_COLUMN, "no such column")
    for v in views:
        if v.kind == "hash":
            for f in v.fields:
                if f not in present:
                    problems.header(f, f"no such column (a field of view {v.name!r})")
            continue
        split = [f"{v.name}_{k}" for k in range(v.dim or 0)]
        if v.name in present or all(c in present for c in split):
            present.add(v.name)
        elif any(c in present for c in split):
            lacking = [c for c in split if c not in present]
            problems.header(
                v.name, f"vector columns {v.name}_0..{v.name}_{(v.dim or 1) - 1} lack {lacking[:3]}"
            )
        else:
            problems.header(v.name, f"no such column (nor {v.name}_0..{v.name}_{(v.dim or 1) - 1})")
    return present


def _missing(series: pd.Series, marker: str = "") -> np.ndarray[Any, Any]:
    """Null cells, and for text columns (all CSV columns) blank ones or ones equal to ``marker``."""
    na = np.asarray(series.isna().to_numpy(), dtype=bool)
    if pd.api.types.is_numeric_dtype(series):
        return na
    blank = np.asarray(
        [isinstance(x, str) and (not x.strip() or (bool(marker) and x == marker)) for x in series.tolist()],
        dtype=bool,
    )
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


def _hash_view(
    frame: pd.DataFrame, view: FeatureView, problems: _Problems, present: set[str]
) -> list[list[str]]:
    columns: list[list[str]] = []
    for name, fld in view.fields.items():
        if name not in present:
            continue
        series = frame[name]
        cells = series.tolist()
        missing = _missing(series, view.missing_marker)
        default = np.zeros(len(frame), dtype=bool)
        if view.missing == "default":
            default, missing = missing, np.zeros(len(frame), dtype=bool)
        else:
            why = "empty value" if not view.missing_marker else f"empty value (or {view.missing_marker!r})"
            problems.add(
                np.flatnonzero(missing),
                name,
                f"{why}; `missing: default` on the view would store the default",
            )
        if fld.dtype == "string":
            columns.append([str(fld.default) if default[i] else str(c) for i, c in enumerate(cells)])
            continue
        num = pd.to_numeric(series.where(~default), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(num) & ~missing & ~default
        what = "an integer" if fld.dtype == "int" else "a finite number"
        problems.add(np.flatnonzero(bad), name, lambda i, c=cells, w=what: f"{shown(c[i])} is not {w}")
        num = np.where(default, float(fld.default), num)
        if fld.dtype == "int":
            frac = np.isfinite(num) & (num != np.round(num))
            problems.add(np.flatnonzero(frac), name, lambda i, c=cells: f"{shown(c[i])} is not an integer")
            columns.append([str(int(x)) if np.isfinite(x) else "" for x in num.tolist()])
        else:
            columns.append([repr(x) for x in num.tolist()])
    if len(columns) != len(view.fields):  # a column is missing (reported): nothing to encode
        return [[] for _ in range(len(frame))]
    return [list(row) for row in zip(*columns, strict=True)]


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
                problems.add(iter([i]), view.name, f"{shown(cell)} is not a list of numbers")
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

        def cell(i: int) -> str:
            k = int(np.flatnonzero(~np.isfinite(mat[i]))[0])
            return f"{cols[k]} {shown(frame[cols[k]].iloc[i])} is missing or not a finite number"

        problems.add(np.flatnonzero(bad), view.name, cell)
        packed = np.ascontiguousarray(np.nan_to_num(mat), dtype="<f4")
        return [row.tobytes() for row in packed], cols
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
