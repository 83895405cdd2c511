"""A fast HTTP server for the poll benchmark: the corpus under many distinct URLs, from memory.

Run as its own process (``python -m benchmarks.corpus_server --feeds N``), so the CPU it spends
answering is not counted as the poller's. It prints its port on the first line of stdout, then
serves until it is terminated or its stdin is closed.

Feed ``n`` (0 <= n < N) is ``/f/<n>/<file>``, the corpus file ``n % len(corpus)``, so the corpus
repeats under distinct URLs on one host. Every answer carries an ETag and a Last-Modified.
``/_bench/mode/honour`` (the start) answers 304 to a matching conditional request;
``/_bench/mode/ignore`` ignores validators and sends every body again, unchanged. Switching the
mode resets the counters that ``/_bench/stats`` returns as JSON.

A small asyncio protocol instead of http.server or uvicorn: the benchmark wants the server to
cost as little as possible, and it only ever answers GETs of bodies it holds in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import hashlib
import json
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field

from benchmarks.common import corpus_missing, find_corpus

FEED_PREFIX = "/f/"
CONTROL_PREFIX = "/_bench/"
MODES = ("honour", "ignore")
_REASONS = {200: b"OK", 304: b"Not Modified", 404: b"Not Found"}
# Every request of a client on 127.0.0.1 arrives at once; the default backlog (100) would make
# some wait for a SYN retransmit (a second each), and the poll would measure that.
BACKLOG = 4096


@dataclass(frozen=True, slots=True)
class Document:
    """One corpus file as served: its bytes and validators."""

    name: str
    body: bytes
    content_type: str
    etag: str
    last_modified: str


@dataclass(slots=True)
class ServerState:
    """The documents, the current mode, and what was answered since the mode was last set."""

    documents: list[Document]
    feeds: int
    mode: str = "honour"
    statuses: Counter[int] = field(default_factory=Counter)
    conditional: int = 0  # requests that carried If-None-Match or If-Modified-Since

    def stats(self) -> dict[str, object]:
        """The counters as JSON-ready values."""
        return {
            "mode": self.mode,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "conditional": self.conditional,
        }


def feed_path(index: int, name: str) -> str:
    """The path feed ``index`` (whose corpus file is ``name``) is served at."""
    return f"{FEED_PREFIX}{index}/{name}"


def load_documents() -> list[Document]:
    """Every corpus file, in corpus order, with an ETag from its bytes and its mtime."""
    corpus = find_corpus()
    if corpus is None:
        raise SystemExit(corpus_missing())
    documents = []
    for feed in corpus.feeds:
        body = feed.read()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        modified = email.utils.formatdate(feed.path.stat().st_mtime, usegmt=True)
        documents.append(Document(feed.name, body, feed.content_type, etag, modified))
    return documents


def _not_modified(document: Document, headers: dict[bytes, bytes]) -> bool:
    """RFC 9110: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = headers.get(b"if-none-match")
    if if_none_match is not None:
        tags = {tag.strip() for tag in if_none_match.decode("latin-1").split(",")}
        return "*" in tags or document.etag in tags or f"W/{document.etag}" in tags
    since = headers.get(b"if-modified-since")
    if since is None:
        return False
    try:
        asked = email.utils.parsedate_to_datetime(since.decode("latin-1"))
        modified = email.utils.parsedate_to_datetime(document.last_modified)
    except (TypeError, ValueError):
        return False
    return modified <= asked


def _response(status: int, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b""))]
    lines.extend(f"{name}: {value}".encode("latin-1") for name, value in headers)
    if status != 304:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body if status != 304 else b"")


class FeedProtocol(asyncio.Protocol):
    """One client connection: HTTP/1.1 GETs, kept alive unless the client asks otherwise."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Answer every complete request head in the buffer (pipelined ones too)."""
        self.buffer += data
        while self.transport is not None and b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self._answer(head)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the transport."""
        self.transport = None

    def _answer(self, head: bytes) -> None:
        assert self.transport is not None
        request_line, *header_lines = head.split(b"\r\n")
        parts = request_line.split(b" ")
        target = parts[1].decode("latin-1") if len(parts) >= 2 else ""
        version = parts[2] if len(parts) >= 3 else b"HTTP/1.0"
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get(b"connection", b"").lower()
        close = connection == b"close" or (version == b"HTTP/1.0" and connection != b"keep-alive")
        self.transport.write(self._reply(target.split("?", 1)[0], headers))
        if close:
            self.transport.close()
            self.transport = None

    def _reply(self, path: str, headers: dict[bytes, bytes]) -> bytes:
        state = self.state
        if path.startswith(CONTROL_PREFIX):
            return self._control(path[len(CONTROL_PREFIX) :])
        document = self._document(path)
        if document is None:
            state.statuses[404] += 1
            return _response(404, [("Content-Type", "text/plain")], b"not found")
        if b"if-none-match" in headers or b"if-modified-since" in headers:
            state.conditional += 1
        validators = [("ETag", document.etag), ("Last-Modified", document.last_modified)]
        if state.mode == "honour" and _not_modified(document, headers):
            state.statuses[304] += 1
            return _response(304, validators)
        state.statuses[200] += 1
        return _response(200, [("Content-Type", document.content_type), *validators], document.body)

    def _document(self, path: str) -> Document | None:
        if not path.startswith(FEED_PREFIX):
            return None
        index_text, _, name = path[len(FEED_PREFIX) :].partition("/")
        if not index_text.isdigit() or int(index_text) >= self.state.feeds:
            return None
        documents = self.state.documents
        document = documents[int(index_text) % len(documents)]
        return document if document.name == name else None

    def _control(self, command: str) -> bytes:
        state = self.state
        if command.startswith("mode/") and command[len("mode/") :] in MODES:
            state.mode = command[len("mode/") :]
            state.statuses.clear()
            state.conditional = 0
        elif command != "stats":
            return _response(404, [("Content-Type", "text/plain")], b"no such command")
        body = json.dumps(state.stats()).encode()
        return _response(200, [("Content-Type", "application/json")], body)


async def serve(feeds: int, host: str, port: int) -> None:
    """Serve ``feeds`` URLs until terminated or until stdin closes; print the port first."""
    state = ServerState(load_documents(), feeds)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: FeedProtocol(state), host, port, backlog=BACKLOG, reuse_address=True
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # The parent holds our stdin open; if it dies without terminating us, EOF stops us.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    eof = asyncio.ensure_future(reader.read())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([eof, stopped], return_when=asyncio.FIRST_COMPLETED)
    server.close()


def main(argv: list[str]) -> int:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.corpus_server")
    parser.add_argument("--feeds", type=int, default=0, help="distinct URLs (default: corpus)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args(argv)
    corpus = find_corpus()
    feeds = args.feeds or (len(corpus.feeds) if corpus else 0)
    asyncio.run(serve(feeds, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
