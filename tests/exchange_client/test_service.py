"""ExchangeService.call against a real HTTP server: every answer that is not the exchange API's
success becomes a ServiceError that says what happened, and no call waits longer than its timeout."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from nbgrader.exchange.abc.exchange import ExchangeError

from ngshare_s3_exchange.service import ExchangeService, ServiceError

from .local_server import Handler, serving

SLOW_SECONDS = 3
TOKEN = 'secret-token'
HTML_ERROR = '<html><body><h1>500: Internal Server Error</h1></body></html>'


def envelope(status: int, body: dict | list) -> tuple[int, str, str]:
    return status, 'application/json', json.dumps(body)


# What the server answers, by path: status, content type and body.
ANSWERS = {
    '/ok': envelope(200, {'success': True, 'courses': ['course101']}),
    '/html-500': (500, 'text/html', HTML_ERROR),
    '/text-200': (200, 'text/plain', 'Welcome to nginx!'),
    '/refused-200': envelope(200, {'success': False, 'message': 'Course is being deleted'}),
    '/not-found': envelope(404, {'success': False, 'message': 'Course not found'}),
    '/forbidden-without-message': envelope(403, {'success': False}),
    '/success-in-a-500': envelope(500, {'success': True}),
    '/success-as-text': envelope(200, {'success': 'true'}),
    '/a-list': envelope(200, [{'success': True}]),
}


class AnswerByPath(Handler):
    def answer(self):
        url = urlsplit(self.path)
        if url.path == '/redirect':
            self.send(302, 'text/plain', '', {'Location': '/ok'})
        elif url.path == '/slow':
            time.sleep(SLOW_SECONDS)
            self.send(*ANSWERS['/ok'])
        elif url.path.startswith('/echo/'):
            length = int(self.headers.get('Content-Length') or 0)
            self.send_json(200, {
                'success': True,
                'path': url.path,
                'query': parse_qs(url.query),
                'form': parse_qs(self.rfile.read(length).decode()),
                'authorization': self.headers.get('Authorization'),
            })
        else:
            self.send(*ANSWERS.get(url.path, (404, 'text/plain', 'no such page')))


@pytest.fixture(scope='module')
def server_url():
    with serving(AnswerByPath) as url:
        yield url


def service(url: str, connect_timeout: float = 5, read_timeout: float = 5) -> ExchangeService:
    return ExchangeService(url, TOKEN, connect_timeout, read_timeout)


def refusal(url: str, route: str, **timeouts) -> str:
    with pytest.raises(ServiceError) as raised:
        service(url, **timeouts).call('GET', route)
    return str(raised.value)


def test_a_success_returns_the_envelope_and_sends_the_token_and_the_request(server_url):
    assert service(server_url).call('GET', '/ok') == {'success': True, 'courses': ['course101']}
    answer = service(server_url).call('POST', '/echo/assignment/course 1/ps#1', params={'list_only': 'true'}, data={'files': '[]'})
    assert answer['authorization'] == f'token {TOKEN}'
    assert answer['path'] == '/echo/assignment/course%201/ps%231'
    assert answer['query'] == {'list_only': ['true']} and answer['form'] == {'files': ['[]']}


def test_a_service_error_is_an_exchange_error_nbgrader_reports():
    assert issubclass(ServiceError, ExchangeError)


@pytest.mark.parametrize('route, message', [
    ('/not-found', 'The exchange refused GET /not-found: Course not found (HTTP 404)'),
    ('/refused-200', 'The exchange refused GET /refused-200: Course is being deleted (HTTP 200)'),
    ('/forbidden-without-message', 'The exchange refused GET /forbidden-without-message: no reason given (HTTP 403)'),
    ('/success-in-a-500', 'The exchange refused GET /success-in-a-500: no reason given (HTTP 500)'),
    ('/success-as-text', 'The exchange refused GET /success-as-text: no reason given (HTTP 200)'),
])
def test_a_refusal_carries_the_services_message_and_status(server_url, route, message):
    assert refusal(server_url, route) == message


@pytest.mark.parametrize('route, status, excerpt', [
    ('/html-500', 'HTTP 500 Internal Server Error', HTML_ERROR),
    ('/text-200', 'HTTP 200 OK', 'Welcome to nginx!'),
    ('/a-list', 'HTTP 200 OK', '[{"success": true}]'),
    ('/redirect', 'HTTP 302 Found', ''),
    ('/no-such-page', 'HTTP 404 Not Found', 'no such page'),
])
def test_an_answer_that_is_not_the_api_says_what_came_instead(server_url, route, status, excerpt):
    message = refusal(server_url, route)
    base = server_url.rstrip('/')
    assert message.startswith(f'The exchange at {base} answered GET {route} with {status}, not with the exchange API: ')
    assert repr(excerpt) in message


def test_a_long_answer_is_quoted_in_part(server_url):
    message = refusal(server_url + 'html-500', '/')  # the route is the page's own
    assert len(message) < 400


def test_a_slow_answer_ends_at_the_read_timeout(server_url):
    started = time.monotonic()
    message = refusal(server_url, '/slow', read_timeout=0.5)
    assert time.monotonic() - started < SLOW_SECONDS - 1
    assert message == f'The exchange at {server_url.rstrip("/")} did not answer GET /slow within 0.5 s.'


def test_a_closed_port_cannot_be_reached():
    with socket.socket() as probe:  # a port that was free a moment ago, and nobody listens on
        probe.bind(('127.0.0.1', 0))
        url = f'http://127.0.0.1:{probe.getsockname()[1]}'
    message = refusal(url, '/courses')
    assert message.startswith(f'The exchange at {url} cannot be reached (GET /courses): ')
    assert 'Connection refused' in message


def test_a_server_that_takes_no_more_connections_ends_at_the_connect_timeout():
    """A listening socket whose queue of connections is full: the kernel drops further attempts,
    so connecting hangs until the connect timeout (and not the longer read timeout)."""
    with socket.create_server(('127.0.0.1', 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        queued = []
        try:
            while True:  # fill the queue until a connection attempt hangs
                attempt = socket.create_connection(('127.0.0.1', port), timeout=0.5)
                queued.append(attempt)
        except OSError:
            pass
        url = f'http://127.0.0.1:{port}'
        started = time.monotonic()
        message = refusal(url, '/courses', connect_timeout=0.5, read_timeout=30)
        seconds = time.monotonic() - started
        for connection in queued:
            connection.close()
    assert seconds < 5
    assert message == f'The exchange at {url} did not accept a connection for GET /courses within 0.5 s.'
