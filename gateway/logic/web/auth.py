"""The admin bearer token: what the admin API and explained answers (``X-Gateway-Explain``) require.

No token configured (``GATEWAY_ADMIN_TOKEN`` unset) means 403; a missing or wrong token gets a
401 and a warning in the log with the caller's address.
"""

from __future__ import annotations

import hmac
import logging

from flask import request

from gateway.errors import Forbidden, Unauthorized
from gateway.logic.web.state import app_state

log = logging.getLogger("gateway.admin")


def authorize() -> None:
    """The admin bearer token, or 403 (no token configured) / 401 (missing or wrong: logged)."""
    state = app_state()
    token = state.settings.admin_token
    if token is None:
        raise Forbidden("the admin API is off: no admin token is configured (GATEWAY_ADMIN_TOKEN)")
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        log.warning(
            "admin %s %s refused: %s token from %s",
            request.method,
            request.path,
            "wrong" if given else "no",
            request.remote_addr,
        )
        raise Unauthorized("a valid bearer token is required")
