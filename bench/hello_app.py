"""The baseline of the logic benchmark: a Flask hello-world answering POST /get_score.

It reads the body and returns a constant JSON envelope, under exactly the
gunicorn settings the logic service uses, so the difference in CPU per request
is what the gateway's own work costs.
"""

from __future__ import annotations

from flask import Flask, Response, request

BODY = b'{"msg":"Successful!","code":200,"data":[{"score":0.5}]}'


def create_app() -> Flask:
    app = Flask("hello")

    @app.post("/get_score")
    def get_score() -> Response:
        request.get_data()
        return Response(BODY, mimetype="application/json")

    @app.get("/health")
    def health() -> Response:
        return Response(b'{"health":"status","code":200}', mimetype="application/json")

    return app
