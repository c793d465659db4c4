"""Admin API: move labels, pin the default version, reload versions. Bearer token required.

No token configured (``GATEWAY_ADMIN_TOKEN`` unset) means these routes are off (403). A
missing or wrong token gets a 401 and a warning in the log with the caller's address.
Labels are written to the model config file both tiers read; every worker and the
graph pick the change up within one poll interval (this worker at once).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, request

from gateway.errors import Conflict, InvalidField, NotFound
from gateway.logic.orchestrator import Scorer
from gateway.logic.versions.labels import set_label
from gateway.logic.versions.source import config_name
from gateway.logic.web.auth import authorize
from gateway.logic.web.readiness import model_status
from gateway.logic.web.state import app_state
from gateway.logic.web.views import json_response, read_json_body
from gateway.spec import STABLE

bp = Blueprint("admin", __name__, url_prefix="/admin/v1/models/<model>")
log = logging.getLogger("gateway.admin")


@bp.before_request
def _authorize() -> None:
    authorize()
    state = app_state()
    model = (request.view_args or {}).get("model")
    if model != state.scorer.spec.name:
        raise NotFound(f"this service serves model {state.scorer.spec.name!r}, not {model!r}")


def _scorer() -> Scorer:
    return app_state().scorer


def _version_from_body() -> int:
    body = read_json_body()
    version = body.get("version") if isinstance(body, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidField("version", "must be a positive integer")
    return version


def _label(label: str, version: int | None) -> dict[str, Any]:
    scorer = _scorer()
    path = app_state().settings.model_config_file
    if path is None:
        raise Conflict("no model config file is configured (GATEWAY_MODEL_CONFIG_FILE): labels cannot be set")
    if version is not None and version not in scorer.versions.routing.available:
        raise Conflict(
            f"version {version} is not available here (available: {sorted(scorer.versions.routing.available)}); "
            "a label may only name a version both tiers serve"
        )
    try:
        labels = set_label(path, config_name(scorer.spec), label, version)
    except ValueError as e:
        raise InvalidField("label", str(e)) from e
    except OSError as e:  # e.g. a Kubernetes ConfigMap: mounted read-only, owned by the deploy
        raise Conflict(
            f"the model config file {path} cannot be written here ({e.strerror}): where it is deployed "
            "read-only (a Kubernetes ConfigMap), labels come from the spec's versions block: "
            "change it, `gateway render` and deploy"
        ) from e
    log.info("admin: model %s label %s -> %s by %s", scorer.spec.name, label, version, request.remote_addr)
    scorer.versions.poll()
    return {"labels": labels, "default_version": scorer.versions.routing.default}


@bp.put("/labels/<label>")
def put_label(model: str, label: str) -> Response:
    return json_response(_label(label, _version_from_body()))


@bp.delete("/labels/<label>")
def delete_label(model: str, label: str) -> Response:
    return json_response(_label(label, None))


@bp.put("/default")
def pin_default(model: str) -> Response:
    """Pin the version requests naming none go to (the 'stable' label)."""
    return json_response(_label(STABLE, _version_from_body()))


@bp.delete("/default")
def unpin_default(model: str) -> Response:
    return json_response(_label(STABLE, None))


@bp.post("/reload")
def reload(model: str) -> Response:
    """Look at the model directory and the config file now (other workers within one poll)."""
    scorer = _scorer()
    scorer.versions.poll()
    return json_response(model_status(scorer) or {})
