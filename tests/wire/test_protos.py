"""The TF-Serving message modules import without TensorFlow's runtime."""

from __future__ import annotations

import subprocess

from gateway.procs import python

PROBE = """
import sys, resource
import gateway.wire.protos
from gateway.logic import graph_client
from gateway.logic.web import app
print(sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow.python")))
"""


def test_logic_imports_do_not_load_tensorflow() -> None:
    out = subprocess.run([python(), "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_real_tensorflow_still_imports_after_the_shim() -> None:
    probe = (
        "import gateway.wire.protos as p, numpy as np\n"
        "import tensorflow as tf\n"
        "t = tf.make_tensor_proto(np.array([1.5], np.float32))\n"
        "assert isinstance(t, p.tensor_pb2.TensorProto), type(t)\n"
        "print(tf.constant(2.0).numpy())\n"
    )
    out = subprocess.run(
        [python(), "-c", probe],
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "2.0"
