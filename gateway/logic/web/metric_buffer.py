"""Metric updates applied in batches: one write per touched value per interval, not per request.

Under gunicorn, prometheus_client keeps every counter and histogram bucket in a
memory-mapped file per worker, and each update takes a lock, checks the process
id and writes the mmap. A scored request touches ~30 such values (five stage
histograms, latency, items, a bucket per distinct score, counters), which cost
more than the rest of the metrics bookkeeping. Here a request only adds its
amounts to a dict under one lock; the sums reach prometheus_client's values

- every ``flush_ms`` (``GATEWAY_METRICS_FLUSH_MS``; a daemon thread),
- before this worker answers ``/metrics``,
- when the worker exits (gunicorn's exit hooks and ``atexit`` call :func:`flush`).

A family of many counters updated together (the drift bins of a version) is a :class:`Tally`:
one numpy array per family, added to in one operation per answer, applied at the same flushes.

A scrape that lands on another worker sees this worker's last ``flush_ms`` at
most late, which Prometheus' own scrape interval dwarfs. ``flush_ms=0`` applies
every update at once. Counts and sums are exact either way; a worker killed
without running Python's exit path loses at most ``flush_ms`` of updates.

The values updated are prometheus_client's own per-child ones (``_value`` of a
counter, ``_buckets``/``_sum`` of a histogram). Should a release of the library
rename them, children are updated through their public methods instead.
"""

from __future__ import annotations

import atexit
import math
import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


class Tally:
    """Many counters of one family summed in one numpy array between flushes: an update is one
    array addition however many of them it touches (a ranking answer's drift bins: about 70).
    ``child(i)`` is the counter of position ``i``, made on its first flush."""

    def __init__(self, size: int, child: Callable[[int], Any]) -> None:
        self.counts = np.zeros(size, dtype=np.int64)
        self._child = child
        self._children: dict[int, Any] = {}

    def apply(self, counts: Array) -> None:
        for i in np.flatnonzero(counts):
            c = self._children.get(int(i))
            if c is None:
                c = self._children[int(i)] = self._child(int(i))
            c.inc(float(counts[i]))


class PendingMetrics:
    """Per-process sums of counter and histogram updates, applied to prometheus_client in batches."""

    def __init__(self, flush_ms: int = 1000) -> None:
        self.flush_s = flush_ms / 1000
        self._sums: dict[int, list[Any]] = {}  # id(value) -> [value, amount]
        self._tallies: list[Tally] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None

    @property
    def buffered(self) -> bool:
        return self.flush_s > 0

    def inc(self, counter: Any, amount: float = 1.0) -> None:
        value = getattr(counter, "_value", None)
        if not self.buffered or value is None:
            counter.inc(amount)
            return
        with self._lock:
            self._add(value, amount)
        self._ensure_flusher()

    def tally(self, tally: Tally, counts: Array) -> None:
        """Add ``counts`` (one per position) to ``tally``'s counters."""
        if not self.buffered:
            tally.apply(counts)
            return
        with self._lock:
            if tally not in self._tallies:  # at most one entry per version's drift bins
                self._tallies.append(tally)
            tally.counts += counts
        self._ensure_flusher()

    def observe(self, hist: Any, values: Iterable[float]) -> None:
        """``hist.observe(v)`` for each of ``values``."""
        bounds = getattr(hist, "_upper_bounds", None)
        buckets = getattr(hist, "_buckets", None)
        total = getattr(hist, "_sum", None)
        if not self.buffered or bounds is None or buckets is None or total is None:
            for v in values:
                hist.observe(v)
            return
        counts, amount = bucket_counts(bounds, values)
        with self._lock:
            for i, n in counts:
                self._add(buckets[i], n)
            self._add(total, amount)
        self._ensure_flusher()

    def _add(self, value: Any, amount: float) -> None:
        entry = self._sums.get(id(value))
        if entry is None:
            self._sums[id(value)] = [value, amount]
        else:
            entry[1] += amount

    def flush(self) -> None:
        """Apply every pending sum (cheap when nothing is pending)."""
        with self._lock:
            sums, self._sums = self._sums, {}
            taken = []
            for t in self._tallies:
                taken.append((t, t.counts))
                t.counts = np.zeros_like(t.counts)
            self._tallies = []
        for value, amount in sums.values():
            value.inc(amount)
        for t, counts in taken:
            t.apply(counts)

    def reconfigure(self, flush_ms: int) -> None:
        self.flush()
        self.flush_s = flush_ms / 1000
        self._wake.set()

    def _ensure_flusher(self) -> None:
        if self._flusher is None:
            with self._lock:
                if self._flusher is None:
                    self._flusher = threading.Thread(target=self._loop, name="metrics-flush", daemon=True)
                    self._flusher.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.flush_s if self.buffered else None)
            self._wake.clear()
            self.flush()

    def _after_fork(self) -> None:
        # The parent's pending sums are the parent's to apply; the flusher did not survive the fork.
        self._sums = {}
        for t in self._tallies:
            t.counts[:] = 0
        self._tallies = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._flusher = None


def bucket_counts(bounds: Sequence[float], values: Iterable[float]) -> tuple[list[tuple[int, int]], float]:
    """(bucket index, count) pairs and the sum, as ``observe`` per value would count them.

    A value lands in the first bucket whose upper bound it does not exceed; NaN in none.
    """
    vals = values if isinstance(values, list) else list(values)
    if len(vals) < 8:
        counts: dict[int, int] = {}
        for v in vals:
            if not math.isnan(v):
                i = bisect_left(bounds, v)
                counts[i] = counts.get(i, 0) + 1
        return list(counts.items()), float(sum(vals))
    arr = np.asarray(vals, dtype=np.float64)
    per = np.bincount(np.searchsorted(bounds, arr[~np.isnan(arr)], side="left"), minlength=len(bounds))
    return [(int(i), int(per[i])) for i in np.flatnonzero(per[: len(bounds)])], float(arr.sum())


PENDING = PendingMetrics()


def configure(flush_ms: int) -> PendingMetrics:
    PENDING.reconfigure(flush_ms)
    return PENDING


def flush() -> None:
    """Apply this process's pending metric updates (exit hooks and ``/metrics`` call this)."""
    PENDING.flush()


atexit.register(flush)
os.register_at_fork(after_in_child=PENDING._after_fork)
