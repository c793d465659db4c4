"""Shared fixtures: real redis-server, real graph-server, models built from their recipes.

Also the test tiers: a test using ``built_models`` is marked ``trains`` automatically, and
``--no-tensorflow`` (what ``make test-fast`` passes) makes any import of the TensorFlow
runtime in the test process fail the test that does it, and the session.
"""

from __future__ import annotations

import importlib.abc
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from gateway.procs import Proc, free_port, graph_command, python, redis_server_binary, start_redis, wait_for
from tests.support import REPO

GRAPH_READY_S = 90.0
# The TensorFlow runtime; the generated message modules under tensorflow.core are plain protobuf.
FORBIDDEN = ("tensorflow.python", "keras")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-tensorflow",
        action="store_true",
        help="fail any test that imports the TensorFlow runtime (the fast tier's promise)",
    )


class _RefuseTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        # The package's __init__ imports tensorflow.python first: refusing that refuses TensorFlow.
        if name.startswith(FORBIDDEN):
            raise ImportError(f"{name}: this test tier must not import TensorFlow (--no-tensorflow)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--no-tensorflow"):
        sys.meta_path.insert(0, _RefuseTensorFlow())


GRAPH_TESTS = Path(__file__).parent / "graph_server"  # the graph server is TensorFlow


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if config.getoption("--no-tensorflow") and collection_path.is_relative_to(GRAPH_TESTS):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "built_models" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.trains)
        if item.path.is_relative_to(GRAPH_TESTS):
            item.add_marker(pytest.mark.tensorflow)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    loaded = sorted(m for m in sys.modules if m.startswith(FORBIDDEN))
    if session.config.getoption("--no-tensorflow") and loaded:
        print(f"\n--no-tensorflow: the TensorFlow runtime was imported ({loaded[:3]} ...)", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees settings leaked from the developer's shell or another test."""
    for key in list(os.environ):
        if key.startswith("GATEWAY_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port; yields its URL."""
    proc, port = start_redis(tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    proc.stop()


@pytest.fixture
def redis_client(redis_server: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real 3-master Redis Cluster on free loopback ports; yields one node's URL."""
    procs: list[Proc] = []
    nodes = []
    try:
        for _ in range(3):
            port, bus = free_port(), free_port()
            data = tmp_path_factory.mktemp("cluster")
            procs.append(
                Proc(
                    [
                        redis_server_binary(),
                        *("--port", str(port), "--cluster-port", str(bus), "--bind", "127.0.0.1"),
                        *("--cluster-enabled", "yes", "--cluster-config-file", str(data / "nodes.conf")),
                        *("--save", "", "--appendonly", "no", "--dir", str(data)),
                    ],
                    data / "redis.log",
                )
            )
            client = redis.Redis(port=port)
            wait_for(lambda c=client: bool(c.ping()), 20, "cluster node", procs[-1])  # type: ignore[misc]
            nodes.append(port)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in nodes), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        info = [redis.Redis(port=p) for p in nodes]
        wait_for(lambda: all("cluster_state:ok" in _cluster_info(c) for c in info), 30, "redis cluster")
        yield f"redis://127.0.0.1:{nodes[0]}/0"
    finally:
        for proc in procs:
            proc.stop()


def _cluster_info(client: redis.Redis) -> str:
    raw = client.execute_command("CLUSTER INFO")
    if isinstance(raw, dict):
        return "\n".join(f"{k}:{v}" for k, v in raw.items())
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@pytest.fixture(scope="session")
def built_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every model under models/ trained from its recipe into a fresh root (deterministic seed)."""
    root = tmp_path_factory.mktemp("models")
    for spec in sorted((REPO / "models").glob("*/model.yaml")):
        (root / spec.parent.name).mkdir()
        shutil.copy(spec, root / spec.parent.name / "model.yaml")
    subprocess.run(
        [python(), "-m", "gateway.cli", "models", "build", "--root", str(root)],
        check=True,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return root


GraphFactory = Callable[..., tuple[Proc, int]]


@pytest.fixture(scope="session")
def start_graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphFactory]:
    """Start ``graph-server`` with TF-Serving flags; returns (process, gRPC port) once it serves."""
    procs: list[Proc] = []
    logs = tmp_path_factory.mktemp("graph-logs")

    def start(*flags: str, ready: bool = True, rest: bool = False) -> tuple[Proc, int]:
        port = free_port()
        args = list(flags)
        if rest:
            args.append(f"--rest_api_port={free_port()}")
        proc = Proc(
            graph_command(port, *args),
            logs / f"graph-{port}.log",
            env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        procs.append(proc)
        if ready:
            wait_for(
                lambda: "Running gRPC ModelServer" in proc.log.read_text(errors="replace"),
                GRAPH_READY_S,
                "graph-server",
                proc,
            )
        return proc, port

    yield start
    for p in procs:
        p.stop()


@pytest.fixture(scope="session")
def risk_graph(start_graph: GraphFactory, built_models: Path) -> int:
    """gRPC port of a graph-server serving the freshly built risk model."""
    _, port = start_graph("--model_name=risk", f"--model_base_path={built_models / 'risk'}")
    return port


@pytest.fixture(scope="session")
def risk_features(redis_server: str, built_models: Path) -> Callable[..., str]:
    """``load(db, model="risk")``: a model's demo features in Redis database ``db`` (loaded once); its URL."""
    from gateway.featurestore.load import load_entity, read_table
    from gateway.spec import load_spec

    loaded: dict[tuple[int, str], str] = {}

    def load(db: int, model: str = "risk") -> str:
        if (db, model) not in loaded:
            url = redis_server.rsplit("/", 1)[0] + f"/{db}"
            client = redis.Redis.from_url(url)
            if not any(d == db for d, _ in loaded):
                client.flushdb()
            spec = load_spec(built_models / model / "model.yaml")
            for table in sorted((built_models / model / "demo").glob("*.parquet")):
                load_entity(client, spec, table.stem, read_table(table))
            client.close()
            loaded[(db, model)] = url
        return loaded[(db, model)]

    return load


@pytest.fixture(scope="session")
def ctr_graph(start_graph: GraphFactory, built_models: Path) -> int:
    """gRPC port of a graph-server serving the freshly built ctr (ranking) model."""
    _, port = start_graph("--model_name=ctr", f"--model_base_path={built_models / 'ctr'}")
    return port
