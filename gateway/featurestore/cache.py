"""Decoded feature values of one view, column-wise, as plain numpy arrays.

A ``ViewTable`` holds the entities of one feature view read under one snapshot:
each hash field is a numpy column (``float64`` for float fields, an object array
of ``str`` or ``int`` for string and int fields), each vector a row of one
``float32`` matrix, and a flag per entity says whether the store had it. A
request's columns are then one fancy index per field (``take``) instead of a
Python list built value by value.

A table lives for one request, or, for a view whose spec says ``cache``, in the
worker for as long as its snapshot and generation stay live (``TableCache``).
That is exact, not a stale copy: a snapshot's data keys are written once, except
by an incremental load, which bumps the snapshot's generation afterwards; every
request reads the alias and the generation in its one round trip, and a table
is only used under the (snapshot, generation) it was filled under.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from gateway.spec import FeatureView

Array = np.ndarray[Any, Any]
# position among a request's unique ids of each request row; None: one row per id, in order
Rows = Array | list[int] | None


class Stamp(NamedTuple):
    """The state of an entity's data a table was read under."""

    snapshot: int
    generation: int | None  # None: a snapshot met for the first time, its generation not read yet


@dataclass(frozen=True, slots=True)
class Taken:
    """One view's values for the request rows."""

    columns: dict[str, Array]  # hash view: field -> one value per row
    vectors: Array | None  # vector view: (rows, dim) float32
    absent: int  # entities of the request the store did not have (declared defaults used)
    present: Array | None = None  # per row: did the store have its entity (None: every row)


def _decoder(dtype: str) -> Callable[[bytes], Any]:
    if dtype == "string":
        return lambda b: b.decode("utf-8", "replace")
    if dtype == "int":
        return int
    return float


class HashLayout:
    """A hash view's fields in HMGET order, split into float fields (one matrix) and the others."""

    def __init__(self, view: FeatureView) -> None:
        items = list(view.fields.items())
        self.floats = [(j, name) for j, (name, f) in enumerate(items) if f.dtype == "float"]
        self.float_defaults = [float(items[j][1].default) for j, _ in self.floats]
        self.others = [
            (j, name, f.dtype, _decoder(f.dtype), f.default)
            for j, (name, f) in enumerate(items)
            if f.dtype != "float"
        ]

    def decode(self, raws: list[Any]) -> tuple[list[bool], Array, list[list[Any]]]:
        """Per entity whether the store had it; the float fields as an (entities, fields) matrix;
        per other field the decoded values. Absent values get the field's default."""
        present = [raw is not None and raw.count(None) != len(raw) for raw in raws]
        where, defaults = [j for j, _ in self.floats], self.float_defaults
        floats = np.array(
            [
                [float(raw[j]) if raw[j] is not None else d for j, d in zip(where, defaults, strict=True)]
                if ok
                else defaults
                for raw, ok in zip(raws, present, strict=True)
            ],
            dtype=np.float64,
        ).reshape(len(raws), len(where))
        others = [
            [
                dec(raw[j]) if ok and raw[j] is not None else default
                for raw, ok in zip(raws, present, strict=True)
            ]
            for j, _, _, dec, default in self.others
        ]
        return present, floats, others

    def columns(self, floats: Array, others: list[Array]) -> dict[str, Array]:
        """Request columns from taken rows: float fields are column views of one matrix."""
        cols: dict[str, Array] = {name: floats[:, k] for k, (_, name) in enumerate(self.floats)}
        for (_, name, _, _, _), arr in zip(self.others, others, strict=True):
            cols[name] = arr
        return cols


def _decode_vectors(dim: int, raws: list[Any]) -> tuple[list[bool], Array]:
    present = [raw is not None and len(raw) == 4 * dim for raw in raws]
    out = np.zeros((len(raws), dim), dtype=np.float32)  # absent or mis-sized: the declared zeros
    hit = [k for k, ok in enumerate(present) if ok]
    if hit:
        packed = b"".join(raw for raw, ok in zip(raws, present, strict=True) if ok)
        out[hit] = np.frombuffer(packed, dtype="<f4").reshape(len(hit), dim)
    return present, out


class ViewTable:
    """Entities of one view read for one request: ``add`` their replies once, then ``take`` columns."""

    def __init__(self, view: FeatureView, stamp: Stamp | None = None) -> None:
        self.view = view
        self.stamp = stamp
        self.layout = HashLayout(view)
        self.ids: list[str] = []
        self.raws: list[Any] = []
        self._present: list[bool] = []
        self._floats: Array = np.zeros((0, 0))
        self._others: list[list[Any]] = []
        self._vectors: Array | None = None

    def missing(self, ids: list[str]) -> list[str]:
        """The ids of ``ids`` this table does not hold yet."""
        return [] if ids == self.ids else ids

    def add(self, ids: list[str], raws: list[Any]) -> None:
        """Decode the raw replies for ``ids`` (an HMGET row or a packed vector each)."""
        self.ids, self.raws = ids, raws
        if self.view.kind == "hash":
            self._present, self._floats, self._others = self.layout.decode(raws)
        else:
            self._present, self._vectors = _decode_vectors(self.view.dim or 0, raws)

    def take(self, ids: list[str], rows: Rows) -> Taken:
        """Columns (or the vector matrix) for the request rows, and how many of ``ids`` are absent.

        ``ids`` are the request's unique ids of this view's entity (those added); ``rows``
        the position in ``ids`` of each request row (None: one row per id, in order).
        """
        absent = self._present.count(False)
        pos = None if rows is None else np.asarray(rows, dtype=np.intp)
        present = None
        if absent:
            mask = np.array(self._present, dtype=bool)
            present = mask if pos is None else mask[pos]
        if self._vectors is not None:
            return Taken({}, self._vectors if pos is None else self._vectors[pos], absent, present)
        others = [_objects(col) for col in self._others]  # one value per entity, then spread over the rows
        if pos is None:
            return Taken(self.layout.columns(self._floats, others), None, absent, present)
        cols = self.layout.columns(self._floats[pos], [arr[pos] for arr in others])
        return Taken(cols, None, absent, present)


