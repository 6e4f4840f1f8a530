"""A real HTTP server on 127.0.0.1 in a thread, answering with the handler a test gives it."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class Handler(BaseHTTPRequestHandler):
    """Answers GET and POST with self.answer(); quiet."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.answer()

    def do_POST(self):  # noqa: N802
        self.answer()

    def answer(self) -> None:
        raise NotImplementedError

    def send(self, status: int, kind: str, body: str, headers: dict | None = None) -> None:
        data = body.encode()
        try:
            self.send_response(status)
            self.send_header('Content-Type', kind)
            self.send_header('Content-Length', str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up waiting
            pass

    def send_json(self, status: int, body) -> None:
        self.send(status, 'application/json', json.dumps(body))

    def log_message(self, *args):
        pass


@contextmanager
def serving(handler: type[Handler]) -> Iterator[str]:
    """The server's base URL, ending in '/', while the block runs."""
    server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}/'
    finally:
        server.shutdown()
        server.server_close()
