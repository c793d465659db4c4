"""One-hot and ordinal encoders as lookup tables built once at load.

Matching follows scikit-learn's two paths: numeric columns against numeric categories
by value (``searchsorted``), anything else by Python equality and hashing (a dict), with
None and NaN as categories of their own. Each input feature then maps its category
index, or "unknown", through a table that already folds in infrequent-category grouping,
dropped categories and the unknown-value policy.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from gateway.errors import InvalidField
from gateway.transformer.base import Compiled, Shape, Unsupported, check_input, require
from gateway.transformer.codec import Malformed, Reader, Writer
from gateway.transformer.columns import Array, Data, Defer, column_values

UNKNOWN = -1


class UnknownCategory(InvalidField):
    """A value the encoder never saw in training, under ``handle_unknown="error"``: the client's input."""

    code = "unknown_category"


def _is_nan(value: Any) -> bool:
    return isinstance(value, (float, np.floating)) and math.isnan(value)


class Codes:
    """Category index of each value of one input feature (``UNKNOWN`` when unseen)."""

    def __init__(self, categories: Array) -> None:
        self.categories = categories
        self.numeric = categories.dtype.kind in "iuf"
        self.size = len(categories)
        self.none = self.nan = UNKNOWN
        self.table: dict[Any, int] = {}
        for k, cat in enumerate(categories.tolist()):
            if cat is None:
                self.none = k
            elif _is_nan(cat):
                self.nan = k
            else:
                self.table[cat] = k

    def __call__(self, path: str, values: Array) -> Array:
        if path == "numeric":
            return self.by_value(values)
        return self.by_object(values.tolist())

    def by_value(self, values: Array) -> Array:
        if not self.numeric:
            raise Defer  # numbers against string categories: left to the reference
        cats = self.categories
        idx = np.searchsorted(cats, values)
        found = cats[np.minimum(idx, self.size - 1)] == values
        if self.nan != UNKNOWN:
            found |= np.isnan(values)
        return np.where(found, idx, UNKNOWN)

    def by_object(self, values: list[Any]) -> Array:
        get = self.table.get
        idx = [get(v, UNKNOWN) for v in values]
        if self.none != UNKNOWN or self.nan != UNKNOWN:
            # None and NaN are never keys of the table, so only values it missed can be either.
            for i in [i for i, k in enumerate(idx) if k == UNKNOWN]:
                v = values[i]
                if v is None:
                    idx[i] = self.none
                elif _is_nan(v):
                    idx[i] = self.nan
        return np.array(idx, dtype=np.intp)


def _raise_unknown(name: str, values: Array, idx: Array) -> None:
    unseen = [values[i] for i in np.flatnonzero(idx == UNKNOWN)[:3].tolist()]
    shown = ", ".join("missing" if v is None or _is_nan(v) else repr(v)[:40] for v in unseen)
    raise UnknownCategory(name, f"category not seen in training: {shown}")


def _infrequent(enc: Any, i: int) -> tuple[Array | None, Array | None]:
    """Feature ``i``'s (infrequent raw indices, raw -> grouped index map), or (None, None)."""
    if not getattr(enc, "_infrequent_enabled", False):
        return None, None
    try:
        return enc._infrequent_indices[i], enc._default_to_infrequent_mappings[i]
    except AttributeError as e:
        raise Unsupported(f"{type(enc).__name__} infrequent categories: {e}") from e


def _codes_ir(w: Writer, codes: list[Codes]) -> list[Any]:
    return [w.array(c.categories) for c in codes]


def _codes(r: Reader, d: dict[str, Any]) -> list[Codes]:
    return [Codes(c) for c in r.arrays_of(d, "categories")]


def _common_ir(w: Writer, op: OneHot | Ordinal) -> dict[str, Any]:
    return {
        "categories": _codes_ir(w, op.codes),
        "names": list(op.names),
        "strict": op.strict,
        "dtype": w.dtype(op.dtype),
    }


class OneHot:
    kind: ClassVar[str] = "one_hot_encoder"

    def __init__(
        self,
        codes: list[Codes],
        columns: list[Array],
        names: list[str],
        *,
        width: int,
        strict: bool,
        dtype: Any,
    ) -> None:
        self.codes = codes
        self.columns = columns  # per feature: output column per category index (-1: none), then unknown's
        self.names = names
        self.width = width
        self.strict = strict
        self.dtype = dtype

    def __call__(self, x: Data) -> Array:
        n = len(x.cols[0].values) if not isinstance(x, np.ndarray) else x.shape[0]
        out = np.zeros((n, self.width), dtype=self.dtype)
        rows = np.arange(n)
        for j, codes in enumerate(self.codes):
            path, values = column_values(x, j)
            idx = codes(path, values)
            if self.strict and (idx == UNKNOWN).any():
                _raise_unknown(self.names[j], values, idx)
            cols = self.columns[j][idx]
            hit = cols >= 0
            out[rows[hit], cols[hit]] = 1
        return out

    def to_ir(self, w: Writer) -> dict[str, Any]:
        return {**_common_ir(w, self), "columns": [w.array(c) for c in self.columns], "width": self.width}

    @classmethod
    def from_ir(cls, d: dict[str, Any], r: Reader) -> OneHot:
        codes, columns = _codes(r, d), r.arrays_of(d, "columns")
        if len(columns) != len(codes) or any(c.dtype.kind not in "iu" for c in columns):
            raise Malformed("one_hot_encoder needs one integer column table per feature")
        names, width = r.names(d, "names"), int(d["width"])
        return cls(codes, columns, names, width=width, strict=bool(d["strict"]), dtype=r.dtype(d["dtype"]))


