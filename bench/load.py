"""A closed-loop HTTP load generator: N client processes, one keep-alive connection each."""

from __future__ import annotations

import http.client
import multiprocessing as mp
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


def _client(url: str, bodies: list[bytes], n: int, start: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    lat = []
    errors = 0
    while time.time() < start:
        time.sleep(0.001)
    for k in range(n):
        body = bodies[k % len(bodies)]
        t0 = time.perf_counter()
        try:
            conn.request("POST", parts.path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        if ok:
            lat.append(time.perf_counter() - t0)
        else:
            errors += 1
    out.put((lat, errors))


def run_load(url: str, body: bytes | list[bytes], clients: int, per_client: int) -> LoadResult:
    """``per_client`` requests from each of ``clients`` processes; several bodies are cycled through,
    each client starting at a different one."""
    bodies = [body] if isinstance(body, bytes) else body
    ctx = mp.get_context("fork")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    start = time.time() + 0.3  # all clients begin together
    procs = [
        ctx.Process(target=_client, args=(url, bodies[i:] + bodies[:i], per_client, start, q))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    elapsed = time.time() - start
    for p in procs:
        p.join()
    lat = np.array([x for r in results for x in r[0]])
    return LoadResult(lat, sum(r[1] for r in results), elapsed)
