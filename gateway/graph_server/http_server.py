"""A small threaded HTTP/1.1 server for the REST API: a fixed pool of ``--rest_api_num_threads``.

Each connection is served by one pool thread (keep-alive included); an idle
connection is closed after ``IDLE_TIMEOUT_S`` so it gives its thread back.
Every answer, protocol errors included, has a JSON body.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from gateway.graph_server.rest_api import JSON_TYPE, RestApi, error_body

log = logging.getLogger("gateway.graph_server")

IDLE_TIMEOUT_S = 15.0
MAX_BODY_BYTES = 2**31 - 1


class _BadRequest(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "graph-server"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    server: PooledHTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _BadRequest as e:
            self.close_connection = True
            self._reply(400, error_body(str(e)), JSON_TYPE)
            return
        resp = self.server.api.handle(self.command, self.path, body, self.headers.get("Origin", ""))
        self._reply(resp.status, resp.body, resp.content_type)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise _BadRequest(f"Bad Content-Length: {length!r}") from None
        if not 0 <= n <= MAX_BODY_BYTES:
            raise _BadRequest(f"Bad Content-Length: {length!r}")
        return self.rfile.read(n)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self.rfile.readline(1024).strip()
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise _BadRequest("Bad chunked encoding") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, unsupported method) as JSON too."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._reply(code, error_body(message or self.responses.get(code, ("Error",))[0]), JSON_TYPE)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("rest %s " + format, self.address_string(), *args)


class PooledHTTPServer(HTTPServer):
    """HTTPServer whose connections are served by a fixed pool of daemon threads."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: RestApi, threads: int) -> None:
        self.api = api
        self._work: queue.Queue[tuple[socket.socket, Any] | None] = queue.Queue()
        super().__init__(address, _Handler)
        self._threads = [
            threading.Thread(target=self._worker, name=f"rest-{i}", daemon=True)
            for i in range(max(threads, 1))
        ]
        for t in self._threads:
            t.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        self._work.put((request, client_address))

    def _worker(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            request, address = item
            try:
                self.finish_request(request, address)
            except Exception:
                self.handle_error(request, address)
            finally:
                self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("rest connection from %s ended with an error", client_address, exc_info=True)

    def stop(self) -> None:
        self.shutdown()
        for _ in self._threads:
            self._work.put(None)
        self.server_close()


def start_http_server(port: int, api: RestApi, threads: int) -> tuple[PooledHTTPServer, int]:
    server = PooledHTTPServer(("0.0.0.0", port), api, threads)
    thread = threading.Thread(target=server.serve_forever, name="rest-accept", daemon=True)
    thread.start()
    return server, int(server.server_address[1])
