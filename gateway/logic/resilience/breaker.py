"""A circuit breaker in front of the graph: stop waiting on a graph that is failing.

Closed: calls go through; it opens after ``failures`` consecutive failures, or when the
share of failures over the last ``window_s`` reaches ``error_rate`` (with at least
``min_calls`` calls). Open: calls are refused at once (the fallback answers without a
deadline wait) for at least ``open_s``, and, when something checks the graph's health in
the background (``health``: the version manager's status call every poll), until that check
has passed since it opened, so no request waits on a graph that does not answer at all.
Then half-open: one call goes through as a probe, the others are refused; the probe's
success closes the circuit, its failure opens it again. The version poller sends that probe
itself once its check passes (``Scorer._graph_checked``), so a circuit closes without traffic.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from enum import Enum

from gateway.spec import CircuitSpec


class Circuit(Enum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(self, spec: CircuitSpec, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.clock = clock
        self.state = Circuit.CLOSED
        self.opened_at = 0.0
        self.opened = 0  # times it opened
        self._consecutive = 0
        self._calls: deque[tuple[float, bool]] = deque()
        self._probing = False
        self.watched = False  # a background health check reports to ``health``
        self._healthy_at = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """May a call go to the graph now? (In half-open state, only one probe at a time may.)"""
        with self._lock:
            if self.state == Circuit.CLOSED:
                return True
            if self.state == Circuit.OPEN and self._may_probe():
                self.state = Circuit.HALF_OPEN
            if self.state == Circuit.HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def health(self, ok: bool) -> None:
        """A background check of the graph passed (or not)."""
        self.watched = True
        if ok:
            self._healthy_at = self.clock()

    def _may_probe(self) -> bool:
        waited = self.clock() - self.opened_at >= self.spec.open_s
        return waited and (not self.watched or self._healthy_at > self.opened_at)

    def success(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._record(True)
            if self.state != Circuit.CLOSED:
                self.state, self._probing = Circuit.CLOSED, False
                self._calls.clear()

    def failure(self) -> None:
        with self._lock:
            self._consecutive += 1
            self._record(False)
            if self.state == Circuit.HALF_OPEN or self._tripped():
                self._open()

    def _record(self, ok: bool) -> None:
        now = self.clock()
        self._calls.append((now, ok))
        while self._calls and now - self._calls[0][0] > self.spec.window_s:
            self._calls.popleft()

    def _tripped(self) -> bool:
        if self.state != Circuit.CLOSED:
            return False
        if self._consecutive >= self.spec.failures:
            return True
        n = len(self._calls)
        return n >= self.spec.min_calls and sum(not ok for _, ok in self._calls) / n >= self.spec.error_rate

    def _open(self) -> None:
        self.state, self.opened_at, self._probing = Circuit.OPEN, self.clock(), False
        self.opened += 1
