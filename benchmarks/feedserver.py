"""A real HTTP server on 127.0.0.1 serving corpus documents, with ETag / Last-Modified.

Unlike the test server it sends no charset (the documents declare their own encodings) and it
accepts a deep connection backlog: with the default of 5, twenty clients connecting at once
would wait for SYN retransmits and the benchmark would measure those.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchmarks.common import CorpusFeed

LAST_MODIFIED = "Tue, 17 Feb 2026 12:00:00 GMT"


@dataclass(frozen=True, slots=True)
class Document:
    """A response body with its type and validator."""

    body: bytes
    content_type: str
    etag: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class CorpusServer:
    """Serves documents at ``/feeds/<name>``; counts responses by status."""

    def __init__(self, documents: Mapping[str, Document]) -> None:
        self.documents = dict(documents)
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            """Hands every GET to the CorpusServer."""

            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.answer(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        """The URL a document is served at."""
        return f"http://127.0.0.1:{self.port}/feeds/{name}"

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        """Reply 200 with the document, 304 when the client has it already, or 404."""
        name = request.path.removeprefix("/feeds/")
        document = self.documents.get(name) if request.path.startswith("/feeds/") else None
        if document is None:
            self._reply(request, 404, b"not found", {"Content-Type": "text/plain"})
        elif request.headers.get("If-None-Match") == document.etag:
            self._reply(request, 304, b"", {"ETag": document.etag})
        else:
            headers = {
                "Content-Type": document.content_type,
                "ETag": document.etag,
                "Last-Modified": LAST_MODIFIED,
            }
            self._reply(request, 200, document.body, headers)

    def _reply(
        self, request: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        with self._lock:
            self.statuses[status] += 1
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        if status != 304:
            request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if status != 304:
            request.wfile.write(body)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()


def corpus_documents(feeds: tuple[CorpusFeed, ...]) -> dict[str, Document]:
    """Every corpus feed read into memory, keyed by file name."""
    documents = {}
    for feed in feeds:
        body = feed.read()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        documents[feed.name] = Document(body, feed.content_type, etag)
    return documents


@contextmanager
def serving(documents: Mapping[str, Document]) -> Iterator[CorpusServer]:
    """A started CorpusServer, stopped afterwards."""
    server = CorpusServer(documents)
    server.start()
    try:
        yield server
    finally:
        server.stop()
