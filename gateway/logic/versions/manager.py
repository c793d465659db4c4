"""The manager: every version a worker knows, its state, and the leases requests hold on it.

States are TF-Serving's: a version the source aspires is LOADING while its files are
verified and loaded and until the backend (the graph) reports it AVAILABLE and warm-up
requests through the full path pass; then it is AVAILABLE and routable. A version no
longer aspired becomes UNLOADING (no new request is routed to it) once another version
is available, and END when its last in-flight request has finished. A version that
fails to load or warm up ends in END with the error, and is tried again only when its
directory changes; what was serving keeps serving.

One manager per worker process, polled by a thread of its own every ``interval_s``;
workers converge on the same state within one poll interval.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol

from gateway.errors import GatewayError
from gateway.logic.versions import routing
from gateway.logic.versions.loader import ModelVersion
from gateway.logic.versions.source import Observed, VersionSource

log = logging.getLogger("gateway.logic")
KEEP_ENDED = 10  # ended versions kept in the status, newest first (as TF-Serving lists them)


class State(IntEnum):
    """ModelVersionStatus.State numbers, as TF-Serving reports them."""

    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass
class Slot:
    version: int
    state: State = State.START
    error: str = ""  # why it ended (load, graph or warm-up failure), or what it waits for
    mv: ModelVersion | None = None
    in_flight: int = 0
    fingerprint: tuple[Any, ...] = ()
    since: float = field(default_factory=time.monotonic)


class Backend(Protocol):
    def served(self) -> dict[int, Any] | None:
        """Versions the backend serves now, by number, each with ``state`` and ``error`` (None:
        the model runs in-process, so every loaded version is served). Raises GatewayError when
        the backend cannot be asked."""
        ...


@dataclass(frozen=True)
class Leased:
    mv: ModelVersion
    via: str | None  # a label name, "canary", or None (default or pinned version)


def fingerprint(path: Path) -> tuple[Any, ...]:
    """Names, sizes and mtimes of a version directory: a re-published version looks different."""
    items = []
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.stat(os.path.join(root, f))
            except OSError:
                continue
            items.append((os.path.relpath(os.path.join(root, f), path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(items))


Events = Callable[[int, str, str], None]  # (version, event, detail)


class VersionManager:
    def __init__(
        self,
        name: str,
        source: VersionSource,
        load: Callable[[int, Path], ModelVersion],
        backend: Backend,
        warm: Callable[[ModelVersion], None] | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.spec = source.spec.versions
        self._load = load
        self._backend = backend
        self.warm = warm
        self.events: Events = lambda version, event, detail: None
        # Each background poll's backend check (did the status call answer?), after the versions
        # moved on it.
        self.on_backend: Callable[[bool], None] = lambda ok: None
        self._slots: dict[int, Slot] = {}
        self._ended: list[Slot] = []
        self._lock = threading.Condition()
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.routing = routing.Routing(model=name)
        self.observed = Observed({}, [])
        self.backend_problem = ""

    # -- requests ------------------------------------------------------
    @contextmanager
    def lease(self, version: int | None, label: str | None, entity: str | None) -> Iterator[Leased]:
        """The version a request is pinned to, held until the request is done."""
        with self._lock:
            chosen, via = self.routing.pick(version, label, entity)
            slot = self._slots[chosen]
            slot.in_flight += 1
        try:
            assert slot.mv is not None  # routable slots hold their version
            yield Leased(slot.mv, via)
        finally:
            with self._lock:
                slot.in_flight -= 1
                if slot.in_flight == 0:
                    self._lock.notify_all()
            if slot.state == State.UNLOADING and slot.in_flight == 0:
                self._finish_unloads()

    def held(self, version: int) -> ModelVersion | None:
        """An available version's model, for work off the request path (shadow scoring)."""
        with self._lock:
            slot = self._slots.get(version)
            return slot.mv if slot is not None and slot.state == State.AVAILABLE else None

    def refresh_labels(self) -> None:
        """Re-read the labels now (a request named a label this worker has not seen yet)."""
        with self._poll_lock:
            observed = self.source.read()
            with self._lock:
                self.observed = Observed(
                    self.observed.on_disk, self.observed.aspired, observed.labels, observed.problem
                )
                self._reroute()

    def missing(self, version: int, reason: str) -> None:
        """The backend does not serve ``version`` after all: stop routing to it until it does."""
        with self._lock:
            slot = self._slots.get(version)
            if slot is None or slot.state != State.AVAILABLE:
                return
            slot.state, slot.error, slot.since = (
                State.LOADING,
                f"backend does not serve it: {reason}",
                time.monotonic(),
            )
            self._reroute()
        log.warning("model %s version %d: %s", self.name, version, reason)
        self.events(version, "backend_missing", reason)

    # -- polling -------------------------------------------------------
    def poll(self) -> None:
        """One pass: load what is aspired, promote what the backend serves, release what is not aspired."""
        with self._poll_lock:
            observed = self.source.read()
            self.observed = observed
            for v in observed.aspired:
                self._maybe_load(v, observed.on_disk[v])
            served = self._served()
            for slot in self._slots_in(State.LOADING):
                self._advance(slot, served)
            self._demote_unserved(served)
            self._retire(set(observed.aspired))
            self._finish_unloads()
            with self._lock:
                self._reroute()
            if self._thread is not None:  # a check that repeats: only then may the circuit rely on it
                self.on_backend(served != "unknown")

    def wait_available(self, timeout_s: float, tick: Callable[[], None] = lambda: None) -> bool:
        """Poll quickly until a version is available for requests naming none (True), or ``timeout_s``.

        ``tick`` runs between polls (a gunicorn worker's heartbeat while it is not accepting yet).
        """
        deadline = time.monotonic() + timeout_s
        while self.routing.default is None and time.monotonic() < deadline:
            tick()
            self._stop.wait(0.1)
            try:
                self.poll()
            except Exception:
                log.exception("model %s: version poll failed", self.name)
        return self.routing.default is not None

    def start(self, interval_s: float) -> None:
        if interval_s <= 0 or self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.poll()
                except Exception:  # a poll must never kill the poller
                    log.exception("model %s: version poll failed", self.name)

        self._thread = threading.Thread(target=loop, name="version-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _slots_in(self, state: State) -> list[Slot]:
        with self._lock:
            return [s for s in self._slots.values() if s.state == state]

    def _maybe_load(self, version: int, path: Path) -> None:
        with self._lock:
            slot = self._slots.get(version)
            if slot is not None and slot.state in (State.LOADING, State.AVAILABLE, State.UNLOADING):
                return
        fp = fingerprint(path)
        if slot is not None and slot.fingerprint == fp:
            return  # refused before and unchanged since
        slot = Slot(version, State.LOADING, "loading", fingerprint=fp)
        with self._lock:
            self._slots[version] = slot
        try:
            slot.mv = self._load(version, path)
        except Exception as e:  # ArtifactError, ConfigError, an unreadable file: refused, reported
            self._refuse(
                slot, "refused", f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)
            )
            return
        slot.error = "waiting for the graph to report it AVAILABLE"
        log.info("model %s version %d: loaded from %s", self.name, version, path)
        self.events(version, "loaded", "")

    def _served(self) -> dict[int, Any] | str | None:
        try:
            served = self._backend.served()
        except GatewayError as e:
            self.backend_problem = e.msg
            return "unknown"
        self.backend_problem = ""
        return served

    def _advance(self, slot: Slot, served: dict[int, Any] | str | None) -> None:
        """A loaded version goes AVAILABLE once the backend serves it and warm-up passes."""
        if slot.mv is None or served == "unknown":
            return
        if isinstance(served, dict):
            there = served.get(slot.version)
            if there is not None and there.state == "END" and there.error:
                self._refuse(slot, "graph_failed", f"the graph failed to load it: {there.error}")
                return
            if there is None or there.state != "AVAILABLE":
                state = there.state if there is not None else "unknown to it"
                slot.error = f"waiting for the graph to report it AVAILABLE (graph: {state})"
                return
        if self.warm is not None:
            try:
                for _ in range(self.spec.warmup_requests):
                    self.warm(slot.mv)
            except GatewayError as e:
                if e.status >= 500:  # the graph or Redis is busy or restarting: try again next poll
                    slot.error = f"warm-up will be retried: {e.msg}"
                    return
                self._refuse(slot, "warmup_failed", f"warm-up failed: {e.msg}")
                return
            except Exception as e:
                self._refuse(slot, "warmup_failed", f"warm-up failed: {type(e).__name__}: {e}")
                return
        with self._lock:
            slot.state, slot.error, slot.since = State.AVAILABLE, "", time.monotonic()
        log.info("model %s version %d: AVAILABLE", self.name, slot.version)
        self.events(slot.version, "available", "")

    def _demote_unserved(self, served: dict[int, Any] | str | None) -> None:
        """An available version the graph no longer reports AVAILABLE stops taking requests."""
        if not isinstance(served, dict):
            return
        for slot in self._slots_in(State.AVAILABLE):
            there = served.get(slot.version)
            if there is None or there.state != "AVAILABLE":
                self.missing(slot.version, f"the graph reports it {there.state if there else 'unknown'}")

    def _retire(self, aspired: set[int]) -> None:
        """Versions no longer aspired leave once an aspired one is available (availability preserving)."""
        with self._lock:
            up = any(s.state == State.AVAILABLE for v, s in self._slots.items() if v in aspired)
            for v, slot in list(self._slots.items()):
                if v in aspired or slot.state == State.UNLOADING:
                    continue
                if slot.state == State.AVAILABLE and not up:
                    continue  # the last one serving stays until a successor is up
                if slot.state == State.AVAILABLE:
                    slot.state, slot.error, slot.since = State.UNLOADING, "", time.monotonic()
                    log.info("model %s version %d: UNLOADING", self.name, v)
                else:  # loading, or refused: nothing routes to it
                    self._end(slot, slot.error if slot.state == State.END else "")

    def _finish_unloads(self) -> None:
        ended = []
        with self._lock:
            for slot in list(self._slots.values()):
                if slot.state == State.UNLOADING and slot.in_flight == 0:
                    self._end(slot, "")
                    ended.append(slot.version)
            if ended:
                self._reroute()
        for v in ended:
            log.info("model %s version %d: unloaded", self.name, v)
            self.events(v, "unloaded", "")

    def _end(self, slot: Slot, error: str) -> None:
        # Caller holds the lock.
        slot.state, slot.error, slot.mv, slot.since = State.END, error, None, time.monotonic()
        del self._slots[slot.version]
        self._ended = [slot, *[s for s in self._ended if s.version != slot.version]][:KEEP_ENDED]

    def _refuse(self, slot: Slot, event: str, error: str) -> None:
        log.error("model %s version %d: %s", self.name, slot.version, error)
        with self._lock:
            slot.state, slot.error, slot.mv, slot.since = State.END, error, None, time.monotonic()
        self.events(slot.version, event, error)

    def _reroute(self) -> None:
        # Caller holds the lock.
        available = {v for v, s in self._slots.items() if s.state == State.AVAILABLE}
        held = {v for v, s in self._slots.items() if s.state != State.END}
        waiting = "; ".join(
            f"version {v}: {s.error or s.state.name}"
            for v, s in sorted(self._slots.items())
            if v not in available
        )
        if not self._slots:
            waiting = f"no published version under {self.source.base}"
        self.routing = routing.build(self.name, self.spec, available, held, self.observed.labels, waiting)

    # -- status --------------------------------------------------------
    def status(self) -> list[Slot]:
        """Every version this worker knows, newest first; ended ones last seen (TF-Serving's listing)."""
        with self._lock:
            current = sorted(self._slots.values(), key=lambda s: -s.version)
            seen = {s.version for s in current}
            return current + [s for s in self._ended if s.version not in seen]
