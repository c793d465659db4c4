"""Shadow scoring: the candidate version scores the same requests off the request path.

After a request is answered, its validated input and features go into a bounded queue
(never blocking: when the queue is full the request is not shadowed, and that is
counted); a thread per worker scores them with the version behind the shadow label
and reports how far its scores are from the ones returned.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.featurestore.reader import Features
    from gateway.logic.orchestrator import Scored, Scorer
    from gateway.logic.request import ScoreRequest

log = logging.getLogger("gateway.logic")


class Shadow:
    def __init__(self, scorer: Scorer, size: int) -> None:
        self.scorer = scorer
        self.queue: queue.Queue[tuple[Any, Any, Any, int]] = queue.Queue(maxsize=size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def offer(self, req: ScoreRequest, feats: Features, scored: Scored) -> None:
        target = self.scorer.versions.routing.shadow
        if target is None or target == scored.model["version"]:
            return
        try:
            self.queue.put_nowait((req, feats, scored, target))
        except queue.Full:
            self.scorer.events.shadow_dropped(self.scorer.spec.name, "queue_full")
            return
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._loop, name="shadow", daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            req, feats, scored, version = self.queue.get()
            try:
                self._score(req, feats, scored, version)
            except Exception:  # a shadow failure must never reach the request path or kill the thread
                log.exception("shadow scoring with version %d failed", version)

    def _score(self, req: ScoreRequest, feats: Features, scored: Scored, version: int) -> None:
        s = self.scorer
        mv = s.versions.held(version)
        if mv is None:
            s.events.shadow_dropped(s.spec.name, "version_gone")
            return
        try:
            raw = s.predict(req, feats, mv, [])
        except GatewayError as e:
            s.events.shadow_dropped(s.spec.name, e.code)
            return
        key = s.spec.postprocess.score_field
        theirs = s._shape(req, raw)
        if req.item_ids:  # ranking answers are sorted and cut: compare by item
            ours = {r["item_id"]: r[key] for r in scored.data}
            pairs = [(ours[r["item_id"]], r[key]) for r in theirs if r["item_id"] in ours]
        else:
            pairs = [(a[key], b[key]) for a, b in zip(scored.data, theirs, strict=True)]
        diffs = np.abs(np.array([b - a for a, b in pairs], dtype=np.float64)).tolist()
        s.events.shadow_scored(s.spec.name, version, diffs)
