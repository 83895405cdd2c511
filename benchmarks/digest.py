"""``digest``: render and send 10,000 digests of 20 stories each to an SMTP server on 127.0.0.1.

Rendering is the path a send takes (``compose_digest``: subject, text and HTML templates, CSS
inlining, unsubscribe token, the MIME message with quoted-printable bodies); its rate is on one
core, from the CPU time of this thread. The message becomes bytes in the send, which goes
through SmtpTransport, one connection for the whole batch, to an aiosmtpd server in a child
process (so the server does not share this process's interpreter lock); that rate is end to
end, wall time, rendering included. The digests are built in memory (no database), from a pool
of stories shared between subscribers, as real subscribers share the news. Peak memory is this
process's maximum RSS, plus what one digest allocates at most while rendered (tracemalloc, on
a sample).

A profile of rendering alone follows, to show where its time goes.
"""

from __future__ import annotations

import asyncio
import cProfile
import multiprocessing
import pstats
import random
import socket
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

from benchmarks.common import Table, peak_rss_mb, progress, rate
from monitor.delivery.digest import Digest, DigestArticle, DigestSection
from monitor.delivery.mailer import SmtpTransport
from monitor.delivery.render import Letterhead, build_environment, compose_digest
from monitor.settings import MailSettings

TITLE = "digest: render and send 10,000 digests of 20 stories each"
DIGESTS = 10_000
STORIES = 20
POOL = 2_000  # distinct stories the digests draw from
PROFILE_DIGESTS = 300
MEMORY_SAMPLE = 50
GOAL = 200.0  # digests/s rendered on one core
SEED = 20240906
NOW = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)
TOPICS = [
    ("election-interference", "Election interference"),
    ("russian-disinformation", "Russian disinformation"),
    ("central-banks", "Central banks"),
    ("us-election-2024", "The 2024 US election"),
]
_WORDS = (
    "election", "interference", "campaign", "ministry", "officials", "troll", "farm", "network",
    "accounts", "vote", "parliament", "Kremlin", "sanctions", "report", "investigators",
    "platform", "posts", "disinformation", "rates", "central", "bank", "inflation", "markets",
    "statement", "analysts", "Brussels", "Washington", "Berlin", "Moscow",
)  # fmt: skip


def story_pool(rng: random.Random) -> list[DigestArticle]:
    """POOL stories: ~70-character titles, ~280-character excerpts, a few highlights each."""
    stories = []
    for number in range(POOL):
        title = " ".join(rng.choice(_WORDS) for _ in range(9)).capitalize()
        excerpt = " ".join(rng.choice(_WORDS) for _ in range(36)) + " …"
        start = rng.randrange(0, 120)
        stories.append(
            DigestArticle(
                title=title,
                url=f"https://news.example.com/2024/09/09/story-{number}?ref=rss",
                outlet=f"Outlet {number % 150}",
                published_at=NOW - timedelta(minutes=number),
                first_seen_at=NOW - timedelta(minutes=number),
                excerpt=excerpt,
                terms=("election interference",),
                title_highlights=((0, min(12, len(title))),),
                excerpt_highlights=((start, start + 21),),
            )
        )
    return stories


def digests(rng: random.Random, stories: list[DigestArticle], count: int) -> Iterator[Digest]:
    """``count`` digests of STORIES stories in two to four topics, made as they are needed."""
    for number in range(count):
        chosen = rng.sample(stories, STORIES)
        topics = rng.sample(TOPICS, rng.randint(2, len(TOPICS)))
        sections = [DigestSection(slug, name) for slug, name in topics]
        for index, story in enumerate(chosen):
            sections[index % len(sections)].articles.append(story)
        yield Digest(
            delivery_id=number + 1,
            message_id=f"<digest.{number:08x}@example.net>",
            email=f"reader{number}@example.org",
            name=f"Reader {number}",
            timezone="Europe/Berlin",
            created_at=NOW,
            sections=sections,
            subscriber_id=number + 1,
            topic_ids=tuple(range(1, len(sections) + 1)),
            frequency="daily",
            since=NOW - timedelta(days=1),
        )


def letterhead() -> Letterhead:
    """The sender, with a fixed signing key (no key file is written)."""
    return Letterhead(
        from_address="monitor@example.net",
        from_name="monitor",
        reply_to="",
        base_url="https://monitor.example.net",
        secret_key="benchmark-signing-key-0123456789abcdef",
        subject_prefix="[monitor]",
    )


def _serve(connection: Connection) -> None:
    """Child process: an aiosmtpd server that counts what it accepts, until told to stop."""
    from aiosmtpd.controller import Controller

    class Counter:
        messages = 0
        octets = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            self.messages += 1
            self.octets += len(envelope.original_content or b"")
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Counter()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    connection.send(port)
    connection.recv()  # the parent says stop
    controller.stop()
    connection.send((handler.messages, handler.octets))


