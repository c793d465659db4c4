"""Drift against running services: traffic from the training distribution, and shifted traffic.

Two gunicorn logic services (two workers each: the bins are summed across workers by the
scrape) serve ``risk`` from the same graph-server and Redis. One gets requests built from the
version's held-out rows, the other the same requests with larger loans and longer employment.
``gateway drift`` must read PSI < 0.1 everywhere for the first and > 0.25 for the shifted
fields (and the score) of the second; the gauge on ``/metrics`` must say the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.acceptance.heldout import sample_requests
from gateway.cli import main
from gateway.procs import Proc
from tests.support import start_logic

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REQUESTS = 400


@pytest.fixture(scope="module")
def services(
    built_models: Path,
    risk_graph: int,
    risk_features: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    """Two logic services: one for traffic like training's, one for shifted traffic."""
    redis_url = risk_features(13)
    logs = tmp_path_factory.mktemp("drift")
    procs: list[Proc] = []
    urls: list[str] = []
    try:
        for name in ("plain", "shifted"):
            proc, url = start_logic("risk", built_models, redis_url, logs / f"{name}.log", risk_graph)
            procs.append(proc)
            urls.append(url)
        yield urls[0], urls[1]
    finally:
        for p in procs:
            p.stop()


def _send(url: str, bodies: list[dict[str, Any]]) -> None:
    session = requests.Session()

    def one(body: dict[str, Any]) -> int:
        return session.post(f"{url}/get_score", json=body, timeout=10).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(one, bodies))
    assert statuses == [200] * len(bodies)


def _shifted(body: dict[str, Any]) -> dict[str, Any]:
    rec = dict(body["data"][0])
    rec["loan_amount"] = min(rec["loan_amount"] * 6, 1_000_000)
    rec["employment_years"] = min(rec.get("employment_years", 3.0) + 25, 60)
    return {"data": [rec]}


def _drift(url: str, root: Path, tmp: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``gateway drift`` once every worker's counts have reached the scrape."""
    out = tmp / "drift.json"
    deadline = time.monotonic() + 10
    while True:
        assert main(["drift", "risk", "--url", url, "--root", str(root), "--json", str(out), "--plot",
                     str(tmp / "drift.png")]) == 0  # fmt: skip
        report = json.loads(out.read_text())
        rows = {f["feature"]: f for f in report["features"]}
        if rows["score"]["rows"] == REQUESTS or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # another worker's counts reach the shared files within one flush interval
    capsys.readouterr()
    return rows


def test_traffic_like_training_is_stable_and_shifted_traffic_is_not(
    built_models: Path, services: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain, shifted = services
    bodies = sample_requests(built_models, "risk", REQUESTS, seed=3)
    assert len(bodies) == REQUESTS
    _send(plain, bodies)
    _send(shifted, [_shifted(b) for b in bodies])

    calm = _drift(plain, built_models, tmp_path, capsys)
    assert all(f["rows"] == REQUESTS for f in calm.values()), calm  # both workers' rows, each once
    assert max(f["psi"] for f in calm.values()) < 0.1, calm
    assert (tmp_path / "drift.png").stat().st_size > 10_000

    moved = _drift(shifted, built_models, tmp_path, capsys)
    assert moved["loan_amount"]["psi"] > 0.25 and moved["employment_years"]["psi"] > 0.25, moved
    assert moved["loan_amount"]["band"] == "significant"
    assert moved["score"]["psi"] > 0.25, moved["score"]
    assert moved["age"]["psi"] < 0.1  # what was not shifted stays stable

    metrics = requests.get(f"{shifted}/metrics", timeout=5).text
    gauge = next(
        line for line in metrics.splitlines()
        if line.startswith('gateway_drift_psi{feature="loan_amount",model="risk",version="1"}')
    )  # fmt: skip
    assert float(gauge.rsplit(" ", 1)[1]) == pytest.approx(moved["loan_amount"]["psi"], rel=1e-6)
