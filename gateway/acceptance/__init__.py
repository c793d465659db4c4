"""Acceptance tools run against a deployment: consistency check (verify), load test (bench), drift."""
