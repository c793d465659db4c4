"""Server-side batching: concurrent Predicts on one signature merged into one session run.

Semantics follow TF-Serving's shared batch scheduler and batching session,
driven by the same ``BatchingParameters`` fields:

* requests are queued per (servable, signature, outputs, input aliases with
  dtype and shape tail), so only tensors that can be concatenated meet;
* a queue holds at most ``max_enqueued_batches`` batches (the open one
  included); a request that does not fit the open batch and would need one
  more answers UNAVAILABLE "The batch scheduling queue ... is full";
* a batch is processed once full, or once its oldest request has waited
  ``batch_timeout_micros`` (0: as soon as a batch thread is free);
* ``num_batch_threads`` threads process batches from every queue in turn;
* the merged batch is padded up to the next ``allowed_batch_sizes`` entry by
  repeating the first row of the last request, run once, and split back.

Requests whose inputs have no batch dimension (no inputs, or scalars) bypass
the queues and run directly, as TF-Serving runs requests that match no
batching signature. ``pad_variable_length_inputs`` and large-batch splitting
are not implemented: requests with different shape tails go to different
queues, and a request larger than ``max_batch_size`` is refused.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from gateway.graph_server.errors import ServingError, internal, invalid, unavailable
from gateway.graph_server.runner import Arrays, Outputs, PreparedPredict, timeout_ms

log = logging.getLogger("gateway.graph_server")

BatchHook = Callable[[Any, str, int, int], None]


@dataclass(frozen=True)
class BatchingOptions:
    """Scheduler settings; defaults are TF-Serving's when a field is left out."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: tuple[int, ...] = ()

    @classmethod
    def from_proto(cls, msg: Any) -> BatchingOptions:
        """From a ``BatchingParameters`` message; raises ValueError on an inconsistent file."""
        d = cls()

        def get(name: str, default: int) -> int:
            return int(getattr(msg, name).value) if msg.HasField(name) else default

        opts = cls(
            max_batch_size=get("max_batch_size", d.max_batch_size),
            batch_timeout_micros=get("batch_timeout_micros", d.batch_timeout_micros),
            max_enqueued_batches=get("max_enqueued_batches", d.max_enqueued_batches),
            num_batch_threads=get("num_batch_threads", d.num_batch_threads),
            allowed_batch_sizes=tuple(int(v) for v in msg.allowed_batch_sizes),
        )
        opts.validate()
        if msg.pad_variable_length_inputs:
            log.warning("pad_variable_length_inputs is not supported; shapes must match to be batched")
        if msg.HasField("enable_large_batch_splitting") and msg.enable_large_batch_splitting.value:
            log.warning("enable_large_batch_splitting is not supported; max_batch_size bounds each request")
        return opts

    def validate(self) -> None:
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"batching parameter {name} must be >= 1, got {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError(f"batch_timeout_micros must be >= 0, got {self.batch_timeout_micros}")
        sizes = self.allowed_batch_sizes
        if sizes:
            if any(b <= a for a, b in itertools.pairwise(sizes)) or sizes[0] < 1:
                raise ValueError("allowed_batch_sizes entries must be positive and monotonically increasing")
            if sizes[-1] != self.max_batch_size:
                raise ValueError(
                    "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                    f"{sizes[-1]}; expected {self.max_batch_size}"
                )

    def padded_size(self, size: int) -> int:
        for allowed in self.allowed_batch_sizes:
            if allowed >= size:
                return allowed
        return size


class _Task:
    __slots__ = ("done", "error", "inputs", "outputs", "size")

    def __init__(self, inputs: dict[str, np.ndarray[Any, Any]], size: int) -> None:
        self.inputs = inputs
        self.size = size
        self.done = threading.Event()
        self.outputs: Outputs = {}
        self.error: ServingError | None = None


@dataclass
class _Batch:
    opened: float
    tasks: list[_Task] = field(default_factory=list)
    size: int = 0


@dataclass
class _Queue:
    servable: Any  # strong reference only while requests are queued (they hold leases too)
    template: PreparedPredict
    batches: deque[_Batch] = field(default_factory=deque)


