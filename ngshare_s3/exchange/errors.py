"""The domain's failures. The HTTP layer turns each into the JSON envelope with its status.

The stores' own failures become the exchange's here, once, for every operation: the exchange
sees its stores through `translated`, so no layer above it meets a store error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar

from ..stores.errors import StoreRefused, StoreUnavailable
from ..stores.wrapped import WrappedStore

S = TypeVar("S")


class ExchangeError(Exception):
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(ExchangeError):
    status = 400


class Forbidden(ExchangeError):
    status = 403


class NotFound(ExchangeError):
    status = 404


class Conflict(ExchangeError):
    status = 409


class Unavailable(ExchangeError):
    """A store or the Hub cannot be reached, or refuses the service: the client may retry, or
    must wait for an administrator to mend the configuration."""

    status = 503


@contextlib.contextmanager
def _store_errors_translated(operation: str) -> Iterator[None]:
    """The store's error stays as the cause, so the log of the answer says what happened."""
    try:
        yield
    except StoreRefused as error:
        raise Unavailable(
            f"The exchange's {error.store} refused the service's credentials ({error.reason}); "
            "an administrator must fix its configuration"
        ) from error
    except StoreUnavailable as error:
        raise Unavailable(f"The exchange's {error.store} is unavailable; try again shortly") from error


def translated(store: S) -> S:
    """The store as the exchange uses it: its outages and refusals raise Unavailable."""
    return WrappedStore(store, _store_errors_translated)  # type: ignore[return-value]
