"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from aiohttp import web
from jupyterhub.services.auth import HubAuth

from ..exchange.context import Exchange
from ..settings import Settings

SETTINGS = web.AppKey("settings", Settings)
EXCHANGE = web.AppKey("exchange", Exchange)
HUB_AUTH = web.AppKey("hub_auth", HubAuth)
