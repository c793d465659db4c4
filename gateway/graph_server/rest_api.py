"""The REST API on ``--rest_api_port``: TF-Serving's routes, bodies and status codes.

``GET  /v1/models/M[/versions/N | /labels/L]``            model status
``GET  /v1/models/M[/versions/N | /labels/L]/metadata``   signature metadata
``POST /v1/models/M[/versions/N | /labels/L]:predict``    (also ``:classify``, ``:regress``)

Paths match case-insensitively, model names and labels are URL-decoded. Every
answer is JSON (``Content-Type: application/json``); errors are
``{"error": "<message>"}`` with TF-Serving's gRPC-to-HTTP status table. The
Prometheus page, when enabled, is served at its configured path.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from google.protobuf import json_format

from gateway.graph_server.dataplane import Dataplane
from gateway.graph_server.errors import ServingError, invalid
from gateway.graph_server.example_json import classification_json, examples_input, regression_json
from gateway.graph_server.monitoring import CallInfo, Metrics
from gateway.graph_server.rest_json import parse_body, predict_inputs, predict_json, signature_name
from gateway.wire.protos import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    regression_pb2,
)
from gateway.wire.status import http_status
from gateway.wire.tensors import TensorError

log = logging.getLogger("gateway.graph_server")

_SPEC = r"(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
_PREDICT_PATH = re.compile(r"/v1/models/([^/:]+)" + _SPEC + r":(classify|regress|predict)", re.IGNORECASE)
_STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?" + _SPEC + r"(?:/(metadata))?", re.IGNORECASE)
_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)
_INT64_MAX = 2**63 - 1
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class RestResponse:
    status: int
    body: bytes
    content_type: str = JSON_TYPE


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")


class RestApi:
    """Routes one HTTP request to the dataplane and renders TF-Serving's JSON."""

    def __init__(
        self,
        dataplane: Dataplane,
        metrics: Metrics,
        timeout_s: float | None = None,
        monitoring_path: str | None = None,
    ) -> None:
        self.dataplane = dataplane
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.monitoring_path = monitoring_path

    def handle(self, method: str, target: str, body: bytes, origin: str = "") -> RestResponse:
        path = target.split("?", 1)[0]
        if self.monitoring_path is not None and path == self.monitoring_path:
            return RestResponse(200, self.metrics.page(), self.metrics.content_type)
        if not _API_PATH.fullmatch(path):
            return RestResponse(404, error_body(f"Not found: {method} {path}"))
        if method == "OPTIONS":
            if re.search(r"https?://", origin):
                return RestResponse(200, b"")
            return RestResponse(400, error_body("Origin header is missing in CORS preflight"))
        info = CallInfo(api="", entrypoint="REST")
        try:
            text = self._dispatch(method, path, body, info)
            status = 200
            out, code_name = text.encode("utf-8"), "OK"
        except ServingError as e:
            status, out, code_name = http_status(e.code), error_body(e.message), e.code.name
        except TensorError as e:
            status, out, code_name = 400, error_body(str(e)), "INVALID_ARGUMENT"
        except Exception as e:  # never a traceback to the client
            log.exception("REST %s %s failed", method, path)
            status, out, code_name = 500, error_body(f"{type(e).__name__}: {e}"), "INTERNAL"
        self.metrics.record(info, code_name)
        return RestResponse(status, out)

    def _dispatch(self, method: str, path: str, body: bytes, info: CallInfo) -> str:
        malformed = invalid(f"Malformed request: {method} {path}")
        if method == "POST":
            m = _PREDICT_PATH.fullmatch(path)
            if m is None:
                raise malformed
            name, version, label, verb = m.groups()
            info.api, info.model = verb, unquote(name)
            spec = model_spec(name, version, label)
            if verb == "predict":
                return self._predict(spec, body, info)
            if verb in ("classify", "regress"):
                return self._classify_regress(verb, spec, body, info)
            raise malformed
        if method == "GET":
            m = _STATUS_PATH.fullmatch(path)
            if m is None:
                raise malformed
            name, version, label, sub = m.groups()
            info.api, info.model = sub or "status", unquote(name or "")
            if not name:
                raise invalid("Missing model name in request.")
            spec = model_spec(name, version, label)
            if sub == "metadata":
                return self._metadata(spec, info)
            return self._status(spec, info)
        raise malformed

    def _predict(self, spec: Any, body: bytes, info: CallInfo) -> str:
        doc = parse_body(body)
        spec.signature_name = signature_name(doc)
        infos = self.dataplane.input_info(spec, info)
        fmt, inputs = predict_inputs(doc, infos, spec.signature_name)
        pred = self.dataplane.predict(spec, inputs, (), info, timeout_s=self.timeout_s)
        return predict_json(pred.outputs, fmt)

    def _classify_regress(self, verb: str, spec: Any, body: bytes, info: CallInfo) -> str:
        doc = parse_body(body)
        spec.signature_name = signature_name(doc)
        if verb == "classify":
            creq = classification_pb2.ClassificationRequest(model_spec=spec, input=examples_input(doc))
            return classification_json(self.dataplane.classify(creq, info, self.timeout_s).result)
        rreq = regression_pb2.RegressionRequest(model_spec=spec, input=examples_input(doc))
        return regression_json(self.dataplane.regress(rreq, info, self.timeout_s).result)

    def _status(self, spec: Any, info: CallInfo) -> str:
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
        response = self.dataplane.status(request, info)
        return str(
            json_format.MessageToJson(
                response,
                always_print_fields_with_no_presence=True,
                preserving_proto_field_name=True,
                indent=1,
            )
        )

    def _metadata(self, spec: Any, info: CallInfo) -> str:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=["signature_def"]
        )
        response = self.dataplane.metadata(request, info)
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sigmap)
        opts: dict[str, Any] = {
            "always_print_fields_with_no_presence": True,
            "preserving_proto_field_name": True,
        }
        doc = {
            "model_spec": json_format.MessageToDict(response.model_spec, **opts),
            "metadata": {"signature_def": json_format.MessageToDict(sigmap, **opts)},
        }
        return json.dumps(doc, indent=1)


def model_spec(name: str, version: str | None, label: str | None) -> Any:
    """A ModelSpec from the URL parts (name and label URL-decoded, version checked)."""
    spec = model_pb2.ModelSpec(name=unquote(name))
    if version:
        if int(version) > _INT64_MAX:
            raise invalid(f"Failed to convert version: {version} to numeric.")
        spec.version.value = int(version)
    if label:
        spec.version_label = unquote(label)
    return spec
