"""The exchange service's HTTP API, as one call that either answers or raises.

Every failure (no answer, a timeout, a status other than 200, an answer that is not the API's
JSON envelope, `success: false`) becomes a ServiceError carrying the service's own message, so
that nbgrader reports it instead of carrying on as if the call had worked.
"""

from __future__ import annotations

from urllib.parse import quote

import re

import requests
from nbgrader.exchange.abc.exchange import ExchangeError


class ServiceError(ExchangeError):
    """A call to the exchange service did not succeed; the text says why, in the user's terms."""


class ExchangeService:
    """One user's connection to the exchange: base URL, Hub token and timeouts."""

    def __init__(self, url: str, token: str, connect_timeout: float, read_timeout: float):
        self.url = url.rstrip('/')
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        if token:
            self.session.headers['Authorization'] = f'token {token}'

    def call(self, method: str, route: str, params: dict | None = None, data: dict | None = None) -> dict:
        """Send one request (route like '/assignment/c/a'); return the answer's JSON envelope."""
        what = f'{method} {route}'
        try:
            response = self.session.request(
                method,
                self.url + quote(route, safe='/'),
                params=params,
                data=data,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.ConnectTimeout:
            raise ServiceError(
                f'The exchange at {self.url} did not accept a connection for {what} within {self.timeout[0]:g} s.'
            ) from None
        except requests.Timeout:
            raise ServiceError(
                f'The exchange at {self.url} did not answer {what} within {self.timeout[1]:g} s.'
            ) from None
        except requests.RequestException as error:
            raise ServiceError(f'The exchange at {self.url} cannot be reached ({what}): {reason(error)}') from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or 'success' not in body:
            raise ServiceError(
                f'The exchange at {self.url} answered {what} with HTTP {response.status_code} '
                f'{response.reason}, not with the exchange API: {response.text[:200]!r}'
            )
        if response.status_code != 200 or body['success'] is not True:
            message = body.get('message') or 'no reason given'
            raise ServiceError(f'The exchange refused {what}: {message} (HTTP {response.status_code})')
        return body


def reason(error: requests.RequestException) -> str:
    """The operating system's words for a failed connection ('Connection refused'), which
    requests buries in several layers of wrapped exceptions; else the whole text."""
    found = re.findall(r'\[Errno -?\d+\] ([^\'")]+)', str(error))
    return found[-1].strip() if found else str(error)
