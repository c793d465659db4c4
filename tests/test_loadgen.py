"""``gateway.loadgen`` against a small keep-alive HTTP server in this process: counts, durations,
paced schedules and progress reports."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from gateway.loadgen import run_load


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"code":200,"degraded":true,"model":{"version":3}}' if self.path == "/degraded" else b"{}"
        self.send_response(200 if self.path != "/missing" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_count_per_client_is_exact(server: str) -> None:
    result = run_load(f"{server}/degraded", [b"{}", b'{"a":1}'], clients=3, per_client=20)
    assert result.requests == 60 and result.errors == 0
    assert result.degraded.all() and set(result.versions.tolist()) == {3}
    assert result.elapsed_s == pytest.approx(float(np.max(result.due_s + result.all_latencies_s)))


def test_closed_loop_for_a_duration_reports_progress(server: str) -> None:
    seen: list[int] = []
    result = run_load(f"{server}/missing", b"{}", clients=2, duration=0.6, progress=seen.append)
    assert result.requests > 10 and result.errors == result.requests  # 404s are answers, counted
    assert sum(seen) == result.requests and len(seen) >= 2
    assert result.due_s.max() < 0.6 and set(result.statuses.tolist()) == {404}


def test_paced_for_a_duration_sends_every_request_due_in_it(server: str) -> None:
    rate, duration = 200.0, 1.0
    result = run_load(f"{server}/ok", b"{}", clients=4, rate=rate, duration=duration)
    assert result.requests == int(rate * duration)
    due = np.sort(result.due_s)
    np.testing.assert_allclose(np.diff(due), 1 / rate, atol=1e-9)  # one common schedule over all clients
    sent = np.sort(result.sent_s)
    assert (result.requests - 1) / (sent[-1] - sent[0]) == pytest.approx(rate, rel=0.05)


def test_count_or_duration_not_both() -> None:
    with pytest.raises(ValueError, match="either per_client or duration"):
        run_load("http://127.0.0.1:9/", b"{}", clients=1, per_client=1, duration=1.0)
