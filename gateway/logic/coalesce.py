"""Concurrent Predicts of one worker merged into one graph call, with no added wait.

A request that finds no call of its worker in flight sends at once (it leads). Requests that
arrive while one is in flight queue; when it returns, the first of them leads the next call,
which carries every queued request for the same version (up to ``max_rows`` rows), their
inputs stacked along the batch axis, and each gets its own rows of the output back. At low
load nothing waits; under load the per-call cost of gRPC and of the graph is shared, and
the graph sees the batches TF-Serving's batching would otherwise wait for.

Deadlines: a queued request that is still queued when its deadline passes gets the same
:class:`~gateway.errors.DeadlineExceeded` a slow call gives (so the fallback answers); a
merged call runs within the earliest deadline of its members. An error of a merged call is
every member's error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway import errors

Array = np.ndarray[Any, Any]
# The call: (inputs, version, seconds left) -> output, rows along axis 0.
Call = Callable[[Mapping[str, Array], int, float], Array]


@dataclass(eq=False)
class _Pending:
    inputs: Mapping[str, Array]
    version: int
    rows: int
    deadline: float
    done: threading.Event | None = None  # made only when it queues: a leader never waits
    batch: list[_Pending] | None = None  # set when this request leads a call
    result: Array | None = None
    error: BaseException | None = None


class Coalescer:
    """One per worker and model: a lock, a queue, and at most one call in flight."""

    def __init__(self, call: Call, deadline_s: float, max_rows: int = 512) -> None:
        self.call = call
        self.deadline_s = deadline_s
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._busy = False
        self._queue: list[_Pending] = []
        self.calls = 0  # graph calls made
        self.requests = 0  # requests answered through them

    def predict(self, inputs: Mapping[str, Array], version: int) -> Array:
        rows = len(next(iter(inputs.values())))
        me = _Pending(inputs, version, rows, time.monotonic() + self.deadline_s)
        with self._lock:
            if self._busy:
                me.done = threading.Event()
                self._queue.append(me)
            else:
                self._busy = True
                me.batch = [me]
        if me.batch is None:
            self._wait(me)
        if me.batch is not None:  # this thread leads a call (its own request is in it)
            self._send(me.batch)
            self._hand_over()
        if me.error is not None:
            # The call's own exception object, in every member's thread: its type and fields are
            # what the callers dispatch on (some errors cannot be rebuilt from their args).
            raise me.error
        assert me.result is not None
        return me.result

    def _wait(self, me: _Pending) -> None:
        assert me.done is not None
        if me.done.wait(max(me.deadline - time.monotonic(), 0.0)):
            return
        with self._lock:
            if me in self._queue:  # never sent: the deadline passed in the queue
                self._queue.remove(me)
                me.error = errors.DeadlineExceeded(
                    "graph service: the deadline passed while waiting for the worker's call in flight",
                    status=504,
                    code="graph_deadline_exceeded",
                )
                return
        me.done.wait()  # taken into a call (which has its own deadline), or made its leader

    def _send(self, batch: list[_Pending]) -> None:
        left = max(min(p.deadline for p in batch) - time.monotonic(), 0.001)
        try:
            if len(batch) == 1:
                outputs = [self.call(batch[0].inputs, batch[0].version, left)]
            else:
                merged = {a: np.concatenate([p.inputs[a] for p in batch]) for a in batch[0].inputs}
                out = self.call(merged, batch[0].version, left)
                ends = np.cumsum([p.rows for p in batch])[:-1]
                outputs = np.split(out, ends)
        except BaseException as e:  # every member gets the call's error
            for p in batch:
                p.error = e
        else:
            for p, o in zip(batch, outputs, strict=True):
                p.result = o
        with self._lock:
            self.calls += 1
            self.requests += len(batch)
        for p in batch:
            if p.batch is None and p.done is not None:
                p.done.set()

    def _hand_over(self) -> None:
        """The next call's members and leader (the oldest queued request), or the worker goes idle."""
        with self._lock:
            if not self._queue:
                self._busy = False
                return
            first = self._queue[0]
            aliases = set(first.inputs)
            batch: list[_Pending] = []
            rows = 0
            for p in self._queue:
                if p.version != first.version or set(p.inputs) != aliases:
                    continue
                if batch and rows + p.rows > self.max_rows:
                    break
                batch.append(p)
                rows += p.rows
            for p in batch:
                self._queue.remove(p)
            first.batch = batch
        assert first.done is not None
        first.done.set()
