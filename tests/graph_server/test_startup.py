"""Start-up failures: each exits non-zero and says why, before any port opens."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from gateway.procs import free_port, python
from tests.graph_server.conftest import config_text
from tests.support import REPO


def run_server(*flags: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python(), "-m", "gateway.graph_server", f"--port={free_port()}", *flags],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--model_base_path=/m", "--no_such_flag=1"], "--no_such_flag"),
        (["--model_base_path=/m", "--port=eighty"], "--port"),
        (["--model_base_path=/m", "--rest_api_port=70000"], "--rest_api_port"),
        (["--model_base_path=/m", "--enable_batching=maybe"], "--enable_batching"),
        (["--model_base_path=/m", "--file_system_poll_wait_seconds=-1"], "--file_system_poll_wait_seconds"),
        (["--model_base_path=/m", "--batching_parameters_file=/b"], "--enable_batching"),
        (["--model_name=x"], "--model_base_path"),
        (["--model_base_path=/m", "--grpc_channel_arguments=nonsense"], "--grpc_channel_arguments"),
        (
            ["--model_base_path=/m", "--tensorflow_intra_op_parallelism=-1"],
            "--tensorflow_intra_op_parallelism",
        ),
    ],
)
def test_bad_flags_exit_non_zero_naming_the_flag(flags: list[str], named: str) -> None:
    done = run_server(*flags)
    assert done.returncode != 0
    assert named in done.stderr


def test_malformed_config_file_exits_with_tf_serving_message(anchors: Path) -> None:
    done = run_server(f"--model_config_file={anchors / 'bad_model_config.txt'}")
    assert done.returncode != 0
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in done.stderr


def test_malformed_batching_file_exits(tmp_path: Path) -> None:
    bad = tmp_path / "batching.txt"
    bad.write_text("max_batch_size { value: 4 }\nallowed_batch_sizes: 2\n")
    done = run_server("--model_base_path=/m", "--enable_batching", f"--batching_parameters_file={bad}")
    assert done.returncode != 0
    assert "Last entry in allowed_batch_sizes must match max_batch_size" in done.stderr


def test_negative_inter_op_parallelism_is_passed_to_tensorflow() -> None:
    """TensorFlow reads a negative inter-op thread count as "run every op in the calling thread"."""
    from gateway.graph_server import flags

    args = flags.parse(["--model_base_path=/m", "--tensorflow_inter_op_parallelism=-1"])
    assert args.tensorflow_inter_op_parallelism == -1


@pytest.mark.integration
def test_unloadable_model_fails_cleanly(anchors: Path) -> None:
    done = run_server("--model_name=bad", f"--model_base_path={anchors / 'bad_half_plus_two'}")
    assert done.returncode == 1
    assert "model(s) did not become available" in done.stderr
    assert "SavedModel file does not exist" in done.stderr
    assert "Running gRPC ModelServer" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.integration
def test_labels_on_unloaded_versions_are_refused_at_start(anchors: Path, tmp_path: Path) -> None:
    """TF-Serving's rule: a label needs an AVAILABLE version unless explicitly allowed."""
    config = tmp_path / "models.config"
    config.write_text(
        config_text(
            [
                {
                    "name": "two",
                    "base_path": anchors / "saved_model_half_plus_two_2_versions",
                    "policy": "model_version_policy { all {} }",
                    "labels": {"stable": 123},
                }
            ]
        )
    )
    done = run_server(f"--model_config_file={config}")
    assert done.returncode == 1
    assert "Request to assign label to version 123 of model two" in done.stderr


@pytest.mark.integration
@pytest.mark.parametrize("which", ["--port", "--rest_api_port"])
def test_busy_port_exits_non_zero(anchors: Path, which: str) -> None:
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        busy = held.getsockname()[1]
        done = run_server(
            "--model_name=default",
            f"--model_base_path={anchors / 'saved_model_half_plus_two_cpu'}",
            f"--rest_api_port={free_port()}",
            f"{which}={busy}",
        )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert ("cannot bind gRPC port" if which == "--port" else "Address already in use") in done.stderr
