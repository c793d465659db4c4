"""``deploy:``: how a model runs outside a notebook: ports, replicas, resources, autoscaling, batching.

Read by ``gateway render``, which writes every deployment file from the specs (the local
stack's process list, docker-compose.yml, the Kubernetes resources, TF-Serving's configs).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from gateway.spec.base import Strict


class Ports(Strict):
    """Host ports of the local stack and compose (containers listen on 8000, 8500 and 8501)."""

    logic: int = Field(ge=1024, le=65535)
    """The logic service's host port."""
    grpc: int | None = Field(None, ge=1024, le=65535, description="The graph's gRPC port (graph models).")
    rest: int | None = Field(None, ge=1024, le=65535, description="The graph's REST port (graph models).")

    @model_validator(mode="after")
    def _distinct(self) -> Ports:
        used = [p for p in (self.logic, self.grpc, self.rest) if p is not None]
        if len(used) != len(set(used)):
            raise ValueError(f"ports {used} must differ")
        return self


class Resources(Strict):
    """Kubernetes requests (= limits for cpu and memory, so the pod is Guaranteed) of one container."""

    cpu: str = "1"
    """Kubernetes cpu quantity ("500m", "2"); gunicorn runs one worker per whole core."""
    memory: str = "512Mi"
    """Kubernetes memory quantity ("512Mi", "1Gi")."""


class Autoscale(Strict):
    """The logic Deployment's HorizontalPodAutoscaler."""

    min: int = Field(2, ge=1)
    """Fewest logic pods (at least ``replicas``)."""
    max: int = Field(6, ge=1)
    """Most logic pods."""
    cpu_percent: int = Field(70, ge=10, le=100)
    """Average cpu use (of the request) the autoscaler aims at."""


class Batching(Strict):
    """TF-Serving's server-side batching: concurrent Predicts merged into one session run.

    Rendered to the graph's ``batching.config`` (``BatchingParameters``); the graph then runs
    with ``--enable_batching``. Pays when many small requests arrive at once (records of one
    row); a lone request waits up to ``batch_timeout_micros`` for company.
    """

    max_batch_size: int = Field(100, ge=1, description="Rows in one merged run (>= request.max_items).")
    batch_timeout_micros: int = Field(500, ge=0, description="How long an open batch waits for more.")
    num_batch_threads: int = Field(2, ge=1, description="Merged runs in parallel (about the graph's cores).")
    max_enqueued_batches: int = Field(64, ge=1, description="Queued batches before requests are refused.")


class DeploySpec(Strict):
    """How the model runs outside a notebook (read by `gateway render`)."""

    ports: Ports
    """Host ports of the local stack and compose."""
    replicas: int = Field(2, ge=1, description="Logic and graph pods in production (sit and stg run one).")
    logic: Resources = Resources(cpu="1", memory="512Mi")
    """Resources of a logic container."""
    graph: Resources = Resources(cpu="1", memory="1Gi")
    """Resources of a graph container."""
    autoscale: Autoscale = Autoscale()
    """The logic tier's autoscaler (graph pods: ``replicas``)."""
    batching: Batching | None = Field(None, description="Server-side batching in the graph (graph models).")
