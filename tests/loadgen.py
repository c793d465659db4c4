"""A recording load generator for tests: N threads, keep-alive sessions, paced, every answer kept.

Each client sends on a fixed schedule (``rate`` requests/s over all clients) and latency
counts from the scheduled send time, so a stall is charged to every request it delays.
Every answer is recorded (status, body, times), so a test can check each one.
"""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import requests


@dataclass
class Shot:
    scheduled: float  # time.monotonic() the request was due
    done: float
    sent: float  # when it was actually sent (a client late after a slow answer sends late)
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)
    body: dict[str, Any] | None
    payload: dict[str, Any]
    error: str = ""

    @property
    def latency(self) -> float:
        """From when it was due: a stall is charged to every request it delayed."""
        return self.done - self.scheduled

    @property
    def service(self) -> float:
        """From when it was sent: the service's own time."""
        return self.done - self.sent

    @property
    def version(self) -> int | None:
        return (self.body or {}).get("model", {}).get("version")


@dataclass
class Load:
    url: str
    make: Callable[[random.Random], dict[str, Any]]  # a request body
    clients: int = 8
    rate: float = 120.0
    shots: list[Shot] = field(default_factory=list)
    gate: Callable[[], bool] | None = None  # a load balancer's view: send only while it says yes
    held: int = 0  # requests the gate held back

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(self.clients)
        ]

    def __enter__(self) -> Load:
        # This process may hold a large heap by now (a whole test session, TensorFlow): a
        # collection pause here would be charged to the service. Collect now, not during.
        gc.collect()
        gc.disable()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        gc.enable()

    def _client(self, i: int) -> None:
        rnd = random.Random(i)
        session = requests.Session()
        period = self.clients / self.rate
        due = time.monotonic() + period * i / self.clients
        while not self._stop.is_set():
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            due += period
            if self.gate is not None and not self.gate():
                with self._lock:
                    self.held += 1
                continue
            payload = self.make(rnd)
            shot = self._send(session, payload, due - period)
            with self._lock:
                self.shots.append(shot)

    def _send(self, session: requests.Session, payload: dict[str, Any], due: float) -> Shot:
        sent = time.monotonic()
        try:
            r = session.post(self.url, json=payload, timeout=10)
            body = r.json()
            return Shot(due, time.monotonic(), sent, r.status_code, body, payload)
        except (requests.RequestException, ValueError) as e:
            session.close()
            return Shot(due, time.monotonic(), sent, 0, None, payload, f"{type(e).__name__}: {e}")

    def snapshot(self, since: float = 0.0, until: float = float("inf")) -> list[Shot]:
        with self._lock:
            return [s for s in self.shots if since <= s.scheduled < until]

    def wait_for(self, check: Callable[[Shot], bool], timeout: float) -> Shot:
        """The first answer (from now on) that passes ``check``."""
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline:
            for s in self.snapshot(since=start):
                if check(s):
                    return s
            time.sleep(0.05)
        raise TimeoutError(f"no answer passed the check within {timeout}s")


def p99(shots: list[Shot]) -> float:
    return float(np.percentile([s.latency for s in shots], 99)) if shots else float("nan")
