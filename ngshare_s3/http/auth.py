"""Who is calling: the JupyterHub user behind the request's token, asked of the Hub through
JupyterHub's own HubAuth (awaited, with its cache). Any valid Hub token is accepted unless the
administrator requires the access scope: the nbgrader plugin sends the single-user server's
token, which by default carries no scope for this service."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from jupyterhub.services.auth import HubAuth, HubOAuth
from tornado.web import HTTPError

from ..exchange.errors import Forbidden, Unavailable
from ..exchange.permissions import Caller
from ..settings import Settings
from .app_keys import HUB_AUTH, METRICS, SETTINGS, USER
from .login import browser_token, login_redirect

log = logging.getLogger(__name__)

AUTHORIZATION = re.compile(r"\s*(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)
HUB_UNREACHABLE = "JupyterHub could not be reached to check the token; try again shortly"

Handler = Callable[[web.Request, Caller], Awaitable[web.StreamResponse]]


def make_hub_auth(settings: Settings) -> HubAuth:
    """HubOAuth when the Hub gave this service an OAuth client (browser login), else HubAuth."""
    options = dict(
        api_url=settings.hub_api_url,
        api_token=settings.hub_api_token,
        base_url=settings.prefix,
        cache_max_age=300,
        access_scopes={f"access:services!service={settings.service_name}"},
    )
    if settings.hub_client_id:
        return HubOAuth(oauth_client_id=settings.hub_client_id, **options)
    return HubAuth(**options)


def token_cache_key(token: str) -> str:
    """The key under which HubAuth.user_for_token caches a token's owner (no session id)."""
    return "token::" + hashlib.sha256(token.encode("utf8", "replace")).hexdigest()


def request_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        match = AUTHORIZATION.match(header)
        return match.group(1) if match else None
    return browser_token(request)


async def identify(request: web.Request) -> Caller | None:
    """Who is calling, or None when there is no valid token. 503 if the Hub is down.

    Exchange admins are the --admins users, and with --hub-admins also JupyterHub's admins."""
    token = request_token(request)
    if not token:
        return None
    hub_auth, settings = request.app[HUB_AUTH], request.app[SETTINGS]
    cached = token_cache_key(token) in hub_auth.cache
    request.app[METRICS].hub_lookups.labels("cache" if cached else "hub").inc()
    try:
        model = await asyncio.wait_for(hub_auth.user_for_token(token, sync=False), settings.hub_timeout)
    except (asyncio.TimeoutError, HTTPError) as error:
        log.warning("Token check with JupyterHub failed: %s", error)
        raise Unavailable(HUB_UNREACHABLE) from error
    if not model or not model.get("name"):
        return None
    if settings.require_access_scope and not hub_auth.check_scopes(hub_auth.access_scopes, model):
        raise Forbidden(f"Permission denied (the token lacks access:services!service={settings.service_name})")
    name = request[USER] = model["name"]
    return Caller(name, name in settings.admins or (settings.hub_admins and model.get("admin") is True))


def authenticated(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Unauthenticated GETs go to the Hub's login page, other methods get 403 (as ngshare)."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        caller = await identify(request)
        if caller is None:
            if request.method == "GET" and isinstance(request.app[HUB_AUTH], HubOAuth):
                return login_redirect(request)
            raise Forbidden("Authentication required")
        return await handler(request, caller)

    return wrapper
