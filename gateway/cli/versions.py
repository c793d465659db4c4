"""``gateway versions | label | promote | reload``: a model's versions, as an operator drives them.

They talk to a running logic service (``--url``; default: the model's service in the local
stack). Reading versions needs nothing; changing labels, the default version or reloading
needs the admin token (``--token``, else ``GATEWAY_ADMIN_TOKEN``, else the local stack's
``.run/admin-token``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.cli.common import Subparsers

TOKEN_FILE = Path(".run") / "admin-token"


class RemoteError(Exception):
    """The service answered with an error envelope (or not at all)."""


def service_url(model: str, url: str | None) -> str:
    if url:
        return url.rstrip("/")
    from gateway.spec import load_spec

    spec = Path("models") / model / "model.yaml"
    deploy = load_spec(spec).deploy if spec.is_file() else None
    if deploy is None:
        raise ConfigError(f"no --url given and {spec} gives no local port (deploy.ports.logic)")
    return f"http://127.0.0.1:{deploy.ports.logic}"


def admin_token(given: str | None) -> str:
    token = given or os.environ.get("GATEWAY_ADMIN_TOKEN")
    if not token and TOKEN_FILE.is_file():
        token = TOKEN_FILE.read_text().strip()
    if not token:
        raise ConfigError(
            "an admin token is needed: --token, GATEWAY_ADMIN_TOKEN or the local stack's .run/admin-token"
        )
    return token


def call(method: str, url: str, token: str | None = None, body: Any = None) -> dict[str, Any]:
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = requests.request(method, url, json=body, headers=headers, timeout=10)
    except requests.RequestException as e:
        raise RemoteError(f"{url}: {type(e).__name__}: {e}") from e
    try:
        data: dict[str, Any] = resp.json()
    except ValueError as e:
        raise RemoteError(f"{url}: HTTP {resp.status_code}, not JSON") from e
    if resp.status_code >= 400:
        raise RemoteError(f"{url}: HTTP {resp.status_code} {data.get('error', '')}: {data.get('msg', '')}")
    return data


def render_status(model: str, status: dict[str, Any]) -> str:
    lines = [
        f"model {model}: default version {status.get('default_version')}, labels {status.get('labels', {})}"
    ]
    lines.append(f"{'version':>8}  {'state':<10} message")
    for v in status.get("model_version_status", []):
        lines.append(f"{v['version']:>8}  {v['state']:<10} {v['status'].get('error_message', '')}")
    return "\n".join(lines)


def _versions(args: argparse.Namespace) -> int:
    status = call("GET", f"{service_url(args.model, args.url)}/v1/models/{args.model}")
    print(json.dumps(status, indent=2) if args.json else render_status(args.model, status))
    return 0


def _label(args: argparse.Namespace) -> int:
    base, token = service_url(args.model, args.url), admin_token(args.token)
    for assignment in args.assignments:
        label, sep, version = assignment.partition("=")
        if not sep or (version and not version.isdigit()):
            raise ConfigError(f"{assignment!r}: write LABEL=VERSION to set a label, LABEL= to remove it")
        url = f"{base}/admin/v1/models/{args.model}/labels/{label}"
        out = call("PUT", url, token, {"version": int(version)}) if version else call("DELETE", url, token)
        print(f"{args.model}: labels {out['labels']}, default version {out['default_version']}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    url = f"{service_url(args.model, args.url)}/admin/v1/models/{args.model}/default"
    token = admin_token(args.token)
    if args.unpin:
        out = call("DELETE", url, token)
    elif args.version is None:
        raise ConfigError("give the VERSION to pin as the default, or --unpin")
    else:
        out = call("PUT", url, token, {"version": args.version})
    print(f"{args.model}: default version {out['default_version']}, labels {out['labels']}")
    return 0


def _reload(args: argparse.Namespace) -> int:
    base = service_url(args.model, args.url)
    status = call("POST", f"{base}/admin/v1/models/{args.model}/reload", admin_token(args.token))
    print(render_status(args.model, status))
    return 0


def _remote(sp: argparse.ArgumentParser, admin: bool = True) -> None:
    sp.add_argument("model")
    sp.add_argument("--url", default=None, help="logic service (default: the model's in the local stack)")
    if admin:
        sp.add_argument(
            "--token", default=None, help="admin token (default: GATEWAY_ADMIN_TOKEN, .run/admin-token)"
        )


def add_version_commands(sub: Subparsers) -> None:
    vs = sub.add_parser(
        "versions",
        help="show a model's versions: state, errors, default version and labels",
        description="GET /v1/models/MODEL of the logic service: every version this worker knows (LOADING, "
        "AVAILABLE, UNLOADING, END with the error that ended it), the default version and the labels.",
    )
    vs.set_defaults(handler=_versions)
    _remote(vs, admin=False)
    vs.add_argument("--json", action="store_true", help="the status as JSON")

    lb = sub.add_parser(
        "label",
        help="point labels at versions (stable, canary, any [a-z0-9_]+); LABEL= removes one",
        description="Write labels into the model config file both tiers read (through the logic service's "
        "admin API). A label may only name a version the service already serves.",
    )
    lb.set_defaults(handler=_label)
    _remote(lb)
    lb.add_argument("assignments", nargs="+", metavar="LABEL=VERSION")

    pr = sub.add_parser(
        "promote",
        help="pin the version requests naming none go to (the 'stable' label); --unpin removes the pin",
    )
    pr.set_defaults(handler=_promote)
    _remote(pr)
    pr.add_argument("version", type=int, nargs="?")
    pr.add_argument("--unpin", action="store_true", help="back to the spec's promotion policy")

    rl = sub.add_parser("reload", help="make the service look for new, changed and removed versions now")
    rl.set_defaults(handler=_reload)
    _remote(rl)