def _one_hot_columns(enc: Any, i: int, offset: int) -> Array:
    n_cats = len(enc.categories_[i])
    infrequent, mapping = _infrequent(enc, i)
    drops = getattr(enc, "_drop_idx_after_grouping", None)
    drop = None if drops is None else drops[i]

    def place(k: int) -> int:
        g = int(mapping[k]) if mapping is not None else k
        if drop is not None and g >= drop:
            return -1 if g == drop else offset + g - 1
        return offset + g

    table = [place(k) for k in range(n_cats)]
    if infrequent is not None and enc.handle_unknown in ("infrequent_if_exist", "warn"):
        table.append(place(int(infrequent[0])))
    else:
        table.append(-1)
    return np.array(table, dtype=np.intp)


def one_hot_encoder(enc: Any, shape: Shape) -> Compiled:
    check_input(enc, shape)
    require(
        enc.handle_unknown in ("error", "ignore", "infrequent_if_exist", "warn"),
        f"OneHotEncoder handle_unknown={enc.handle_unknown!r}",
    )
    outs = list(getattr(enc, "_n_features_outs", []))
    require(len(outs) == shape.width, "OneHotEncoder lacks _n_features_outs (another scikit-learn version?)")
    offsets = np.cumsum([0, *outs]).tolist()
    columns = [_one_hot_columns(enc, i, offsets[i]) for i in range(shape.width)]
    codes = [Codes(np.asarray(c)) for c in enc.categories_]
    names = [shape.name(j) for j in range(shape.width)]
    width = int(offsets[-1])
    op = OneHot(codes, columns, names, width=width, strict=enc.handle_unknown == "error", dtype=enc.dtype)
    return Compiled(op, shape.matrix([f"onehot {k}" for k in range(width)], width), enc.sparse_output)


class Ordinal:
    kind: ClassVar[str] = "ordinal_encoder"

    def __init__(
        self, codes: list[Codes], tables: list[Array], names: list[str], strict: bool, dtype: Any
    ) -> None:
        self.codes = codes
        self.tables = tables  # per feature: encoded value per category index, last entry for unknown
        self.names = names
        self.strict = strict
        self.dtype = dtype

    def __call__(self, x: Data) -> Array:
        n = len(x.cols[0].values) if not isinstance(x, np.ndarray) else x.shape[0]
        out = np.empty((n, len(self.codes)), dtype=self.dtype)
        for j, codes in enumerate(self.codes):
            path, values = column_values(x, j)
            idx = codes(path, values)
            if self.strict and (idx == UNKNOWN).any():
                _raise_unknown(self.names[j], values, idx)
            out[:, j] = self.tables[j][idx]
        return out

    def to_ir(self, w: Writer) -> dict[str, Any]:
        return {**_common_ir(w, self), "tables": [w.array(t) for t in self.tables]}

    @classmethod
    def from_ir(cls, d: dict[str, Any], r: Reader) -> Ordinal:
        codes, tables = _codes(r, d), r.arrays_of(d, "tables")
        if len(tables) != len(codes):
            raise Malformed("ordinal_encoder needs one table per feature")
        return cls(codes, tables, r.names(d, "names"), bool(d["strict"]), r.dtype(d["dtype"]))


def _ordinal_table(enc: Any, i: int) -> Array:
    n_cats = len(enc.categories_[i])
    _, mapping = _infrequent(enc, i)
    missing = enc._missing_indices.get(i)
    grouped = [k if mapping is None or k == missing else int(mapping[k]) for k in range(n_cats)]
    table = np.array([*grouped, 0], dtype=np.int64).astype(enc.dtype)
    if missing is not None:
        table[missing] = enc.encoded_missing_value
    if enc.handle_unknown == "use_encoded_value":
        table[-1] = enc.unknown_value
    return table


def ordinal_encoder(enc: Any, shape: Shape) -> Compiled:
    check_input(enc, shape)
    handle = enc.handle_unknown
    require(handle in ("error", "use_encoded_value"), f"OrdinalEncoder handle_unknown={handle!r}")
    require(hasattr(enc, "_missing_indices"), "OrdinalEncoder lacks _missing_indices")
    tables = [_ordinal_table(enc, i) for i in range(shape.width)]
    codes = [Codes(np.asarray(c)) for c in enc.categories_]
    names = [shape.name(j) for j in range(shape.width)]
    op = Ordinal(codes, tables, names, enc.handle_unknown == "error", enc.dtype)
    return Compiled(op, shape.matrix())
