"""The gunicorn worker class: gthread with a bound on the requests a worker holds.

gunicorn's gthread worker hands every request to a thread pool whose queue has no bound:
under overload, requests wait there for a thread until their clients give up. This worker
counts the requests it is working on (queued for a thread, or being scored) and marks
each one that arrives while ``overload.max_in_flight`` are in as shed: the thread that
takes it answers at once (a fallback answer, or 429/503 with ``Retry-After``, per spec)
instead of scoring it. With more threads than ``max_in_flight`` (the defaults: 8 threads,
6 in flight), the spare threads answer shed requests while the others wait on the graph,
so a shed answer comes back in a millisecond or two and the queue never grows.

A shed answer says ``Connection: close`` and the worker closes the connection after it. A
keep-alive connection is served by the worker that accepted it for as long as it lives, so
when a client pool's connections happen to land unevenly (7 of 8 on one of two workers) that
worker would shed while the other idles; after a shed answer the client connects again and
the new connection goes to whichever worker accepts it first, so the connections spread out
instead of staying put. Clients that open a connection per request are shed as before.

Used as ``worker_class = "gateway.logic.web.worker.SheddingWorker"`` (the gunicorn config's
default). The hooks used are the worker's request entry points (``enqueue_req``,
``handle``) and its WSGI callable (``load_wsgi``), wrapped to close after a shed answer
through the ``force_close`` of the gunicorn response whose ``start_response`` it is given.
"""

from __future__ import annotations

import threading
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from gateway.logic.resilience.admission import SHED, take_shed

DEFAULT_LIMIT = 64


class SheddingWorker(ThreadWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.working = 0  # requests queued for a thread or being handled, not marked shed
        self.shed_marked: set[int] = set()
        self.limit: int | None = None
        self._count = threading.Lock()
        self.app_wsgi: Any = None  # the logic app itself (``wsgi`` wraps it)

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app: Any = self.wsgi  # type: ignore[has-type]
        self.app_wsgi = app

        def closing_when_shed(environ: dict[str, Any], start_response: Any) -> Any:
            take_shed()
            body = app(environ, start_response)
            if take_shed():  # before the body is sent: gunicorn writes the headers with its first chunk
                close = getattr(getattr(start_response, "__self__", None), "force_close", None)
                if close is not None:
                    close()
            return body

        self.wsgi = closing_when_shed

    def enqueue_req(self, conn: Any) -> None:
        limit = self.limit if self.limit is not None else self._limit()
        with self._count:
            if self.working >= limit:
                self.shed_marked.add(id(conn))
            else:
                self.working += 1
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        with self._count:
            shed = id(conn) in self.shed_marked
            self.shed_marked.discard(id(conn))
        SHED.active = shed
        try:
            return super().handle(conn)
        finally:
            SHED.active = False
            if not shed:
                with self._count:
                    self.working -= 1

    def _limit(self) -> int:
        """The model's in-flight budget, read from the app once it is loaded."""
        from gateway.logic.web.state import app_state

        try:
            self.limit = app_state(self.app_wsgi).scorer.spec.overload.max_in_flight
        except (AttributeError, KeyError, TypeError):  # not the logic app: no bound of ours
            self.limit = DEFAULT_LIMIT
        return self.limit
