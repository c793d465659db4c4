"""Model version lifecycle: which versions should be served, loading and unloading them.

Mirrors TF-Serving's file-system source + availability-preserving policy:

* each model has a base path of numeric version directories and a version policy
  (latest N, all, or specific versions);
* on every poll the aspired versions are computed; new ones are loaded, warmed up
  and only then made AVAILABLE; versions no longer aspired are unloaded, but only
  once at least one aspired version is AVAILABLE (first, when one already is, as
  TF-Serving's AvailabilityPreservingPolicy does), so a half-copied or broken new
  version never takes a good one down;
* a version that failed to load is retried when its directory changes;
* requests lease a servable, so an unload waits for the requests still using it;
* unloaded and failed versions stay in the status as END (with the load error),
  as TF-Serving's servable state monitor reports them;
* version labels may only point at AVAILABLE versions when a config is applied
  (unless allowed otherwise), and GetModelStatus ignores labels, like TF-Serving.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol

import grpc

from gateway.graph_server.errors import ServingError, failed_precondition, invalid, not_found

log = logging.getLogger("gateway.graph_server")


class State(IntEnum):
    """ModelVersionStatus.State numbers, as TF-Serving reports them."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


class Loaded(Protocol):
    name: str
    version: int
    path: Path

    def close(self) -> None: ...


@dataclass
class VersionPolicy:
    kind: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def aspired(self, available: list[int]) -> list[int]:
        if self.kind == "all":
            return list(available)
        if self.kind == "specific":
            return [v for v in available if v in self.versions]
        return available[-max(self.num_versions, 1) :]


@dataclass
class ModelSource:
    name: str
    base_path: Path
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: dict[str, int] = field(default_factory=dict)


@dataclass
class VersionState:
    version: int
    state: State = State.START
    error_code: str = "OK"
    error_message: str = ""
    servable: Any = None
    fingerprint: tuple[Any, ...] = ()
    in_flight: int = 0

    @property
    def failed(self) -> bool:
        return self.state == State.END and self.error_code != "OK"


