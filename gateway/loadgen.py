"""An HTTP/1.1 load generator: N client processes, one keep-alive connection each.

Every answer is recorded: when it was due, its latency, its status, whether it was
degraded (``"degraded":true`` in the body) and the version that answered.

Closed loop (``rate=None``): each client sends its next request as soon as the
previous answer arrives. Paced (``rate`` requests/s over all clients): each
client sends on a fixed schedule, and latency counts from the *scheduled* time,
so a slow answer that delays the next request is charged to it as well
(no coordinated omission).

Clients send pre-built request bytes and read answers with a minimal parser
(status line, Content-Length, Connection): the generator shares the machine
with the system under test, so its own CPU per request is kept small.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

_VERSION = re.compile(rb'"version":(\d+)')


@dataclass
class LoadResult:
    """Per request (in send order per client, clients one after the other): when it was due
    (seconds after the start), latency from then, status (0: no answer), degraded, version
    (0: none), and the time from the actual send to the answer (the service's own latency,
    without the client's lateness)."""

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


def _client(
    url: str,
    bodies: list[bytes],
    n: int,
    start: float,
    interval: float | None,
    out: mp.Queue,  # type: ignore[type-arg]
) -> None:
    parts = urlsplit(url)
    conn = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
    reqs = _requests(url, bodies)
    rows: list[tuple[float, float, int, bool, int, float]] = []
    while time.time() < start:
        time.sleep(0.001)
    t_start = time.perf_counter()
    for k in range(n):
        if interval is not None:
            due = t_start + k * interval
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            t0 = due  # late sends are charged to the answer that made them late
        else:
            t0 = time.perf_counter()
        sent = time.perf_counter()
        try:
            status, body = conn.roundtrip(reqs[k % len(reqs)])
        except (OSError, HttpError, ValueError):
            status, body = 0, b""
            conn.close()
        version = _VERSION.search(body)
        degraded = b'"degraded":true' in body
        done = time.perf_counter()
        rows.append(
            (t0 - t_start, done - t0, status, degraded, int(version[1]) if version else 0, done - sent)
        )
    conn.close()
    out.put(rows)


def run_load(
    url: str, body: bytes | list[bytes], clients: int, per_client: int, rate: float | None = None
) -> LoadResult:
    """``per_client`` requests from each of ``clients`` processes, closed loop or paced at ``rate`` req/s.

    Several bodies are cycled through, each client starting at a different one.
    """
    bodies = [body] if isinstance(body, bytes) else body
    interval = clients / rate if rate else None
    ctx = mp.get_context("fork")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    start = time.time() + 0.3  # all clients begin together
    procs = []
    for i in range(clients):
        # paced clients are spread evenly over one interval, not all at once
        offset = (interval or 0.0) * i / clients
        args = (url, bodies[i:] + bodies[:i], per_client, start + offset, interval, q)
        procs.append(ctx.Process(target=_client, args=args))
    for p in procs:
        p.start()
    rows = [row for _ in procs for row in q.get()]
    elapsed = time.time() - start
    for p in procs:
        p.join()
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * 6
    return LoadResult(
        np.array(cols[0], dtype=float),
        np.array(cols[1], dtype=float),
        np.array(cols[2], dtype=int),
        np.array(cols[3], dtype=bool),
        np.array(cols[4], dtype=int),
        np.array(cols[5], dtype=float),
        elapsed,
    )
