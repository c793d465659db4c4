"""``gateway smoke MODEL --url URL``: the README's examples against a deployed logic service.

What the pipeline runs after every deploy (and what a person runs after ``make up``):
liveness, readiness (waiting up to ``wait`` seconds for a fresh rollout to turn ready),
then ``examples/<model>.json`` through ``/get_score``. An answer passes when it is a 200
envelope, not degraded (a fresh deployment answering from a fallback is broken, even if
it answers), and shaped as the request asks: one record per input row, or ``top_k``
distinct requested items in descending score order.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from gateway.spec import load_spec


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ok(self, line: str) -> None:
        self.lines.append(f"ok    {line}")

    def fail(self, line: str) -> None:
        self.lines.append(f"FAIL  {line}")
        self.problems.append(line)


def example(repo: Path, model: str) -> dict[str, Any]:
    path = repo / "examples" / f"{model}.json"
    try:
        body: dict[str, Any] = json.loads(path.read_text())
    except OSError as e:
        raise FileNotFoundError(
            f"{path}: {e.strerror} (every deployed model needs an example request)"
        ) from e
    return body


def _wait_ready(session: requests.Session, url: str, wait: float, report: Report) -> bool:
    deadline = time.monotonic() + wait
    last = "no answer"
    while True:
        try:
            r = session.get(f"{url}/ready", timeout=5)
            if r.status_code == 200:
                checks = r.json().get("checks", {})
                report.ok(
                    f"/ready: default version {checks.get('default_version')}, full={checks.get('full')}"
                )
                return True
            last = f"{r.status_code} {r.json().get('details')}"
        except (requests.RequestException, ValueError) as e:
            last = type(e).__name__
        if time.monotonic() >= deadline:
            report.fail(f"/ready: not ready after {wait:.0f}s ({last})")
            return False
        time.sleep(1.0)


def check_answer(request: dict[str, Any], status: int, body: Any, score_field: str = "score") -> list[str]:
    """What is wrong with one /get_score answer to ``request`` (empty: nothing)."""
    if status != 200 or not isinstance(body, dict):
        return [f"HTTP {status}: {str(body)[:300]}"]
    problems = []
    if body.get("code") != 200 or body.get("msg") != "Successful!":
        problems.append(f"envelope {body.get('code')} {body.get('msg')!r}")
    if body.get("degraded"):
        problems.append(f"degraded answer ({body.get('reason')}, from {body.get('source')})")
    data = body.get("data")
    if not isinstance(data, list):
        return [*problems, "no data list"]
    if "item_ids" in request:
        want = min(int(request.get("top_k") or len(request["item_ids"])), len(request["item_ids"]))
        ids = [d.get("item_id") for d in data]
        scores = [d.get(score_field) for d in data]
        if len(data) != want or len(set(ids)) != len(ids) or not set(ids) <= set(request["item_ids"]):
            problems.append(f"ranking: {len(data)} items {ids[:5]}..., want {want} distinct requested items")
        if any(not isinstance(s, (int, float)) for s in scores) or scores != sorted(scores, reverse=True):
            problems.append("ranking: scores are not numbers in descending order")
    elif len(data) != len(request.get("data", [])):
        problems.append(f"{len(data)} records for {len(request.get('data', []))} input rows")
    return problems


def smoke(repo: Path, model: str, url: str, wait: float = 60.0) -> Report:
    url = url.rstrip("/")
    report = Report()
    request = example(repo, model)
    spec = load_spec(repo / "models" / model / "model.yaml")
    with requests.Session() as session:
        try:
            r = session.get(f"{url}/health", timeout=5)
            (report.ok if r.status_code == 200 else report.fail)(f"/health: {r.status_code}")
        except requests.RequestException as e:
            report.fail(f"/health: {type(e).__name__}: {e}")
            return report
        if not _wait_ready(session, url, wait, report):
            return report
        t0 = time.perf_counter()
        r = session.post(f"{url}/get_score", json=request, timeout=10)
        ms = (time.perf_counter() - t0) * 1e3
        try:
            body: Any = r.json()
        except ValueError:
            body = r.text
        problems = check_answer(request, r.status_code, body, spec.postprocess.score_field)
        served = body.get("model") if isinstance(body, dict) else None
        where = f"/get_score examples/{model}.json ({ms:.1f} ms, model {served})"
        if problems:
            report.fail(f"{where}: {'; '.join(problems)}")
        else:
            report.ok(f"{where}: {len(body['data'])} answers")
    return report
