"""Drift: live distributions of the score and the key features against the version's baseline.

Packaging records, per version, bins for each transformer column and for the score with the
held-out counts in them (``baseline.bins`` in the manifest; ``gateway.saver.stats.drift_bins``).
Each worker counts what it serves into the same bins (``DriftCounter``: a counter per bin,
``gateway_drift_bin``, so prometheus_client's multiprocess mode sums the workers); a scrape
turns the summed counts into the population stability index per feature and version
(``gateway_drift_psi``). Degraded answers are not counted: their scores come from a fallback.

PSI = sum over bins of (live - base) * ln(live / base), shares smoothed by :data:`EPSILON` so an
empty bin counts as rare, not impossible. Usual reading: below 0.1 stable, 0.1 to 0.25 moderate
shift, above 0.25 significant shift (:func:`band`).
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
SCORE = "score"
EPSILON = 1e-4
STABLE, SHIFTED = 0.1, 0.25


def band(psi: float) -> str:
    if math.isnan(psi):
        return "no data"
    return "stable" if psi < STABLE else "moderate" if psi < SHIFTED else "significant"


def psi(live: Iterable[float], base: Iterable[float]) -> float:
    """PSI of live counts against baseline counts over the same bins (NaN when either is empty)."""
    a, b = np.asarray(list(live), dtype=np.float64), np.asarray(list(base), dtype=np.float64)
    if a.sum() <= 0 or b.sum() <= 0 or a.shape != b.shape:
        return math.nan
    p, q = np.maximum(a / a.sum(), EPSILON), np.maximum(b / b.sum(), EPSILON)
    return float(np.sum((p - q) * np.log(p / q)))


@dataclass
class Bins:
    """One feature's bins: numeric edges, or categories (plus one bin for any other value)."""

    name: str
    baseline: tuple[int, ...]
    edges: Array | None = None  # numeric: value v goes to searchsorted(edges, v); NaN to the last bin
    categories: Mapping[str, int] | None = None

    @property
    def size(self) -> int:
        return len(self.baseline)

    def index_one(self, value: Any) -> int:
        """The bin of one value (a one-record answer: no numpy round trip)."""
        if self.edges is not None:
            v = _float(value)
            return self.size - 1 if math.isnan(v) else bisect_left(self._edge_list, v)
        return (self.categories or {}).get(str(value), self.size - 1)

    @cached_property
    def _edge_list(self) -> list[float]:
        return [] if self.edges is None else self.edges.tolist()

    def index(self, values: Any) -> Array:
        """The bin of each value."""
        if self.edges is not None:
            try:
                v = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError):
                v = np.array([_float(x) for x in values], dtype=np.float64)
            idx = np.searchsorted(self.edges, v, side="left")
            idx[np.isnan(v)] = self.size - 1
            return idx
        cats, other = self.categories or {}, self.size - 1
        return np.array([cats.get(str(x), other) for x in values], dtype=np.int64)

    def labels(self) -> list[str]:
        """A readable name per bin, for reports and plots."""
        if self.edges is not None:
            e = [f"{x:.4g}" for x in self.edges]
            if not e:
                return ["all", "missing"]
            return [
                f"<={e[0]}",
                *[f"({lo},{hi}]" for lo, hi in itertools.pairwise(e)],
                f">{e[-1]}",
                "missing",
            ]
        return [*(self.categories or {}), "other"]


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def version_bins(manifest: Mapping[str, Any]) -> dict[str, Bins]:
    """The bins a version's manifest records (empty for versions packaged before they were)."""
    out: dict[str, Bins] = {}
    for name, b in (manifest.get("baseline") or {}).get("bins", {}).items():
        counts = tuple(int(c) for c in b["counts"])
        if b["kind"] == "numeric":
            out[name] = Bins(name, counts, edges=np.asarray(b["edges"], dtype=np.float64))
        else:
            out[name] = Bins(name, counts, categories={str(c): i for i, c in enumerate(b["categories"])})
    return out


class DriftCounter:
    """One version's bins laid end to end (each feature's, then the score's): an answer's rows
    become positions in that line, one per row and feature, counted with one ``bincount``."""

    def __init__(self, bins: dict[str, Bins]) -> None:
        self.bins = bins
        self.features = [b for name, b in bins.items() if name != SCORE]
        self.score = bins.get(SCORE)
        self.start: dict[str, int] = {}
        self.slots: list[tuple[str, int]] = []  # (feature, bin) of each position
        for b in [*self.features, *([self.score] if self.score is not None else [])]:
            self.start[b.name] = len(self.slots)
            self.slots += [(b.name, i) for i in range(b.size)]
        self.size = len(self.slots)

    def tally(self, columns: Mapping[str, Any], rows: list[dict[str, Any]], scores: list[float]) -> Array:
        """Rows per position for one answer: stored features, request fields, scores."""
        one = len(rows) == 1
        parts: list[Any] = []
        for b in self.features:
            values = columns.get(b.name)
            if values is None:
                if not rows or b.name not in rows[0]:
                    continue
                values = [r.get(b.name) for r in rows]
            start = self.start[b.name]
            parts.append([start + b.index_one(values[0])] if one else start + b.index(values))
        if self.score is not None and scores:
            start = self.start[SCORE]
            one_score = len(scores) == 1
            parts.append(
                [start + self.score.index_one(scores[0])] if one_score else start + self.score.index(scores)
            )
        if not parts:
            return np.zeros(self.size, dtype=np.int64)
        return np.bincount(np.concatenate(parts).astype(np.int64, copy=False), minlength=self.size)

    def counts(
        self, columns: Mapping[str, Any], rows: list[dict[str, Any]], scores: list[float]
    ) -> list[tuple[str, int, int]]:
        """(feature, bin, count) for each bin the answer touches."""
        per = self.tally(columns, rows, scores)
        return [(*self.slots[i], int(per[i])) for i in np.flatnonzero(per)]


def psi_by_feature(
    counts: Mapping[str, Mapping[int, float]], bins: Mapping[str, Bins]
) -> dict[str, tuple[float, int]]:
    """Per feature with live counts: (PSI against the baseline, rows counted)."""
    out: dict[str, tuple[float, int]] = {}
    for name, per_bin in counts.items():
        b = bins.get(name)
        if b is None:
            continue
        live = [per_bin.get(i, 0.0) for i in range(b.size)]
        out[name] = (psi(live, b.baseline), int(sum(live)))
    return out
