"""Load shedding: a bound on the requests a worker holds, so overload never becomes an unbounded queue.

Two places count. The gunicorn worker (``gateway.logic.web.worker``) counts every request
it holds, queued for a thread or being handled, and marks those beyond the spec's
``overload.max_in_flight`` as shed before a thread reaches them (``SHED``); the scorer
also counts the requests it is scoring at once (any server). A shed request is answered
at once with the spec's choice: a fallback answer, or 429/503 with ``Retry-After``.

A shed answer also closes its connection (the worker reads :func:`take_shed`). A keep-alive
connection stays with the worker that accepted it, so a worker that happened to accept more
than its share of a client pool's connections would shed while another worker idles; closing
makes that client connect again, and the next connection goes to whichever worker accepts it.
"""

from __future__ import annotations

import threading

SHED = threading.local()  # .active: the worker marked the request this thread handles as shed
# .answered: this thread's last request was answered as shed (by either count)


def marked_shed() -> bool:
    return bool(getattr(SHED, "active", False))


def note_shed() -> None:
    """The request this thread handles is being answered as shed."""
    SHED.answered = True


def take_shed() -> bool:
    """Whether this thread's request since the last call was answered as shed; resets it."""
    answered = bool(getattr(SHED, "answered", False))
    SHED.answered = False
    return answered


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
