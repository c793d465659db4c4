"""The buffered access log and request ids: what is written when, and ids that never repeat."""

from __future__ import annotations

import io
import os
import subprocess
import threading
import warnings

from gateway.logic.web.accesslog import BufferedLog
from gateway.logic.web.telemetry import new_request_id
from gateway.procs import python, wait_for
from tests.support import REPO


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_lines_wait_for_the_buffer_to_fill_then_go_out_in_order() -> None:
    out = io.StringIO()
    log = BufferedLog(out, buffer_bytes=40, flush_ms=600_000)  # 8 bytes a line with its newline
    log.write(b'{"n":1}')
    log.write(b'{"n":2}')
    assert out.getvalue() == "" and log.pending() == 2
    for n in range(3, 7):
        log.write(b'{"n":%d}' % n)
    assert _lines(out) == [f'{{"n":{n}}}' for n in range(1, 6)] and log.pending() == 1
    log.close()
    assert _lines(out) == [f'{{"n":{n}}}' for n in range(1, 7)]


def test_a_quiet_buffer_is_written_after_the_interval() -> None:
    out = io.StringIO()
    log = BufferedLog(out, buffer_bytes=1 << 20, flush_ms=50)
    try:
        log.write(b"first")
        wait_for(lambda: _lines(out) == ["first"], 10, "interval flush")
        log.write(b"second")  # a second batch after the flusher went idle
        wait_for(lambda: _lines(out) == ["first", "second"], 10, "second interval flush")
        assert log.pending() == 0
    finally:
        log.close()


def test_urgent_lines_and_unbuffered_logs_are_written_at_once() -> None:
    out = io.StringIO()
    log = BufferedLog(out, buffer_bytes=1 << 20, flush_ms=600_000)
    log.write(b"ok")
    log.write(b"server error", urgent=True)
    assert _lines(out) == ["ok", "server error"]  # what led up to it, then the error
    unbuffered = io.StringIO()
    plain = BufferedLog(unbuffered, buffer_bytes=0)
    plain.write(b"one")
    assert _lines(unbuffered) == ["one"]
    log.close()
    plain.close()


def test_concurrent_writers_never_interleave_or_lose_lines() -> None:
    out = io.StringIO()
    log = BufferedLog(out, buffer_bytes=256, flush_ms=600_000)

    def writer(t: int) -> None:
        for i in range(500):
            log.write(b"thread-%d-line-%04d" % (t, i))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    log.close()
    lines = _lines(out)
    assert sorted(lines) == sorted(f"thread-{t}-line-{i:04d}" for t in range(6) for i in range(500))
    for t in range(6):  # each thread's lines keep their order
        mine = [x for x in lines if x.startswith(f"thread-{t}-")]
        assert mine == sorted(mine)


def test_the_process_log_is_flushed_when_python_exits() -> None:
    code = (
        "import sys\n"
        "from gateway.logic.web import accesslog\n"
        "log = accesslog.configure(sys.stdout, buffer_bytes=1 << 20, flush_ms=600_000)\n"
        'log.write(b\'{"request_id": "at-exit"}\')\n'
        "assert log.pending() == 1\n"
    )
    done = subprocess.run(
        [python(), "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"request_id": "at-exit"}\n'


def test_request_ids_are_unique_across_threads() -> None:
    ids: list[list[str]] = [[] for _ in range(8)]

    def make(slot: list[str]) -> None:
        slot.extend(new_request_id() for _ in range(5000))

    threads = [threading.Thread(target=make, args=(slot,)) for slot in ids]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    flat = [x for slot in ids for x in slot]
    assert len(set(flat)) == len(flat) == 40000
    assert all(len(x) == 32 and int(x, 16) >= 0 for x in flat)


def test_a_forked_worker_draws_its_own_id_prefix() -> None:
    parent = new_request_id()
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child only writes
        pid = os.fork()
    if pid == 0:
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child[:16] != parent[:16]