def dir_fingerprint(path: Path) -> tuple[Any, ...]:
    """Cheap change detector for a version directory (names, sizes, mtimes)."""
    items = []
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.stat(os.path.join(root, f))
            except OSError:
                continue
            items.append((os.path.relpath(os.path.join(root, f), path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(items))


def scan_versions(base: Path) -> dict[int, Path]:
    try:
        entries = list(os.scandir(base))
    except OSError:
        return {}
    return {int(e.name): Path(e.path) for e in entries if e.is_dir() and e.name.isdigit()}


class ModelManager:
    """Owns every loaded servable; safe to call from many request threads."""

    def __init__(
        self,
        loader: Callable[[str, int, Path], Any],
        warmup: Callable[[Any], None] | None = None,
        on_poll: Callable[[], None] | None = None,
    ) -> None:
        self._loader = loader
        self._warmup = warmup
        self._on_poll = on_poll
        self._sources: dict[str, ModelSource] = {}
        self._versions: dict[str, dict[int, VersionState]] = {}
        self._lock = threading.Condition()
        self._poll_lock = threading.Lock()
        self._config_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- configuration -------------------------------------------------
    def set_sources(self, sources: list[ModelSource], allow_unavailable_labels: bool = False) -> None:
        """Apply a model list (start-up, config file change, HandleReloadConfigRequest).

        Labels are checked first, as TF-Serving does: each must point at an
        AVAILABLE version unless ``allow_unavailable_labels`` (then it may not
        move an existing label). Models left out are unloaded; new models are
        loaded now, and a new model without an AVAILABLE version is an error.
        """
        with self._config_lock:
            self._check_labels(sources, allow_unavailable_labels)
            with self._lock:
                old = set(self._sources)
                removed = old - {s.name for s in sources}
                self._sources = {s.name: s for s in sources}
                for s in sources:
                    self._versions.setdefault(s.name, {})
            for name in removed:
                for vs in list(self._versions.get(name, {}).values()):
                    self._unload(name, vs)
            self.poll()
            new = [s.name for s in sources if s.name not in old]
            self._require_available(new)

    def _check_labels(self, sources: list[ModelSource], allow_unavailable: bool) -> None:
        with self._lock:
            for src in sources:
                states = self._versions.get(src.name, {})
                current = self._sources.get(src.name)
                for label, version in src.labels.items():
                    # Allowed: a label for a version not loaded yet, unless it moves an existing label.
                    if allow_unavailable and (
                        current is None or current.labels.get(label, version) == version
                    ):
                        continue
                    vs = states.get(version)
                    if vs is None or vs.state != State.AVAILABLE:
                        raise failed_precondition(
                            f"Request to assign label to version {version} of model {src.name}, "
                            "which is not currently available for inference"
                        )

    def _require_available(self, names: list[str]) -> None:
        problems = []
        for name in names:
            with self._lock:
                states = self._versions.get(name, {})
                if any(s.state == State.AVAILABLE for s in states.values()):
                    continue
                errors = "; ".join(
                    f"version {v}: {s.error_message}" for v, s in sorted(states.items()) if s.error_message
                )
            problems.append(f"{{name: {name}{' due to error: ' + errors if errors else ''}}}")
        if problems:
            raise ServingError(
                grpc.StatusCode.UNKNOWN,
                f"{len(problems)} model(s) did not become available: {{{', '.join(problems)}}}",
            )

    def sources(self) -> dict[str, ModelSource]:
        with self._lock:
            return dict(self._sources)

    # -- polling -------------------------------------------------------
    def poll(self) -> None:
        """One pass over every base path: load new versions, then unload retired ones."""
        with self._poll_lock:
            if self._on_poll is not None:
                self._on_poll()
            for src in self.sources().values():
                self._poll_model(src)

    def start(self, interval_s: float) -> None:
        if interval_s <= 0 or self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.poll()
                except Exception:  # a poll must never kill the poller
                    log.exception("version poll failed")

        self._thread = threading.Thread(target=loop, name="version-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            states = [(n, vs) for n, vers in self._versions.items() for vs in vers.values()]
        for name, vs in states:
            self._unload(name, vs)

    def _poll_model(self, src: ModelSource) -> None:
        on_disk = scan_versions(src.base_path)
        aspired = src.policy.aspired(sorted(on_disk))
        if not on_disk:
            log.warning("model %s: no versions found under %s", src.name, src.base_path)
        # TF-Serving's AvailabilityPreservingPolicy: versions no longer aspired are unloaded first
        # when an aspired one is already available, else only once a new one has come up.
        self._retire(src.name, aspired)
        for v in aspired:
            self._maybe_load(src.name, v, on_disk[v])
        self._retire(src.name, aspired)

    def _retire(self, name: str, aspired: list[int]) -> None:
        with self._lock:
            current = dict(self._versions.get(name, {}))
        any_aspired_up = any(
            current.get(v) is not None and current[v].state == State.AVAILABLE for v in aspired
        )
        for v, vs in current.items():
            if v in aspired or vs.servable is None:
                continue
            if vs.state == State.AVAILABLE and not any_aspired_up:
                continue  # availability preserving: keep serving until a successor is up
            self._unload(name, vs)

    def _maybe_load(self, name: str, version: int, path: Path) -> None:
        with self._lock:
            vs = self._versions.setdefault(name, {}).get(version)
            if vs is not None and vs.state in (State.AVAILABLE, State.LOADING):
                return
        fp = dir_fingerprint(path)  # only walked for versions not loaded
        with self._lock:
            vs = self._versions[name].get(version)
            if vs is not None and (
                vs.state in (State.AVAILABLE, State.LOADING) or (vs.failed and vs.fingerprint == fp)
            ):
                return  # loaded, or failed and unchanged since
            vs = VersionState(version=version, state=State.LOADING, fingerprint=fp)
            self._versions[name][version] = vs
        log.info("model %s: loading version %d from %s", name, version, path)
        try:
            servable = self._loader(name, version, path)
        except Exception as e:
            self._fail(name, vs, e, "failed to load")
            return
        try:
            if self._warmup is not None:
                self._warmup(servable)
        except Exception as e:
            servable.close()
            self._fail(name, vs, e, "failed warmup")
            return
        with self._lock:
            vs.servable, vs.state = servable, State.AVAILABLE
            vs.error_code, vs.error_message = "OK", ""
        log.info("model %s: version %d AVAILABLE", name, version)

    def _fail(self, name: str, vs: VersionState, e: Exception, what: str) -> None:
        log.error("model %s: version %d %s: %s", name, vs.version, what, e)
        with self._lock:
            vs.state = State.END
            if isinstance(e, ServingError):
                vs.error_code, vs.error_message = e.code.name, e.message
            else:
                vs.error_code, vs.error_message = "UNKNOWN", f"{type(e).__name__}: {e}"

    def _unload(self, name: str, vs: VersionState) -> None:
        with self._lock:
            if vs.servable is None:
                return
            vs.state = State.UNLOADING
            while vs.in_flight:
                self._lock.wait(timeout=1.0)
            servable, vs.servable = vs.servable, None
            vs.state = State.END
        servable.close()
        log.info("model %s: version %d unloaded", name, vs.version)

    # -- serving -------------------------------------------------------
    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> VersionState:
        with self._lock:
            versions = self._versions.get(name)
            src = self._sources.get(name)
            if versions is None or src is None:
                what = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
                if label:
                    raise invalid(f"Unrecognized servable version label: {label}")
                raise not_found(f"Servable not found for request: {what}")
            if label:
                if label not in src.labels:
                    raise invalid(f"Unrecognized servable version label: {label}")
                version = src.labels[label]
            if version is None:
                up = [v for v, s in versions.items() if s.state == State.AVAILABLE]
                if not up:
                    raise not_found(f"Servable not found for request: Latest({name})")
                return versions[max(up)]
            vs = versions.get(version)
            if vs is None or vs.state != State.AVAILABLE:
                raise not_found(f"Servable not found for request: Specific({name}, {version})")
            return vs

    @contextmanager
    def lease(self, name: str, version: int | None = None, label: str | None = None) -> Iterator[Any]:
        """Borrow a servable for one request; unloading waits until it is returned."""
        with self._lock:
            vs = self.resolve(name, version, label)
            vs.in_flight += 1
            servable = vs.servable
        try:
            yield servable
        finally:
            with self._lock:
                vs.in_flight -= 1
                if vs.in_flight == 0:
                    self._lock.notify_all()

    def status(self, name: str, version: int | None = None) -> list[VersionState]:
        """Version states, newest first (TF-Serving's order); labels play no part."""
        with self._lock:
            versions = self._versions.get(name)
            if not versions:
                raise not_found(f"Could not find any versions of model {name}")
            if version is not None:
                if version not in versions:
                    raise not_found(f"Could not find version {version} of model {name}")
                return [versions[version]]
            return [versions[v] for v in sorted(versions, reverse=True)]

    def wait_until_settled(self) -> None:
        """Raise unless every configured model has an AVAILABLE version (start-up check)."""
        self._require_available(list(self.sources()))