class CachedTable(ViewTable):
    """A view's entities kept by a worker under one (snapshot, generation): numpy columns that grow."""

    def __init__(self, view: FeatureView, stamp: Stamp, capacity: int = 16) -> None:
        super().__init__(view, stamp)
        self.index: dict[str, int] = {}
        self.size = 0
        self._lock = threading.Lock()
        self._mask = np.zeros(capacity, dtype=bool)
        self._float_rows = np.zeros((capacity, len(self.layout.floats)), dtype=np.float64)
        self._arrays = [np.empty(capacity, dtype=object) for _ in self.layout.others]
        self._matrix = np.zeros((capacity, view.dim or 0), dtype=np.float32)

    def missing(self, ids: list[str]) -> list[str]:
        index = self.index
        return [i for i in ids if i not in index]

    def add(self, ids: list[str], raws: list[Any]) -> None:
        with self._lock:
            fresh = [(i, raw) for i, raw in zip(ids, raws, strict=True) if i not in self.index]
            if not fresh:
                return
            start, stop = self.size, self.size + len(fresh)
            self._reserve(stop)
            values = [raw for _, raw in fresh]
            if self.view.kind == "hash":
                present, self._float_rows[start:stop], others = self.layout.decode(values)
                for arr, col in zip(self._arrays, others, strict=True):
                    arr[start:stop] = col
            else:
                present, self._matrix[start:stop] = _decode_vectors(self.view.dim or 0, values)
            self._mask[start:stop] = present
            for row, (entity_id, _) in enumerate(fresh, start):
                self.index[entity_id] = row
            self.size = stop

    def _reserve(self, n: int) -> None:
        cap = len(self._mask)
        if n <= cap:
            return
        while cap < n:
            cap *= 2
        self._mask = _grown(self._mask, cap)
        self._float_rows = _grown(self._float_rows, cap)
        self._arrays = [_grown(a, cap) for a in self._arrays]
        self._matrix = _grown(self._matrix, cap)

    def take(self, ids: list[str], rows: Rows) -> Taken:
        with self._lock:
            index = self.index
            where = np.array([index[i] for i in ids], dtype=np.intp)
            absent = len(ids) - int(np.count_nonzero(self._mask[where]))
            pos = where if rows is None else where[np.asarray(rows, dtype=np.intp)]
            present = self._mask[pos] if absent else None
            if self.view.kind == "vector":
                return Taken({}, self._matrix[pos], absent, present)
            cols = self.layout.columns(self._float_rows[pos], [arr[pos] for arr in self._arrays])
        return Taken(cols, None, absent, present)


def _objects(values: list[Any]) -> Array:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _grown(a: Array, cap: int) -> Array:
    out = np.zeros((cap, *a.shape[1:]), dtype=a.dtype)  # object arrays fill with 0: never read
    out[: len(a)] = a
    return out


class TableCache:
    """The cached views' tables of one worker, each valid for one (snapshot, generation)."""

    def __init__(self, views: list[FeatureView]) -> None:
        self.views = {v.name: v for v in views if v.cache is not None}
        self._tables: dict[str, CachedTable] = {}
        self._lock = threading.Lock()

    def table(self, view: str, stamp: Stamp, adding: int) -> CachedTable:
        """The table for ``view`` under ``stamp``, with room for ``adding`` more entities."""
        spec = self.views[view]
        limit = spec.cache.max_entities if spec.cache is not None else 0
        with self._lock:
            t = self._tables.get(view)
            if t is None or t.stamp != stamp or t.size + adding > limit:
                # A new snapshot or generation, or full: start over (entities come back as requested).
                t = self._tables[view] = CachedTable(spec, stamp, capacity=min(1024, max(16, limit)))
            return t

    def adopt(self, view: str, table: ViewTable, stamp: Stamp) -> None:
        """Keep what ``table`` read (under ``stamp``'s snapshot, before its generation was known)."""
        with self._lock:
            current = self._tables.get(view)
            if current is not None and current.stamp == stamp:
                return
        self.table(view, stamp, len(table.ids)).add(table.ids, table.raws)

    def sizes(self) -> dict[str, int]:
        return {name: t.size for name, t in self._tables.items()}
