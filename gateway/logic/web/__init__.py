"""The logic service's web layer: app factory, views, OpenAPI, readiness, telemetry, gunicorn config.

Views only parse and shape; the work is done by :class:`gateway.logic.orchestrator.Scorer`,
which imports nothing from here.
"""
