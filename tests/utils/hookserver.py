"""A real HTTP server on 127.0.0.1 that receives webhooks, Apprise json:// and form:// posts and
ntfy-style pushes: it records every request, checks Standard Webhooks signatures with the
reference library (``standardwebhooks``), and answers each path as scripted: any status and
headers (429 with Retry-After, 410, 301 with Location), or slowly.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import standardwebhooks


@dataclass(frozen=True)
class Answer:
    """What one request to a path is answered: status, headers, body, after ``delay`` s."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request as it arrived; ``verified`` is None when it carried no signature."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool | None
    verify_error: str
    # How many other requests were being answered when this one arrived.
    others_in_flight: int
    arrived: float

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class HookServer:
    """Records requests; answers each path with its scripted answers in turn (the last one
    again and again), 200 "ok" by default."""

    def __init__(
        self, secret: str | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.secret = secret
        self.answers: dict[str, list[Answer]] = {}
        self.received: list[Received] = []
        self._in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                server._handle(self)

            def do_PUT(self) -> None:
                server._handle(self)

            def do_GET(self) -> None:
                server._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: Answer) -> None:
        """Answer ``path`` with ``answers`` in turn (the last one stays)."""
        self.answers[path] = list(answers)

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path.split("?")[0] == path]

    def _answer_for(self, path: str) -> Answer:
        with self._lock:
            queue = self.answers.get(path.split("?")[0])
            if not queue:
                return Answer()
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _verify(self, headers: dict[str, str], body: bytes) -> tuple[bool | None, str]:
        if self.secret is None or "webhook-signature" not in headers:
            return None, ""
        try:
            standardwebhooks.Webhook(self.secret).verify(body, headers)
        except Exception as exc:
            return False, str(exc)
        return True, ""

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified, error = self._verify(headers, body)
        with self._lock:
            others = self._in_flight
            self._in_flight += 1
            self.received.append(
                Received(request.command, request.path, headers, body, verified, error, others,
                         time.monotonic())
            )  # fmt: skip
        try:
            answer = self._answer_for(request.path)
            if answer.delay:
                time.sleep(answer.delay)
            try:
                request.send_response(answer.status)
                for name, value in {"Content-Type": "text/plain", **answer.headers}.items():
                    request.send_header(name, value)
                request.send_header("Content-Length", str(len(answer.body)))
                request.end_headers()
                request.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):
                request.close_connection = True  # the client gave up, as a test wanted
        finally:
            with self._lock:
                self._in_flight -= 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def running_hook_server(
    secret: str | None = None, ssl_context: ssl.SSLContext | None = None
) -> Iterator[HookServer]:
    """A started HookServer (over TLS with ``ssl_context``), stopped afterwards."""
    server = HookServer(secret, ssl_context)
    server.start()
    try:
        yield server
    finally:
        server.stop()
