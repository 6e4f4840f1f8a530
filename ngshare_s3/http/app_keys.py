"""Typed aiohttp keys for what the application and each request carry (object keys in the
stores are exchange/keys.py's business)."""

from __future__ import annotations

from aiohttp import web
from jupyterhub.services.auth import HubAuth

from ..exchange.exchange import Exchange
from ..metrics import Metrics
from ..settings import Settings
from .draining import RequestsInFlight
from .release_cache import ReleaseCache
from .upload_memory import ByteBudget

SETTINGS = web.AppKey("settings", Settings)
EXCHANGE = web.AppKey("exchange", Exchange)
HUB_AUTH = web.AppKey("hub_auth", HubAuth)
METRICS = web.AppKey("metrics", Metrics)
IN_FLIGHT = web.AppKey("in_flight", RequestsInFlight)
UPLOAD_MEMORY = web.AppKey("upload_memory", ByteBudget)  # body bytes queued for parsers, all uploads
RELEASE_CACHE = web.AppKey("release_cache", ReleaseCache)
USER = web.RequestKey("user", str)  # the caller's name once the Hub identified the token
