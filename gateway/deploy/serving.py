"""TF-Serving's files for a model's graph container: its model config and monitoring config.

Inside the images the graph serves ``/models/<name>/<version>/`` and reads ``/config``; the
logic container reads the same ``/config/models.config`` for the labels (a volume both
share in compose, a ConfigMap in Kubernetes).
"""

from __future__ import annotations

from gateway.logic.versions.config_file import graph_entry
from gateway.spec import GraphModelSpec, ModelSpec
from gateway.wire import model_config

CONFIG_DIR = "/config"
MODELS_DIR = "/models"
MONITORING_PATH = "/monitoring/prometheus/metrics"
GRPC, REST, LOGIC = 8500, 8501, 8000  # ports inside the containers

# TensorFlow's threads for small models on a few cores, and oneDNN off (its start-up and
# per-call overhead do not pay for models this size): every environment runs the graph so.
TF_FLAGS = ("--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=-1")
GRAPH_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0"}


def graph_name(spec: ModelSpec) -> str:
    return spec.graph.model_name if isinstance(spec, GraphModelSpec) else spec.name


def models_config(spec: ModelSpec) -> str:
    entry = graph_entry(spec, f"{MODELS_DIR}/{graph_name(spec)}", {})
    return model_config.render([entry])


def monitoring_config() -> str:
    return f'prometheus_config {{\n  enable: true\n  path: "{MONITORING_PATH}"\n}}\n'


def version_flags(config: str) -> list[str]:
    """The graph reads the model config file both tiers share and re-reads it every second.

    Labels in the file may name versions not loaded yet when the graph starts (TF-Serving
    checks labels before loading anything on its first config).
    """
    return [
        f"--model_config_file={config}",
        "--model_config_file_poll_wait_seconds=1",
        "--file_system_poll_wait_seconds=1",
        "--allow_version_labels_for_unavailable_models=true",
    ]


def graph_args(
    grpc: int = GRPC,
    rest: int = REST,
    config: str = f"{CONFIG_DIR}/models.config",
    monitoring: str = f"{CONFIG_DIR}/monitoring.config",
    batching: str | None = None,
) -> list[str]:
    """tensorflow_model_server's flags in every environment (graph-server takes the same).

    ``batching``: the model's batching config file, for a spec with ``deploy.batching``.
    """
    args = [
        f"--port={grpc}",
        f"--rest_api_port={rest}",
        *version_flags(config),
        f"--monitoring_config_file={monitoring}",
        *TF_FLAGS,
    ]
    if batching is not None:
        args += ["--enable_batching=true", f"--batching_parameters_file={batching}"]
    return args


def batching_config(spec: GraphModelSpec) -> str | None:
    """TF-Serving's ``BatchingParameters`` (text format) for the spec's ``deploy.batching``, if any."""
    b = spec.deploy.batching if spec.deploy is not None else None
    if b is None:
        return None
    fields = ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches")
    return "".join(f"{name} {{ value: {getattr(b, name)} }}\n" for name in fields)


def container_args(spec: GraphModelSpec) -> list[str]:
    """The graph container's flags for this model (compose and Kubernetes)."""
    batching = f"{CONFIG_DIR}/batching.config" if batching_config(spec) is not None else None
    return graph_args(batching=batching)


def graph_probe(spec: ModelSpec, rest: int = REST) -> list[str]:
    """A readiness check with what the TF-Serving image has (bash, no curl): a version AVAILABLE."""
    request = f"GET /v1/models/{graph_name(spec)} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n"
    script = f'exec 3<>/dev/tcp/127.0.0.1/{rest} && printf "{request}" >&3 && grep -q AVAILABLE <&3'
    return ["bash", "-c", script]
