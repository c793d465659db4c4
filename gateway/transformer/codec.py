"""A compiled step's parameters as data: numpy arrays plus JSON values, and back.

Arrays of numbers, bools or fixed-width strings keep their exact dtype and bytes (the
artifact stores them as ``.npy`` members). Object arrays (categories mixing strings,
None and NaN; an imputer's fill values) and scalar parameters go into the JSON header
as plain JSON values, with ``{"float": "nan"}`` (or ``"inf"``, ``"-inf"``) for the floats
JSON cannot spell. Nothing here needs pickle, in either direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from gateway.transformer.base import Op, Unsupported
from gateway.transformer.columns import Array

_STORABLE_KINDS = "biufU"  # numpy kinds stored as arrays; object arrays go to JSON


class Malformed(Exception):
    """The description does not have the shape the loader expects (the message says where)."""


class Writer:
    """Collects the arrays of one program while its steps describe themselves."""

    def __init__(self) -> None:
        self.arrays: dict[str, Array] = {}

    def op(self, op: Any) -> dict[str, Any]:
        kind, to_ir = getattr(op, "kind", None), getattr(op, "to_ir", None)
        if kind is None or to_ir is None:
            raise Unsupported(f"{type(op).__name__} has no stored form")
        return {"kind": kind, **to_ir(self)}

    def array(self, a: Any) -> dict[str, Any] | None:
        if a is None:
            return None
        a = np.asarray(a)
        if a.dtype.kind == "O":
            if a.ndim != 1:
                raise Unsupported(f"a {a.ndim}-D object array cannot be stored")
            return {"values": [self.value(v) for v in a.tolist()]}
        if a.dtype.kind not in _STORABLE_KINDS:
            raise Unsupported(f"an array of dtype {a.dtype} cannot be stored")
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.ascontiguousarray(a)
        return {"array": name}

    def value(self, v: Any) -> Any:
        """A scalar as JSON; the type survives the round trip (bool, int, float, str, None)."""
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            return str(v)  # numpy's str_ too: equal and hashing alike
        if isinstance(v, np.bool_):
            return bool(v)
        if isinstance(v, int | np.integer):
            return int(v)
        if isinstance(v, float | np.floating):
            f = float(v)
            return f if math.isfinite(f) else {"float": repr(f)}
        raise Unsupported(f"a value of type {type(v).__name__} cannot be stored")

    @staticmethod
    def dtype(dt: Any) -> str:
        return str(np.dtype(dt).str)


class Reader:
    """Rebuilds steps from their description; ``kinds`` maps each step kind to its class."""

    def __init__(self, arrays: Mapping[str, Array], kinds: Mapping[str, Any]) -> None:
        self.arrays = arrays
        self.kinds = kinds

    def op(self, d: Any) -> Op:
        if not isinstance(d, dict):
            raise Malformed(f"a step must be an object, not {type(d).__name__}")
        kind = d.get("kind")
        cls = self.kinds.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise Malformed(f"unknown step kind {d.get('kind')!r}")
        op: Op = cls.from_ir(d, self)
        return op

    def array(self, d: Any) -> Array | None:
        if d is None:
            return None
        if isinstance(d, dict) and "array" in d:
            a = self.arrays.get(d["array"])
            if a is None:
                raise Malformed(f"array {d['array']!r} is missing")
            return a
        if isinstance(d, dict) and isinstance(d.get("values"), list):
            values = [self.value(v) for v in d["values"]]
            out = np.empty(len(values), dtype=object)
            out[:] = values
            return out
        raise Malformed(f"not an array reference: {str(d)[:80]}")

    def arrays_of(self, d: dict[str, Any], key: str) -> list[Array]:
        out = [self.array(a) for a in self.listed(d, key)]
        if any(a is None for a in out):
            raise Malformed(f"{key!r} holds a null array")
        return [a for a in out if a is not None]

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, bool | int | float | str):
            return v
        if isinstance(v, dict) and v.get("float") in ("nan", "inf", "-inf"):
            return float(v["float"])
        raise Malformed(f"not a stored value: {str(v)[:80]}")

    @staticmethod
    def dtype(s: Any) -> np.dtype[Any]:
        if not isinstance(s, str):
            raise Malformed(f"not a dtype: {s!r}")
        return np.dtype(s)

    @staticmethod
    def listed(d: dict[str, Any], key: str) -> list[Any]:
        v = d.get(key)
        if not isinstance(v, list):
            raise Malformed(f"{key!r} must be a list")
        return v

    def names(self, d: dict[str, Any], key: str) -> list[str]:
        v = self.listed(d, key)
        if not all(isinstance(s, str) for s in v):
            raise Malformed(f"{key!r} must be a list of strings")
        return v