class BatchingRunner:
    """A Runner that merges concurrent Predicts; see the module docstring for the rules."""

    def __init__(self, options: BatchingOptions, on_batch: BatchHook | None = None) -> None:
        options.validate()
        self.options = options
        self._on_batch = on_batch
        self._cond = threading.Condition()
        self._queues: dict[tuple[Any, ...], _Queue] = {}
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for t in self._threads:
            t.start()

    def predict(
        self,
        servable: Any,
        signature_name: str,
        inputs: Arrays,
        output_filter: Sequence[str],
        timeout_s: float | None = None,
    ) -> tuple[str, Outputs]:
        prepared = servable.prepare_predict(signature_name, inputs, output_filter)
        feeds = prepared.inputs
        if not feeds or any(v.ndim == 0 for v in feeds.values()):
            return prepared.signature_name, servable.run_prepared(prepared, timeout_ms(timeout_s))
        sizes = {v.shape[0] for v in feeds.values()}
        if len(sizes) != 1:
            raise invalid("Batching Run() input tensors must have equal 0th-dimension size")
        size = sizes.pop()
        if size > self.options.max_batch_size:
            raise invalid(
                f"Task size {size} is larger than maximum input batch size {self.options.max_batch_size}"
            )
        task = _Task(feeds, size)
        self._enqueue(servable, prepared, task)
        if not task.done.wait(timeout_s):
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Timed out waiting for the batch to run")
        if task.error is not None:
            raise task.error
        return prepared.signature_name, task.outputs

    def queued_rows(self) -> int:
        """Rows waiting in every queue (not yet taken by a batch thread)."""
        with self._cond:
            return sum(b.size for q in self._queues.values() for b in q.batches)

    def _enqueue(self, servable: Any, prepared: PreparedPredict, task: _Task) -> None:
        tail = tuple((a, v.dtype.str, v.shape[1:]) for a, v in sorted(task.inputs.items()))
        key = (id(servable), prepared.signature_name, prepared.outputs, tail)
        with self._cond:
            if self._closed:
                raise unavailable("The batch scheduler is shutting down")
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(servable, prepared)
            now = time.monotonic()
            open_batch = queue.batches[-1] if queue.batches else None
            if open_batch is None or open_batch.size + task.size > self.options.max_batch_size:
                if open_batch is not None and len(queue.batches) >= self.options.max_enqueued_batches:
                    raise unavailable("The batch scheduling queue to which this task was submitted is full")
                open_batch = _Batch(opened=now)
                queue.batches.append(open_batch)
            open_batch.tasks.append(task)
            open_batch.size += task.size
            self._cond.notify()

    # -- batch threads -------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    found, wait = self._take_ready(time.monotonic())
                    if found is not None:
                        if self._queues:
                            self._cond.notify()  # more may be ready: wake another thread
                        break
                    self._cond.wait(wait)
            self._process(*found)

    def _take_ready(self, now: float) -> tuple[tuple[_Queue, _Batch] | None, float | None]:
        """The next batch to run, round-robin over queues; else how long until one is due."""
        timeout = self.options.batch_timeout_micros / 1e6
        wait: float | None = None
        for key in list(self._queues):
            queue = self._queues[key]
            first = queue.batches[0]
            closed = len(queue.batches) > 1 or first.size >= self.options.max_batch_size
            due = first.opened + timeout
            if closed or now >= due:
                queue.batches.popleft()
                # Move this queue to the back so other queues get the next turn.
                del self._queues[key]
                if queue.batches:
                    self._queues[key] = queue
                return (queue, first), None
            wait = due - now if wait is None else min(wait, due - now)
        return None, wait

    def _process(self, queue: _Queue, batch: _Batch) -> None:
        tasks, size = batch.tasks, batch.size
        padded = self.options.padded_size(size)
        try:
            outputs = self._run(queue, tasks, size, padded)
            offset = 0
            for t in tasks:
                t.outputs = {a: v[offset : offset + t.size] for a, v in outputs.items()}
                offset += t.size
        except Exception as e:
            err = e if isinstance(e, ServingError) else internal(f"{type(e).__name__}: {e}")
            if not isinstance(e, ServingError):
                log.exception("batch of %d failed", size)
            for t in tasks:
                t.error = err
        finally:
            for t in tasks:
                t.done.set()
        if self._on_batch is not None:
            self._on_batch(queue.servable, queue.template.signature_name, size, padded)

    @staticmethod
    def _run(queue: _Queue, tasks: list[_Task], size: int, padded: int) -> Outputs:
        merged: dict[str, np.ndarray[Any, Any]] = {}
        for alias in queue.template.inputs:
            parts = [t.inputs[alias] for t in tasks]
            if padded > size:
                parts.append(np.repeat(parts[-1][:1], padded - size, axis=0))
            merged[alias] = parts[0] if len(parts) == 1 else np.concatenate(parts)
        t = queue.template
        outputs: Outputs = queue.servable.run_prepared(
            PreparedPredict(t.signature_name, t.signature, merged, t.outputs)
        )
        for alias, value in outputs.items():
            if value.ndim == 0 or value.shape[0] != padded:
                raise internal(
                    f"Batched output tensor '{alias}' has shape {list(value.shape)}; "
                    f"its 0th dimension must equal the batch size {padded}"
                )
        return outputs

    def close(self) -> None:
        """Stop the batch threads; requests still queued answer UNAVAILABLE."""
        with self._cond:
            self._closed = True
            pending = [t for q in self._queues.values() for b in q.batches for t in b.tasks]
            self._queues.clear()
            self._cond.notify_all()
        for t in pending:
            t.error = unavailable("The batch scheduler is shutting down")
            t.done.set()
        for thread in self._threads:
            thread.join(timeout=5)
