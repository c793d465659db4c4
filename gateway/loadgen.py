"""An HTTP/1.1 load generator: N client processes, one keep-alive connection each.

Every answer is recorded: when it was due, its latency, its status, whether it was
degraded (``"degraded":true`` in the body) and the version that answered.

Each client sends a given number of requests, or for a given duration. Closed loop
(``rate=None``): each client sends its next request as soon as the previous answer arrives. Paced (``rate`` requests/s over all clients): each
client sends on a fixed schedule, and latency counts from the *scheduled* time,
so a slow answer that delays the next request is charged to it as well
(no coordinated omission).

Clients send pre-built request bytes and read answers with a minimal parser
(status line, Content-Length, Connection): the generator shares the machine
with the system under test, so its own CPU per request is kept small.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

_VERSION = re.compile(rb'"version":(\d+)')
REPORT_EVERY_S = 0.2


@dataclass
class LoadResult:
    """Per request (in send order per client, clients one after the other): when it was due
    (seconds after the common start of all clients), latency from then, status (0: no answer),
    degraded, version (0: none), and the time from the actual send to the answer (the
    service's own latency, without the client's lateness). ``elapsed_s``: from the start to
    the last answer."""

    due_s: np.ndarray
    all_latencies_s: np.ndarray
    statuses: np.ndarray
    degraded: np.ndarray
    versions: np.ndarray
    service_s: np.ndarray
    elapsed_s: float

    @property
    def latencies_s(self) -> np.ndarray:
        """Latencies of the 200 answers."""
        return np.asarray(self.all_latencies_s[self.statuses == 200])

    @property
    def sent_s(self) -> np.ndarray:
        """When each request was actually sent (seconds after the start): later than due when
        a paced client was still waiting for its previous answer."""
        return np.asarray(self.due_s + self.all_latencies_s - self.service_s)

    @property
    def errors(self) -> int:
        return int(np.count_nonzero(self.statuses != 200))

    @property
    def requests(self) -> int:
        return int(self.statuses.size)

    @property
    def qps(self) -> float:
        return self.requests / self.elapsed_s

    def pct_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q) * 1000) if self.latencies_s.size else float("nan")


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive connection sending pre-built requests."""

    def __init__(self, host: str, port: int) -> None:
        self.addr = (host, port)
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.addr, timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def roundtrip(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request``, read the whole answer; returns its status and body."""
        if self.sock is None:
            self.sock = self._connect()
        self.sock.sendall(request)
        head = self._read_until(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError(f"bad status line {lines[0][:80]!r}")
        length, close = None, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise HttpError("answer without Content-Length")
        body = self._read_exactly(length)
        if close:
            self.close()
        return int(parts[1]), body

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise HttpError("connection closed by the server")
        self.buf += chunk

    def _read_until(self, marker: bytes) -> bytes:
        while (end := self.buf.find(marker)) < 0:
            self._fill()
        out, self.buf = self.buf[:end], self.buf[end + len(marker) :]
        return out

    def _read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _requests(url: str, bodies: list[bytes]) -> list[bytes]:
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        "Content-Length: {n}\r\n\r\n"
    )
    return [head.format(n=len(b)).encode() + b for b in bodies]


class _Plan:
    """When one client sends: its ``k``-th request's due time (None: closed loop, send now)
    and whether it is past its count or its duration."""

    def __init__(self, n: int | None, duration: float | None, offset: float, interval: float | None) -> None:
        self.n, self.duration, self.offset, self.interval = n, duration, offset, interval

    def due(self, k: int, elapsed: float) -> float | None:
        """Seconds after the common start the ``k``-th request is due (closed loop: ``elapsed``);
        None once the client is done."""
        if self.n is not None and k >= self.n:
            return None
        due = elapsed if self.interval is None else self.offset + k * self.interval
        if self.duration is not None and due >= self.duration:
            return None
        return due


def _client(
    url: str,
    bodies: list[bytes],
    plan: _Plan,
    start: float,
    out: mp.Queue,  # type: ignore[type-arg]
    report_every: float | None,
) -> None:
    parts = urlsplit(url)
    conn = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
    reqs = _requests(url, bodies)
    rows: list[tuple[float, float, int, bool, int, float]] = []
    while time.time() < start:
        time.sleep(0.0005)
    t_start = time.perf_counter() - (time.time() - start)  # the common start on this clock
    k, reported, last_report = 0, 0, t_start
    while (due := plan.due(k, time.perf_counter() - t_start)) is not None:
        t0 = t_start + due  # paced: late sends are charged to the answer that made them late
        if (wait := t0 - time.perf_counter()) > 0:
            time.sleep(wait)
        sent = time.perf_counter()
        try:
            status, body = conn.roundtrip(reqs[k % len(reqs)])
        except (OSError, HttpError, ValueError):
            status, body = 0, b""
            conn.close()
        version = _VERSION.search(body)
        done = time.perf_counter()
        rows.append(
            (
                due,
                done - t0,
                status,
                b'"degraded":true' in body,
                int(version[1]) if version else 0,
                done - sent,
            )
        )
        k += 1
        if report_every is not None and done - last_report >= report_every:
            out.put(("progress", k - reported))
            reported, last_report = k, done
    conn.close()
    if report_every is not None and k > reported:
        out.put(("progress", k - reported))
    out.put(("rows", rows))


def run_load(
    url: str,
    body: bytes | list[bytes],
    clients: int,
    per_client: int | None = None,
    rate: float | None = None,
    *,
    duration: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Closed loop, or paced at ``rate`` req/s over all clients; ``per_client`` requests from each
    of ``clients`` processes, or as many as fit in ``duration`` seconds (paced: every request
    due within it).

    Several bodies are cycled through, each client starting at a different one. ``progress``
    is called in this process with the number of requests answered since its last call
    (about every 0.2 s per client).
    """
    if (per_client is None) == (duration is None):
        raise ValueError("give either per_client or duration")
    bodies = [body] if isinstance(body, bytes) else body
    interval = clients / rate if rate else None
    ctx = mp.get_context("fork")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    start = time.time() + 0.3  # all clients begin together
    procs = []
    for i in range(clients):
        # paced clients are spread evenly over one interval, not all at once
        plan = _Plan(per_client, duration, (interval or 0.0) * i / clients, interval)
        args = (url, bodies[i:] + bodies[:i], plan, start, q, REPORT_EVERY_S if progress else None)
        procs.append(ctx.Process(target=_client, args=args))
    for p in procs:
        p.start()
    rows = _collect(q, procs, progress)
    wall = time.time() - start
    for p in procs:
        p.join()
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * 6
    due, latency = np.array(cols[0], dtype=float), np.array(cols[1], dtype=float)
    return LoadResult(
        due,
        latency,
        np.array(cols[2], dtype=int),
        np.array(cols[3], dtype=bool),
        np.array(cols[4], dtype=int),
        np.array(cols[5], dtype=float),
        float(np.max(due + latency)) if rows else wall,  # to the last answer, not to the hand-over
    )


def _collect(
    q: mp.Queue,  # type: ignore[type-arg]
    procs: list[Any],
    progress: Callable[[int], None] | None,
) -> list[tuple[float, float, int, bool, int, float]]:
    """Every client's rows, passing progress reports on as they come; fails if a client dies."""
    rows: list[tuple[float, float, int, bool, int, float]] = []
    pending = len(procs)
    while pending:
        try:
            kind, payload = q.get(timeout=1.0)
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a load client exited with {dead[0]}") from None
            continue
        if kind == "rows":
            rows.extend(payload)
            pending -= 1
        elif progress is not None:
            progress(payload)
    return rows
