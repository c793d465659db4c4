"""An HTTP/1.1 load generator: N client processes, one keep-alive connection each.

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
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np


@dataclass
class LoadResult:
    latencies_s: np.ndarray
    errors: int
    elapsed_s: float

    @property
    def requests(self) -> int:
        return int(self.latencies_s.size) + self.errors

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

    def roundtrip(self, request: bytes) -> int:
        """Send ``request``, read the whole answer; returns its status."""
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
        self._read_exactly(length)
        if close:
            self.close()
        return int(parts[1])

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
    lat = []
    errors = 0
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
        try:
            ok = conn.roundtrip(reqs[k % len(reqs)]) == 200
        except (OSError, HttpError, ValueError):
            ok = False
            conn.close()
        if ok:
            lat.append(time.perf_counter() - t0)
        else:
            errors += 1
    conn.close()
    out.put((lat, errors))


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
    results = [q.get() for _ in procs]
    elapsed = time.time() - start
    for p in procs:
        p.join()
    lat = np.array([x for r in results for x in r[0]])
    return LoadResult(lat, sum(r[1] for r in results), elapsed)
