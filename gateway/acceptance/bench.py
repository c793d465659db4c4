"""``gateway bench``: load-test one logic service, or two side by side, and report what it did.

Every setting (a number of clients, closed loop; or an arrival rate, open loop) runs for a
fixed duration after a short warm-up, against each target in turn (the targets alternate
setting by setting, so a machine that slows down during the run slows both). Load comes
from :func:`gateway.loadgen.run_load`: client processes with one keep-alive connection
each, cycling through the request mix. Open loop: requests are due on a fixed schedule and
latency counts from when a request was due, so a stall is charged to every request it
delayed (no coordinated omission); the report gives the arrival rate actually achieved.

Per setting the report has: requests, answers by HTTP status (``"0"``: no answer), errors
(everything but 200), throughput (200 answers per second), latency percentiles of the 200
answers, the share of degraded answers, the versions that answered and a latency histogram.
"""

from __future__ import annotations

import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from gateway.errors import ConfigError
from gateway.loadgen import LoadResult, run_load

# Latency histogram bins (ms), the same for every setting so they compare: 0.05 ms to 10 s.
HISTOGRAM_EDGES_MS = [round(float(e), 4) for e in np.geomspace(0.05, 10_000, 85)]
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    """The service's base URL (``/get_score`` is appended)."""


@dataclass(frozen=True)
class Setting:
    clients: int
    rate: float | None = None
    """Open loop: requests per second over all clients; None: closed loop."""

    @property
    def label(self) -> str:
        clients = f"{self.clients} client{'s' if self.clients != 1 else ''}"
        return clients + (f" @ {self.rate:g} req/s" if self.rate else "")


@dataclass
class BenchConfig:
    targets: list[Target]
    settings: list[Setting]
    bodies: list[bytes]
    duration: float = 10.0
    warmup: float = 1.0
    mix: dict[str, Any] = field(default_factory=dict)
    """What the report says about the request mix (source, bodies, records per request)."""


