"""``deploy:``: how a model runs outside a notebook: ports, replicas, resources, autoscaling.

Read by ``gateway render``, which writes every deployment file from the specs (the local
stack's process list, docker-compose.yml, the Kubernetes resources, TF-Serving's configs).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from gateway.spec.base import Strict


class Ports(Strict):
    """Host ports of the local stack and compose (containers listen on 8000, 8500 and 8501)."""

    logic: int = Field(ge=1024, le=65535)
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
    memory: str = "512Mi"


class Autoscale(Strict):
    min: int = Field(2, ge=1)
    max: int = Field(6, ge=1)
    cpu_percent: int = Field(70, ge=10, le=100)


class DeploySpec(Strict):
    ports: Ports
    replicas: int = Field(2, ge=1, description="Logic and graph pods in production (sit and stg run one).")
    logic: Resources = Resources(cpu="1", memory="512Mi")
    graph: Resources = Resources(cpu="1", memory="1Gi")
    autoscale: Autoscale = Autoscale()
