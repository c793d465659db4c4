"""`gateway smoke`: what counts as a good answer to the README example after a deploy."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.cli import main
from gateway.deploy.smoke import check_answer, smoke
from gateway.procs import free_port
from tests.support import REPO

RISK = json.loads((REPO / "examples" / "risk.json").read_text())
CTR = json.loads((REPO / "examples" / "ctr.json").read_text())


def envelope(data: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"msg": "Successful!", "code": 200, "data": data, "model": {"name": "m", "version": 1}, **extra}


def ranked(n: int, descending: bool = True) -> list[dict[str, Any]]:
    scores = sorted((0.1 * i for i in range(n)), reverse=descending)
    return [{"item_id": item, "score": s} for item, s in zip(CTR["item_ids"], scores, strict=False)]


def test_a_full_answer_of_the_right_shape_passes() -> None:
    assert check_answer(RISK, 200, envelope([{"score": 0.5}] * len(RISK["data"]))) == []
    assert check_answer(CTR, 200, envelope(ranked(CTR["top_k"]))) == []


@pytest.mark.parametrize(
    ("request_body", "status", "body", "problem"),
    [
        (RISK, 503, {"code": 503, "msg": "graph unavailable"}, "HTTP 503"),
        (RISK, 200, envelope([{"score": 0.5}]), "1 records for 3 input rows"),
        (RISK, 200, envelope([{"score": 0.29}] * 3, degraded=True, reason="graph_unavailable", source="default"),
         "degraded answer (graph_unavailable, from default)"),
        (RISK, 200, {"msg": "Oops", "code": 500, "data": []}, "envelope 500 'Oops'"),
        (CTR, 200, envelope(ranked(CTR["top_k"], descending=False)), "not numbers in descending order"),
        (CTR, 200, envelope(ranked(CTR["top_k"] - 1)), f"want {CTR['top_k']} distinct requested items"),
        (CTR, 200, envelope([{"item_id": "nope", "score": 1.0}] * CTR["top_k"]), "distinct requested items"),
    ],
)  # fmt: skip
def test_each_broken_answer_is_named(
    request_body: dict[str, Any], status: int, body: Any, problem: str
) -> None:
    assert any(problem in p for p in check_answer(request_body, status, body)), check_answer(
        request_body, status, body
    )


def test_nothing_listening_fails_at_once_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    report = smoke(REPO, "risk", url, wait=0)
    assert report.problems and "ConnectionError" in report.problems[0]
    assert main(["smoke", "risk", "--url", url, "--wait", "0", "--repo", str(REPO)]) == 1
    assert "FAIL  /health" in capsys.readouterr().out
