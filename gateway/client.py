"""A small Python client for business services calling a logic service.

    with ScoringClient("http://risk-logic:8000") as client:
        result = client.score([{"customer_id": "C000042", "loan_amount": 12000, ...}])
        result.scores       # [0.44, ...] in input order
        result.model        # {"name": "risk", "version": 3}

Connect and read timeouts are separate; connection failures and 502/503 answers
are retried with exponential backoff (scoring has no side effects, so a retry is
safe). Every other error raises ``ScoringError`` carrying the service's stable
error code and the request id to quote when reporting it. Only ``requests``
is needed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


class ScoringError(Exception):
    """The service answered with an error envelope (or not at all)."""

    def __init__(self, status: int, error: str, msg: str, details: list[Any], request_id: str) -> None:
        super().__init__(f"{status} {error}: {msg} (request id {request_id})")
        self.status = status
        self.error = error
        self.msg = msg
        self.details = details
        self.request_id = request_id


@dataclass
class ScoreResult:
    data: list[dict[str, Any]]
    model: dict[str, Any]
    request_id: str
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def scores(self) -> list[float]:
        return [float(d["score"]) for d in self.data]


class ScoringClient:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 0.5,
        read_timeout: float = 2.0,
        retries: int = 2,
        backoff: float = 0.05,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=0,  # a read timeout means the service is slow: retrying only adds load
            status=retries,
            status_forcelist=(502, 503),
            allowed_methods=frozenset({"GET", "POST"}),
            backoff_factor=backoff,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=32)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(headers or {})

    def score(
        self,
        records: list[dict[str, Any]],
        *,
        version: int | None = None,
        label: str | None = None,
        request_id: str | None = None,
    ) -> ScoreResult:
        """Score records (the records request form); results are in input order."""
        return self._post({"data": records, **_selector(version, label)}, request_id)

    def rank(
        self,
        uid: str,
        item_ids: list[str],
        *,
        context: dict[str, Any] | None = None,
        top_k: int | None = None,
        version: int | None = None,
        label: str | None = None,
        request_id: str | None = None,
    ) -> ScoreResult:
        """Score items for one user (the ranking request form)."""
        body: dict[str, Any] = {"uid": uid, "item_ids": item_ids, **_selector(version, label)}
        if context is not None:
            body["context"] = context
        if top_k is not None:
            body["top_k"] = top_k
        return self._post(body, request_id)

    def health(self) -> bool:
        try:
            return self.session.get(f"{self.base_url}/health", timeout=self.timeout).status_code == 200
        except requests.RequestException:
            return False

    def ready(self) -> dict[str, Any]:
        resp = self.session.get(f"{self.base_url}/ready", timeout=self.timeout)
        return resp.json()  # type: ignore[no-any-return]

    def _post(self, body: dict[str, Any], request_id: str | None) -> ScoreResult:
        rid = request_id or uuid.uuid4().hex
        try:
            resp = self.session.post(
                f"{self.base_url}/get_score", json=body, timeout=self.timeout, headers={"X-Request-ID": rid}
            )
        except requests.RequestException as e:
            raise ScoringError(0, "unreachable", f"{type(e).__name__}: {e}", [], rid) from e
        rid = resp.headers.get("X-Request-ID", rid)
        try:
            payload = resp.json()
        except ValueError:
            raise ScoringError(resp.status_code, "bad_response", resp.text[:200], [], rid) from None
        if resp.status_code != 200:
            raise ScoringError(
                resp.status_code,
                payload.get("error", "error"),
                payload.get("msg", ""),
                payload.get("details", []),
                rid,
            )
        return ScoreResult(payload["data"], payload.get("model", {}), rid, _server_timing(resp))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ScoringClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _selector(version: int | None, label: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if version is not None:
        out["version"] = version
    if label is not None:
        out["label"] = label
    return out


def _server_timing(resp: requests.Response) -> dict[str, float]:
    out = {}
    for part in resp.headers.get("Server-Timing", "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name and dur:
            out[name] = float(dur)
    return out
