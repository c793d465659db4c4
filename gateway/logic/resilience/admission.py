"""Load shedding: a bound on the requests a worker holds, so overload never becomes an unbounded queue.

Two places count. The gunicorn worker (``gateway.logic.web.worker``) counts every request
it holds, queued for a thread or being handled, and marks those beyond the spec's
``overload.max_in_flight`` as shed before a thread reaches them (``SHED``); the scorer
also counts the requests it is scoring at once (any server). A shed request is answered
at once with the spec's choice: a fallback answer, or 429/503 with ``Retry-After``.
"""

from __future__ import annotations

import threading

SHED = threading.local()  # .active: the worker marked the request this thread handles as shed


def marked_shed() -> bool:
    return bool(getattr(SHED, "active", False))


class InFlight:
    """A non-blocking counter: ``enter`` says False when ``limit`` requests are in already."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.count >= self.limit:
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.count -= 1
