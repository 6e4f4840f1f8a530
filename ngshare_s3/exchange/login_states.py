"""A browser login's OAuth state completes one login only, whichever replica the Hub's redirect
lands on: the state's nonce is claimed in the metadata store, shared by every replica."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .exchange import Exchange


async def claim_login_state(exchange: Exchange, nonce: str, lifetime: timedelta) -> bool:
    """True the first time the nonce is used, False after. The claim must outlast the state's
    own validity (`lifetime`); it is kept twice that, so replicas' clocks may disagree a little."""
    expires_at = datetime.now(timezone.utc) + 2 * lifetime
    return await exchange.metadata.claim_once(f"oauth-state:{nonce}", expires_at)
