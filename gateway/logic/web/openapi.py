"""OpenAPI 3.1 description of one model's logic service, generated from its spec."""

from __future__ import annotations

from typing import Any

from gateway import __version__
from gateway.spec import FieldSpec, ModelSpec

_TYPES = {"string": "string", "float": "number", "int": "integer", "bool": "boolean"}


def field_schema(f: FieldSpec) -> dict[str, Any]:
    s: dict[str, Any] = {"type": _TYPES[f.type]}
    if f.description:
        s["description"] = f.description
    if f.type == "string":
        s["maxLength"] = f.max_length
        if f.enum is not None:
            s["enum"] = list(f.enum)
    if f.min is not None:
        s["minimum"] = f.min
    if f.max is not None:
        s["maximum"] = f.max
    if not f.required and f.default is not None:
        s["default"] = f.default
    return s


def record_schema(spec: ModelSpec) -> dict[str, Any]:
    fields = spec.request.fields
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [f.name for f in fields if f.required],
        "properties": {f.name: field_schema(f) for f in fields},
    }


def _selectors() -> dict[str, Any]:
    return {
        "version": {"type": "integer", "minimum": 1, "description": "Score with this model version."},
        "label": {
            "type": "string",
            "maxLength": 64,
            "description": "Score with the version behind this label.",
        },
    }


def request_schema(spec: ModelSpec) -> dict[str, Any]:
    n = spec.request.max_items
    if spec.request.form == "records":
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["data"],
            "properties": {
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": n,
                    "items": {"$ref": "#/components/schemas/Record"},
                },
                **_selectors(),
            },
        }
    rk = spec.request.ranking
    assert rk is not None
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [rk.user_field, rk.items_field],
        "properties": {
            rk.user_field: {
                "type": "string",
                "minLength": 1,
                "description": f"The {rk.user_entity} to rank for.",
            },
            rk.items_field: {
                "type": "array",
                "minItems": 1,
                "maxItems": n,
                "items": {"type": "string", "minLength": 1},
            },
            rk.context_field: {"$ref": "#/components/schemas/Record"},
            "top_k": {
                "type": "integer",
                "minimum": 1,
                "description": "Return only the best k items, best first.",
            },
            **_selectors(),
        },
    }


def score_schema(spec: ModelSpec) -> dict[str, Any]:
    props: dict[str, Any] = {spec.postprocess.score_field: {"type": "number"}}
    if spec.postprocess.threshold is not None or spec.postprocess.labels:
        props["label"] = {"type": ["string", "integer"]}
    if spec.request.form == "ranking":
        props["item_id"] = {"type": "string"}
    return {"type": "object", "required": [spec.postprocess.score_field], "properties": props}


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["msg", "code", "error", "details"],
        "properties": {
            "msg": {"type": "string"},
            "code": {"type": "integer"},
            "error": {"type": "string", "description": "Stable machine-readable error code."},
            "details": {"type": "array"},
        },
    }


def _success_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["msg", "code", "data", "model"],
        "properties": {
            "msg": {"const": "Successful!"},
            "code": {"const": 200},
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Score"}},
            "model": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "version": {"type": "integer"}},
            },
        },
    }


def _json(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def build(spec: ModelSpec) -> dict[str, Any]:
    errors = {
        "400": "Malformed JSON or an invalid field (named in msg and details).",
        "404": "Unknown version or label.",
        "413": "Body too large.",
        "415": "Content-Type is not application/json.",
        "429": "The graph service is overloaded.",
        "503": "Feature store or graph service unavailable.",
        "504": "The graph service missed its deadline.",
    }
    score_responses = {"200": _json("Success", "Scores, one per record or item.")}
    score_responses.update({code: _json("Error", text) for code, text in errors.items()})
    plain = {"200": {"description": "OK"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{spec.name} scoring service",
            "version": __version__,
            "description": spec.description,
        },
        "paths": {
            "/get_score": {
                "post": {
                    "summary": f"Score with model {spec.name}",
                    "operationId": "get_score",
                    "parameters": [
                        {
                            "name": "X-Gateway-Explain",
                            "in": "header",
                            "required": False,
                            "description": "With the admin bearer token (Authorization: Bearer ...): the answer "
                            "also carries the feature values it was computed from, per request row "
                            "(`features`: columns, vectors, rows scored from defaults, snapshots); "
                            "what `gateway verify` reads.",
                            "schema": {"type": "string", "enum": ["features"]},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Request"}}},
                    },
                    "responses": score_responses,
                }
            },
            "/health": {"get": {"summary": "Liveness", "operationId": "health", "responses": plain}},
            "/ready": {
                "get": {
                    "summary": "Readiness",
                    "operationId": "ready",
                    "responses": {**plain, "503": _json("Error", "Not ready; details list why.")},
                }
            },
            "/metrics": {
                "get": {"summary": "Prometheus metrics", "operationId": "metrics", "responses": plain}
            },
        },
        "components": {
            "schemas": {
                "Request": request_schema(spec),
                "Record": record_schema(spec),
                "Score": score_schema(spec),
                "Success": _success_schema(),
                "Error": _error_schema(),
            }
        },
    }