def base_url(url: str) -> str:
    """``url`` checked and without a trailing slash (or ``/get_score``); ConfigError if it is not one."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"{url}: bad port ({e})") from e
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(f"{url}: not an http://HOST[:PORT] URL")
    if parts.query or parts.fragment:
        raise ConfigError(f"{url}: a service URL has no query or fragment")
    path = parts.path.rstrip("/").removesuffix("/get_score")
    return f"http://{parts.hostname}{f':{port}' if port else ''}{path}"


def check_answers(target: Target) -> None:
    """ConfigError (a wrong target is an input error) unless ``/health`` answers 200."""
    import requests

    try:
        status = requests.get(f"{target.url}/health", timeout=5).status_code
    except requests.RequestException as e:
        raise ConfigError(f"{target.name}: nothing answers at {target.url} ({type(e).__name__})") from e
    if status != 200:
        raise ConfigError(f"{target.name}: {target.url}/health answers {status}, not 200")


def settings(clients: list[int], rates: list[float] | None) -> list[Setting]:
    """Closed loop: one setting per number of clients; open loop: each rate with each number of clients."""
    if not clients or any(c < 1 for c in clients):
        raise ValueError(f"--clients {clients}: each must be at least 1")
    if rates is not None and any(r <= 0 for r in rates):
        raise ValueError(f"--rate {rates}: each must be above 0")
    if rates is None:
        return [Setting(c) for c in clients]
    return [Setting(c, r) for r in rates for c in clients]


def summarise(result: LoadResult, setting: Setting) -> dict[str, Any]:
    """One setting of one target, as the report keeps it."""
    ok = result.latencies_s * 1000
    answered = max(result.requests, 1)
    out: dict[str, Any] = {
        "clients": setting.clients,
        "rate": setting.rate,
        "requests": result.requests,
        "statuses": {str(s): int(n) for s, n in sorted(Counter(result.statuses.tolist()).items())},
        "errors": result.errors,
        "elapsed_s": round(result.elapsed_s, 4),
        "throughput_rps": round(ok.size / result.elapsed_s, 2) if result.elapsed_s > 0 else 0.0,
        "latency_ms": {
            **{f"p{q}": _round(np.percentile(ok, q)) if ok.size else None for q in PERCENTILES},
            "max": _round(ok.max()) if ok.size else None,
        },
        "degraded_share": round(int(np.count_nonzero(result.degraded)) / answered, 6),
        "versions": {str(v): int(n) for v, n in sorted(Counter(result.versions.tolist()).items()) if v},
        "histogram": np.histogram(
            np.clip(ok, HISTOGRAM_EDGES_MS[0], HISTOGRAM_EDGES_MS[-1]), HISTOGRAM_EDGES_MS
        )[0].tolist(),
    }
    if setting.rate is not None:
        sent = np.sort(result.sent_s)
        span = float(sent[-1] - sent[0]) if sent.size > 1 else 0.0
        out["achieved_rate_rps"] = round((sent.size - 1) / span, 2) if span > 0 else None
        out["late_share"] = round(float(np.mean(result.sent_s - result.due_s > 0.005)), 6)
    return out


def _round(ms: Any) -> float:
    return round(float(ms), 3)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()}


@contextmanager
def _bars(enabled: bool, runs: int) -> Iterator[Callable[[str], Callable[[int], None]]]:
    """A progress bar over the runs and, per run, a count of requests answered."""
    from tqdm import tqdm

    outer = tqdm(total=runs, desc="bench", unit="run", disable=not enabled, position=0)
    current: list[Any] = []

    def start(desc: str) -> Callable[[int], None]:
        for bar in current:
            bar.close()
            outer.update(1)
        current[:] = [tqdm(desc=desc, unit="req", disable=not enabled, position=1, leave=False)]
        return current[0].update  # type: ignore[no-any-return]

    try:
        yield start
    finally:
        for bar in current:
            bar.close()
            outer.update(1)
        outer.close()


def run(config: BenchConfig, progress: bool = False) -> dict[str, Any]:
    """Every setting against every target; the report (see the module doc)."""
    per_target: dict[str, list[dict[str, Any]]] = {t.name: [] for t in config.targets}
    with _bars(progress, len(config.settings) * len(config.targets)) as bar:
        for setting in config.settings:
            for target in config.targets:
                update = bar(f"{target.name}, {setting.label}")
                per_target[target.name].append(_one(config, target, setting, update))
    report: dict[str, Any] = {
        "tool": "gateway bench",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "mode": "open" if any(s.rate for s in config.settings) else "closed",
        "duration_s": config.duration,
        "warmup_s": config.warmup,
        "mix": {**config.mix, "bodies": len(config.bodies)},
        "histogram_edges_ms": HISTOGRAM_EDGES_MS,
        "targets": [{"name": t.name, "url": t.url, "settings": per_target[t.name]} for t in config.targets],
    }
    if len(config.targets) == 2:
        report["comparison"] = compare(*(per_target[t.name] for t in config.targets))
    return report


def _one(
    config: BenchConfig, target: Target, setting: Setting, update: Callable[[int], None]
) -> dict[str, Any]:
    url = f"{target.url}/get_score"
    if config.warmup > 0:  # connections opened, workers and caches warm; not counted
        run_load(url, config.bodies, setting.clients, rate=setting.rate, duration=config.warmup)
    started = time.monotonic()
    result = run_load(
        url, config.bodies, setting.clients, rate=setting.rate, duration=config.duration, progress=update
    )
    summary = summarise(result, setting)
    summary["wall_s"] = round(time.monotonic() - started, 3)
    return summary


def compare(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per setting, the first target's throughput and latencies over the second's."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    out = []
    for a, b in zip(first, second, strict=True):
        entry: dict[str, Any] = {"clients": a["clients"], "rate": a["rate"]}
        entry["throughput_ratio"] = ratio(a["throughput_rps"], b["throughput_rps"])
        for q in ("p50", "p90", "p99"):
            entry[f"{q}_ratio"] = ratio(a["latency_ms"][q], b["latency_ms"][q])
        out.append(entry)
    return out


def encode(bodies: list[dict[str, Any]]) -> list[bytes]:
    import orjson

    return [orjson.dumps(b) for b in bodies]
