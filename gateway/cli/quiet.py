"""TensorFlow's start-up noise kept out of a command's output (shown with ``--verbose``).

Importing TensorFlow and loading a SavedModel write to the process's stderr from C++
(CUDA probing, oneDNN notices, NodeDef attribute warnings) before any Python logging
setting applies; the lines read like failures. While a command that loads TensorFlow
runs, file descriptor 2 points at a temporary file and Python's own ``sys.stderr`` (our
messages, warnings, logging) at the terminal. If the command fails, the captured lines
are counted and ``--verbose`` named.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import TextIO


class NativeNoise:
    def __init__(self) -> None:
        self.lines = 0


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[NativeNoise]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.WARNING)
    noise = NativeNoise()
    sys.stderr.flush()
    terminal = os.dup(2)
    python_stderr: TextIO = sys.stderr
    try:  # Python's stderr is the process's (not, say, a test's capture): keep it on the terminal
        own = python_stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        own = False
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        if own:
            sys.stderr = open(terminal, "w", buffering=1, closefd=False)  # noqa: SIM115 (restored below)
        try:
            yield noise
        finally:
            sys.stderr.flush()
            os.dup2(terminal, 2)
            if own:
                sys.stderr.close()
            sys.stderr = python_stderr
            os.close(terminal)
            sink.seek(0)
            noise.lines = sum(1 for line in sink if line.strip())
