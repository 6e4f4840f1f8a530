"""Typed aiohttp keys for what the application and each request carry (object keys in the
stores are exchange/keys.py's business)."""

from __future__ import annotations

from aiohttp import web
from jupyterhub.services.auth import HubAuth

from ..exchange.exchange import Exchange
from ..metrics import Metrics
from ..settings import Settings
from .draining import RequestsInFlight

SETTINGS = web.AppKey("settings", Settings)
EXCHANGE = web.AppKey("exchange", Exchange)
HUB_AUTH = web.AppKey("hub_auth", HubAuth)
METRICS = web.AppKey("metrics", Metrics)
IN_FLIGHT = web.AppKey("in_flight", RequestsInFlight)
USER = web.RequestKey("user", str)  # the caller's name once the Hub identified the token
