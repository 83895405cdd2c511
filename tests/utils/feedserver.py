"""A real HTTP server on 127.0.0.1 (or ::1) serving feed files, with ETag / Last-Modified support.

A route can also answer with any status and headers (a redirect is ``status=301`` with a
``Location`` header), stream its body chunked without a Content-Length (``chunk_size``), and
drip it slowly (``chunk_delay`` seconds before each chunk).
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LAST_MODIFIED = "Fri, 06 Sep 2024 10:00:00 GMT"


@dataclass
class Route:
    """What one path answers."""

    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    validators: bool = True  # send ETag / Last-Modified and honour conditional requests
    headers: dict[str, str] = field(default_factory=dict)
    chunk_size: int = 0  # > 0: send the body chunked, without a Content-Length
    chunk_delay: float = 0.0  # seconds to wait before each chunk

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # With the default backlog of 5, twenty clients connecting at once wait for SYN
    # retransmits (a second each), and a poll of many feeds would measure those.
    request_queue_size = 256


class _Server6(_Server):
    address_family = socket.AF_INET6


class FeedServer:
    """Serves ``routes``; counts hits and statuses, keeps the headers of every request."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        # When each request arrived (time.monotonic), by path, in order.
        self.arrivals: list[tuple[str, float]] = []
        # Requests being answered now, and the most ever answered at once.
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = (_Server6 if ":" in host else _Server)((host, 0), Handler)
        self.port = int(self.httpd.server_address[1])
        # A short poll interval keeps shutdown (and so every test's teardown) fast.
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def add(self, path: str, body: bytes, **kwargs: object) -> str:
        """Serve ``body`` at ``path``; return its full URL."""
        self.routes[path] = Route(body, **kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._answer(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path
        with self._lock:
            self.hits[path] += 1
            self.requests.append((path, {k.lower(): v for k, v in request.headers.items()}))
            self.arrivals.append((path, time.monotonic()))
        route = self.routes.get(path)
        if route is None:
            self._reply(request, 404, b"not found", {"Content-Type": "text/plain"})
            return
        headers = {"Content-Type": route.content_type, **route.headers}
        if route.validators:
            headers["ETag"] = route.etag
            headers["Last-Modified"] = LAST_MODIFIED
            if request.headers.get("If-None-Match") == route.etag:
                self._reply(request, 304, b"", {"ETag": route.etag})
                return
        if route.chunk_size > 0:
            self._reply_chunked(request, route, headers)
            return
        self._reply(request, route.status, route.body, headers)

    def _reply_chunked(
        self, request: BaseHTTPRequestHandler, route: Route, headers: dict[str, str]
    ) -> None:
        self._count(route.status)
        request.send_response(route.status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Transfer-Encoding", "chunked")
        request.end_headers()
        body, size = route.body, route.chunk_size
        try:
            for start in range(0, len(body), size):
                time.sleep(route.chunk_delay)
                chunk = body[start : start + size]
                request.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                request.wfile.flush()
            request.wfile.write(b"0\r\n\r\n")
        except ConnectionError:
            request.close_connection = True  # the client gave up; that is what a test wanted

    def _count(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1

    def _reply(
        self, request: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        self._count(status)
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        if status != 304:
            request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if status != 304:
            request.wfile.write(body)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def running_feed_server(host: str = "127.0.0.1") -> Iterator[FeedServer]:
    """A started FeedServer (on 127.0.0.1, or ``host``), stopped afterwards."""
    server = FeedServer(host)
    server.start()
    try:
        yield server
    finally:
        server.stop()