@dataclass(frozen=True, slots=True)
class SendRun:
    """One pass: render and send every digest."""

    render_cpu: float
    wall: float
    received: int
    octets: int


async def _render_and_send(port: int) -> tuple[float, float]:
    env = build_environment()
    head = letterhead()
    settings = MailSettings(
        transport="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_security="none"
    )
    transport = SmtpTransport(settings)
    render_cpu = 0.0
    started = time.perf_counter()
    try:
        for digest in digests(random.Random(SEED), story_pool(random.Random(SEED)), DIGESTS):
            cpu = time.thread_time()
            message = compose_digest(env, digest, head).message
            render_cpu += time.thread_time() - cpu
            await transport.send(message)
    finally:
        await transport.close()
    return render_cpu, time.perf_counter() - started


def render_and_send() -> SendRun:
    """Render and send DIGESTS digests to a server in a child process."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    try:
        port = parent.recv()
        render_cpu, wall = asyncio.run(_render_and_send(port))
        parent.send("stop")
        received, octets = parent.recv()
    finally:
        server.join(timeout=10)
        if server.is_alive():
            server.kill()
    return SendRun(render_cpu, wall, received, octets)


def peak_allocation_mb() -> float:
    """The most memory one digest's rendering holds at once, over a sample (tracemalloc)."""
    env, head = build_environment(), letterhead()
    sample = list(digests(random.Random(SEED), story_pool(random.Random(SEED)), MEMORY_SAMPLE))
    compose_digest(env, sample[0], head)  # compile the templates first
    peak = 0
    for digest in sample:
        tracemalloc.start()
        compose_digest(env, digest, head).message.as_bytes()
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return peak / (1024 * 1024)


# Where rendering's time goes: (what, file the function is in, function name).
PHASES = (
    ("compose_digest: all of rendering", "monitor/delivery/render.py", "compose_digest"),
    ("  render_digest: subject, text and HTML", "monitor/delivery/render.py", "render_digest"),
    ("    Jinja2 templates", "jinja2/environment.py", "render"),
    ("      of which wordwrap", "monitor/delivery/render.py", "wrap_words"),
    ("    CSS inlining (css-inline)", "~", "<method 'inline' of 'builtins.CSSInliner' objects>"),
    ("  unsubscribe token", "monitor/delivery/tokens.py", "make_unsubscribe_token"),
    ("  build_message: headers and MIME parts", "monitor/delivery/render.py", "build_message"),
    ("    MIME parts (quoted-printable bodies)", "monitor/delivery/render.py", "_text_part"),
    ("as_bytes: the wire form (made in send)", "email/message.py", "as_bytes"),
)


def render_profile() -> list[str]:
    """Where rendering's time goes, from a profile: each phase's share, callees included."""
    env, head = build_environment(), letterhead()
    sample = list(digests(random.Random(SEED), story_pool(random.Random(SEED)), PROFILE_DIGESTS))
    compose_digest(env, sample[0], head)
    profile = cProfile.Profile()
    profile.enable()
    for digest in sample:
        compose_digest(env, digest, head).message.as_bytes()
    profile.disable()
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    cumulative: dict[str, float] = {}
    for (filename, _line, name), (_cc, _calls, _own, total, _callers) in stats.items():
        for label, where, function in PHASES:
            # Of same-named functions (a method and its super()), the outermost holds the
            # others' time: take it, not the sum.
            if name == function and filename.endswith(where):
                cumulative[label] = max(cumulative.get(label, 0.0), total)
    whole = cumulative.get(PHASES[0][0], 0.0) + cumulative.get(PHASES[-1][0], 0.0)
    lines = [
        f"where rendering's time goes (profile of {PROFILE_DIGESTS} digests, callees included):"
    ]
    for label, _where, _function in PHASES:
        share = 100 * cumulative.get(label, 0.0) / whole if whole else 0.0
        lines.append(f"  {share:5.1f}%  {label}")
    return lines


def run() -> list[Table]:
    """Render and send; then profile rendering."""
    progress(f"digest: rendering and sending {DIGESTS:,} digests of {STORIES} stories")
    result = render_and_send()
    rendered = rate(DIGESTS, result.render_cpu)
    table = Table(TITLE, ["smtp (127.0.0.1)"])
    table.add("rendered, one core (CPU time)", "digests/s", rendered)
    table.add("rendered and sent, end to end", "digests/s", rate(DIGESTS, result.wall))
    table.add("messages the server accepted", "messages", result.received)
    table.add("average message size", "KB", result.octets / max(result.received, 1) / 1024)
    progress("digest: memory and profile")
    table.add("peak allocation while rendering one", "MB", peak_allocation_mb())
    table.add("peak memory (max RSS, this process)", "MB", peak_rss_mb())
    verdict = "meets" if rendered is not None and rendered >= GOAL else "misses"
    table.notes.append(f"rendering {verdict} the goal of {GOAL:.0f} digests/s on one core")
    table.notes.extend(render_profile())
    return [table]
