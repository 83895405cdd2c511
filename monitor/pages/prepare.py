"""What a fetched article page needs before it touches the database, on plain data.

Extracting the body, the story sketch of its opening and the topic hits on the full text cost
CPU: ``prepare_page`` runs them in a worker process of the prepare pool, each page under a CPU
bound, so a page that makes the extractor loop costs that page, never the poll. Inputs and
results are picklable values; nothing here opens a database or a connection.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

from monitor.errors import ExtractError
from monitor.ingest.language import detect_language
from monitor.ingest.prepare import TopicSet, matcher_for
from monitor.ingest.sketch import Sketch, StoryRules, sketch_of
from monitor.pages.extract import ExtractedPage, ExtractRules, extract_page
from monitor.text import article_text
from monitor.topics.matcher import ArticleView, TopicHit


@dataclass(frozen=True, slots=True)
class PageDocument:
    """A fetched page, with what tagging needs to know of its article and feed."""

    article_id: int
    url: str
    body: bytes
    content_type: str | None
    title: str
    summary: str
    content: str
    author: str
    language: str
    article_url: str
    feed_title: str
    feed_url: str


@dataclass(frozen=True, slots=True)
class PreparedPage:
    """A page's extraction, the topic hits of the article's full text, and its sketches.

    ``sketch`` is of the title and the body's opening; ``feed_sketch`` of the title and the
    feed's text, as the article was first sketched (to find its index rows again).
    """

    article_id: int
    page: ExtractedPage
    hits: tuple[TopicHit, ...]
    sketch: Sketch | None
    feed_sketch: Sketch | None
    # Detected from the title and the body: more text than the feed's teaser gave.
    detected_language: str = ""


@dataclass(frozen=True, slots=True)
class PageUnreadable:
    """A page that gave no body: why, whether retrying could help, whether it was our bug."""

    article_id: int
    reason: str
    permanent: bool = False
    internal: bool = False
    details: str = ""


PagePrepared = PreparedPage | PageUnreadable


class PageOvertimeError(Exception):
    """The page's extraction used up its CPU time."""


def page_view(document: PageDocument, body: str, detected_language: str = "") -> ArticleView:
    """What the matcher reads of the article once its body is known (as tagging.article_view)."""
    return ArticleView(
        title=document.title,
        text=article_text(document.summary, document.content, body),
        author=document.author,
        url=document.article_url,
        feed_title=document.feed_title,
        feed_url=document.feed_url,
        language=detected_language or document.language,
    )


def prepare_page(
    document: PageDocument,
    topics: TopicSet,
    rules: StoryRules,
    extract_rules: ExtractRules,
    cpu_seconds: float,
) -> PagePrepared:
    """Extract, tag and sketch one page; never raises for a bad page."""
    try:
        with cpu_bound(cpu_seconds):
            page = extract_page(
                document.body,
                url=document.url,
                content_type=document.content_type,
                rules=extract_rules,
            )
    except ExtractError as exc:
        permanent = exc.reason.startswith("extract: not ")  # not HTML, not readable as HTML
        return PageUnreadable(document.article_id, exc.reason, permanent=permanent)
    except (PageOvertimeError, RecursionError, MemoryError) as exc:
        what = {
            PageOvertimeError: f"took more than {cpu_seconds:g} s of CPU",
            RecursionError: "the page nests too deep",
            MemoryError: "the page needs too much memory",
        }[type(exc)]
        return PageUnreadable(document.article_id, f"extract: {what}; given up", permanent=True)
    except Exception as exc:  # a bug, or a page the extractor cannot take: this page's error
        return PageUnreadable(
            document.article_id,
            f"extract: internal error: {type(exc).__name__}: {exc}"[:500],
            permanent=True,
            internal=True,
            details=traceback.format_exc(),
        )
    detected = detect_language(document.title, page.text, page.language or document.language)
    matcher = matcher_for(topics)
    view = page_view(document, page.text, detected)
    hits = tuple(matcher.match(view)) if matcher.rules else ()
    feed_text = document.content or document.summary
    return PreparedPage(
        document.article_id,
        page,
        hits,
        sketch_of(document.title, page.text, rules=rules),
        sketch_of(document.title, feed_text, rules=rules),
        detected,
    )


@contextlib.contextmanager
def cpu_bound(seconds: float) -> Iterator[None]:
    """Raise PageOvertimeError in the block after ``seconds`` of this process's CPU time.

    Only in a process's main thread (a worker process; ``monitor extract``), where signals
    arrive. A loop inside C code does not see the signal, so the process's CPU limit is set
    too, a little further out: the kernel then ends the worker (the pool starts another and
    reports the page), where nothing else would stop it.
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def overtime(_signum: int, _frame: FrameType | None) -> None:
        raise PageOvertimeError

    previous = signal.signal(signal.SIGPROF, overtime)
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    limit = int(usage.ru_utime + usage.ru_stime + 2 * seconds + 2)
    if hard == resource.RLIM_INFINITY or limit < hard:
        resource.setrlimit(resource.RLIMIT_CPU, (limit, hard))
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
