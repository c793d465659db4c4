"""The local stack's process list: a supervisord config, run from the repository's root.

``gateway stack up`` starts supervisord with it (``.run/`` holds its socket, pid file,
logs and the models' config files) and the programs one by one; supervisord restarts a
process that dies and rotates the logs. The graph runs with the flags the graph image
uses (``serving.graph_args``), the logic service with the gunicorn config the logic image
uses.
"""

from __future__ import annotations

from gateway.deploy.serving import GRAPH_ENV, batching_config, graph_args, graph_name
from gateway.deploy.settings import DeploySettings
from gateway.spec import GraphModelSpec, ModelSpec

RUN = ".run"
HEADER = "; Rendered by `gateway render` from models/*/model.yaml and deploy/settings.yaml: do not edit.\n"


def _program(name: str, command: str, env: dict[str, str], stop_wait: int = 10) -> str:
    # supervisord splits on commas outside quotes: a JSON value goes in single quotes.
    environment = ",".join(f"{k}='{v}'" if '"' in v else f'{k}="{v}"' for k, v in env.items())
    lines = [
        f"[program:{name}]",
        f"command={command}",
        "directory=%(here)s/../..",
        "autostart=false",
        "autorestart=true",
        "startsecs=2",
        "startretries=5",
        "stopasgroup=true",
        "killasgroup=true",
        f"stopwaitsecs={stop_wait}",
        "redirect_stderr=true",
        f"stdout_logfile=%(here)s/../../{RUN}/logs/{name}.log",
        "stdout_logfile_maxbytes=10MB",
        "stdout_logfile_backups=3",
    ]
    if environment:
        lines.append(f"environment={environment}")
    return "\n".join(lines) + "\n"


def model_programs(spec: ModelSpec, redis_port: int) -> dict[str, str]:
    """``graph-<name>`` (graph models) and ``logic-<name>``, as supervisord sections."""
    assert spec.deploy is not None
    ports = spec.deploy.ports
    config = f"{RUN}/config/{spec.name}.config"
    out = {}
    env = {
        "GATEWAY_MODEL": spec.name,
        "GATEWAY_MODELS_ROOT": "models",
        "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "GATEWAY_BIND": f"127.0.0.1:{ports.logic}",
        "GATEWAY_MODEL_CONFIG_FILE": config,
        "GATEWAY_ADMIN_TOKEN": "%(ENV_GATEWAY_ADMIN_TOKEN)s",
    }
    if isinstance(spec, GraphModelSpec) and ports.grpc is not None and ports.rest is not None:
        serving = f"deploy/serving/{graph_name(spec)}"
        batching = f"{serving}/batching.config" if batching_config(spec) is not None else None
        args = graph_args(
            ports.grpc,
            ports.rest,
            config=config,
            monitoring=f"{serving}/monitoring.config",
            batching=batching,
        )
        command = "%(ENV_GATEWAY_PYTHON)s -m gateway.graph_server " + " ".join(args)
        out[f"graph-{spec.name}"] = _program(
            f"graph-{spec.name}", command, {"TF_CPP_MIN_LOG_LEVEL": "2", **GRAPH_ENV}
        )
        env["GATEWAY_GRAPH_TARGETS"] = f'["127.0.0.1:{ports.grpc}"]'
    command = "%(ENV_GATEWAY_PYTHON)s -m gunicorn -c python:gateway.logic.web.gunicorn_conf gateway.logic.web.app:create_app()"
    out[f"logic-{spec.name}"] = _program(f"logic-{spec.name}", command, env, stop_wait=25)
    return out


def supervisord_conf(settings: DeploySettings, models: list[ModelSpec]) -> str:
    port = settings.redis.port
    parts = [
        HEADER,
        "[supervisord]",
        f"logfile=%(here)s/../../{RUN}/logs/supervisord.log",
        "logfile_maxbytes=10MB",
        "logfile_backups=3",
        f"pidfile=%(here)s/../../{RUN}/supervisord.pid",
        "directory=%(here)s/../..",
        f"childlogdir=%(here)s/../../{RUN}/logs",
        "",
        "[unix_http_server]",
        f"file=%(here)s/../../{RUN}/supervisor.sock",
        "chmod=0700",
        "",
        "[supervisorctl]",
        f"serverurl=unix://%(here)s/../../{RUN}/supervisor.sock",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        _program(
            "redis",
            f"redis-server --port {port} --bind 127.0.0.1 --dir {RUN}/redis --appendonly yes --appendfsync everysec",
            {},
        ),
    ]
    for spec in models:
        parts += [*model_programs(spec, port).values()]
        names = ",".join(model_programs(spec, port))
        parts.append(f"[group:{spec.name}]\nprograms={names}\n")
    return "\n".join(parts)
