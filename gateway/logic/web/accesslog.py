"""The access log: one JSON line per request, written in batches like nginx's ``buffer=``/``flush=``.

Formatting a ``logging`` record and flushing the stream for every request cost
more CPU than the rest of the web layer's bookkeeping together. Lines are
instead appended to an in-memory buffer and written out with one ``write`` when

- the buffer passes ``buffer_bytes`` (``GATEWAY_ACCESS_LOG_BUFFER_BYTES``),
- ``flush_ms`` (``GATEWAY_ACCESS_LOG_FLUSH_MS``) have passed since the first
  pending line (a daemon thread checks; idle workers flush too),
- a line is urgent (a 5xx response: it is written at once, after every line
  buffered before it, so the log shows what led up to it),
- the worker exits (gunicorn's ``worker_exit``/``worker_int``/``worker_abort``
  hooks and ``atexit`` call :func:`flush`).

The trade-off: a worker that dies without running Python's exit path (SIGKILL,
the OOM killer, a segfault) loses the lines still buffered, at most
``buffer_bytes`` or ``flush_ms`` worth of requests. ``buffer_bytes=0`` writes
every line at once, as unbuffered logging did.

One writer serves the whole process (the log is a process-wide stream, like a
logging handler); :func:`configure` sets its destination and limits.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import TextIO


class BufferedLog:
    """Thread-safe line buffer in front of a text stream."""

    def __init__(self, stream: TextIO, buffer_bytes: int = 32768, flush_ms: int = 1000) -> None:
        self.stream = stream
        self.buffer_bytes = buffer_bytes
        self.flush_s = flush_ms / 1000
        self._lines: list[bytes] = []
        self._size = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._flusher: threading.Thread | None = None
        self._closed = False

    def write(self, line: bytes, urgent: bool = False) -> None:
        """Queue one line (without its newline); written at once if ``urgent`` or unbuffered."""
        with self._lock:
            self._lines.append(line)
            self._size += len(line) + 1
            if urgent or self._size >= self.buffer_bytes:
                self._write_out()
            elif len(self._lines) == 1:
                self._start_flusher()
                self._wake.notify()

    def flush(self) -> None:
        """Write out everything buffered (called at exit; cheap when nothing is pending)."""
        with self._lock:
            self._write_out()

    def close(self) -> None:
        """Flush and stop the background flusher."""
        with self._lock:
            self._write_out()
            self._closed = True
            self._wake.notify()

    def reconfigure(self, stream: TextIO, buffer_bytes: int, flush_ms: int) -> None:
        """Write out what is pending, then continue with a new destination and limits."""
        with self._lock:
            self._write_out()
            self.stream = stream
            self.buffer_bytes = buffer_bytes
            self.flush_s = flush_ms / 1000
            self._wake.notify()

    def pending(self) -> int:
        """Lines buffered and not yet written."""
        with self._lock:
            return len(self._lines)

    def _write_out(self) -> None:
        # Caller holds the lock: lines from concurrent threads are written whole and in order.
        if not self._lines:
            return
        data = b"\n".join(self._lines) + b"\n"
        self._lines.clear()
        self._size = 0
        try:
            self.stream.write(data.decode())
            self.stream.flush()
        except (OSError, ValueError):  # the stream is gone (closed at shutdown): nothing left to tell
            pass

    def _start_flusher(self) -> None:
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(target=self._flush_loop, name="access-log-flush", daemon=True)
            self._flusher.start()

    def _flush_loop(self) -> None:
        with self._lock:
            while not self._closed:
                if not self._lines:
                    self._wake.wait()
                    continue
                # The first pending line is at most flush_s old when it is written.
                deadline = time.monotonic() + self.flush_s
                while self._lines and not self._closed and (left := deadline - time.monotonic()) > 0:
                    self._wake.wait(left)
                self._write_out()

    def _after_fork(self) -> None:
        # The parent's pending lines are the parent's to write; the flusher thread did not survive.
        self._lines = []
        self._size = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._flusher = None


_LOG = BufferedLog(sys.stderr)


def configure(stream: TextIO | None = None, buffer_bytes: int = 32768, flush_ms: int = 1000) -> BufferedLog:
    """The process's access log, pointed at ``stream`` (default: stderr) with these limits."""
    _LOG.reconfigure(stream or sys.stderr, buffer_bytes, flush_ms)
    return _LOG


def flush() -> None:
    """Write out the process's buffered access-log lines, if any (exit hooks call this)."""
    _LOG.flush()


atexit.register(flush)
os.register_at_fork(after_in_child=_LOG._after_fork)
