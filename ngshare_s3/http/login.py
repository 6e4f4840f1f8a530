"""Browser login through the Hub's OAuth, with PKCE.

JupyterHub's HubOAuth builds the authorize URL, the PKCE challenge and the token exchange. The
OAuth state lives in a signed cookie rather than in HubOAuth's per-process memory, so the login
completes whichever replica the Hub's redirect lands on; the exchange records each state's use,
so that a state completes one login only, on every replica.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from datetime import timedelta

from aiohttp import web
from jupyterhub.services.auth import HubOAuth
from tornado.httputil import url_concat
from tornado.web import HTTPError, create_signed_value, decode_signed_value

from ..exchange.errors import BadRequest, Forbidden, Unavailable
from ..exchange.login_states import claim_login_state
from .app_keys import EXCHANGE, HUB_AUTH, SETTINGS

log = logging.getLogger(__name__)

STATE_MAX_AGE = 600
TOKEN_COOKIE_MAX_AGE_DAYS = 14
HUB_REFUSED_SERVICE_TOKEN = (
    "JupyterHub refused the service's API token; an administrator must check the service's api_token configuration"
)


def redirect(url: str) -> web.Response:
    return web.Response(status=302, headers={"Location": url})


def _is_https(request: web.Request) -> bool:
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    return request.secure or forwarded.split(",")[0].strip().lower() == "https"


def _sign(request: web.Request, name: str, value: str) -> str:
    return create_signed_value(request.app[SETTINGS].cookie_secret, name, value).decode()


def _unsign(request: web.Request, name: str, max_age_days: float) -> str | None:
    raw = request.cookies.get(name)
    if not raw:
        return None
    value = decode_signed_value(request.app[SETTINGS].cookie_secret, name, raw, max_age_days=max_age_days)
    return value.decode() if value else None


def browser_token(request: web.Request) -> str | None:
    """The Hub token a browser got at login; honoured on GET only, so no other site can make a
    signed-in browser change anything."""
    hub_auth = request.app[HUB_AUTH]
    if request.method != "GET" or not isinstance(hub_auth, HubOAuth):
        return None
    return _unsign(request, hub_auth.cookie_name, TOKEN_COOKIE_MAX_AGE_DAYS)


def login_redirect(request: web.Request) -> web.Response:
    """302 to the Hub's OAuth authorize page, remembering where to come back to."""
    hub_auth = request.app[HUB_AUTH]
    if not isinstance(hub_auth, HubOAuth):
        raise Forbidden("Authentication required")
    verifier, challenge, method = hub_auth.generate_pkce_code_challenge()
    state = secrets.token_urlsafe(16)
    cookie = json.dumps({"state": state, "next": request.path_qs, "verifier": verifier})
    url = url_concat(hub_auth.login_url, {"state": state, "code_challenge": challenge, "code_challenge_method": method})
    response = redirect(url)
    response.set_cookie(
        hub_auth.state_cookie_name, _sign(request, hub_auth.state_cookie_name, cookie),
        path=request.app[SETTINGS].prefix, httponly=True, max_age=STATE_MAX_AGE,
        secure=_is_https(request), samesite="Lax",
    )
    return response


async def _hub_refuses_service_token(hub_auth: HubOAuth, timeout: float) -> bool:
    """Whether the Hub knows no one by the service's own API token. HubAuth reports the Hub
    refusing it (as the OAuth client's secret) like any failed code exchange, so ask the Hub."""
    try:
        owner = await asyncio.wait_for(
            hub_auth.user_for_token(hub_auth.api_token, use_cache=False, sync=False), timeout
        )
    except (asyncio.TimeoutError, HTTPError):
        return False  # no answer either: the Hub is not saying it refuses the token
    return owner is None


async def oauth_callback(request: web.Request) -> web.StreamResponse:
    hub_auth = request.app[HUB_AUTH]
    settings = request.app[SETTINGS]
    if not isinstance(hub_auth, HubOAuth):
        raise Forbidden("Browser login is not configured (JUPYTERHUB_CLIENT_ID is not set)")
    if "error" in request.query:
        raise BadRequest(f"Error in OAuth: {request.query.get('error_description', request.query['error'])}")
    code = request.query.get("code")
    if not code:
        return login_redirect(request)
    saved = _unsign(request, hub_auth.state_cookie_name, STATE_MAX_AGE / 86400)
    state = json.loads(saved) if saved else {}
    if not state or state.get("state") != request.query.get("state"):
        raise Forbidden("OAuth state does not match. Try logging in again.")
    if not await claim_login_state(request.app[EXCHANGE], state["state"], timedelta(seconds=STATE_MAX_AGE)):
        raise Forbidden("OAuth state was already used. Try logging in again.")
    try:
        token = await asyncio.wait_for(
            hub_auth.token_for_code(code, code_verifier=state["verifier"], sync=False), settings.hub_timeout
        )
    except HTTPError as error:
        if await _hub_refuses_service_token(hub_auth, settings.hub_timeout):
            log.error(
                "JupyterHub refused the service's API token at a browser login (%s); check the "
                "service's api_token (JUPYTERHUB_API_TOKEN)", error.log_message,
            )
            raise Unavailable(HUB_REFUSED_SERVICE_TOKEN) from error
        raise Forbidden("OAuth login failed. Try logging in again.") from error
    except asyncio.TimeoutError as error:
        raise Unavailable("JupyterHub did not answer the OAuth login; try again shortly") from error
    next_url = state.get("next") or ""
    if not next_url.startswith(settings.prefix):
        next_url = settings.post_login_url
    response = redirect(next_url)
    response.del_cookie(hub_auth.state_cookie_name, path=settings.prefix)
    response.set_cookie(
        hub_auth.cookie_name, _sign(request, hub_auth.cookie_name, token),
        path=settings.prefix, httponly=True, secure=_is_https(request), samesite="Lax",
        max_age=TOKEN_COOKIE_MAX_AGE_DAYS * 86400,
    )
    return response
