"""``extract``: article-body extraction over ``../shared/articles``, and a cold poll with pages.

Quality: each configuration extracts the 62 pages in this process and is scored against the
hand-marked bodies with the article-extraction benchmark's metric (tests/utils/articles.py):
precision and recall (means over the pages), F1 as the mean of the pages' F1 and as the F1 of
the two means. Configurations: trafilatura's ``extract()`` with its defaults (the figure the
issue quotes), trafilatura tuned for precision with its own text output, readability-lxml alone,
and monitor's chain (``extract_page``) with and without each of its parts.

Cost: CPU time per page (``time.process_time``, median and 95th percentile) of monitor's chain,
and pages per second per core.

End to end: a feed of 200 items with one-sentence teasers, each item's page one of the 62 served
from 127.0.0.1 under a distinct path, polled cold by ``monitor poll`` in a process of its own:
wall time and peak memory of its process tree, pages fetched and extracted.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from benchmarks.common import REPO_ROOT, Table, progress, skipped
from benchmarks.processes import measure
from monitor.errors import ExtractError
from monitor.pages.extract import ExtractRules, extract_page, text_of
from tests.utils.articles import (
    ArticlePage,
    articles_missing,
    load_articles,
    score_extraction,
    teaser_feed,
)
from tests.utils.feedserver import running_feed_server

TITLE = "extract: article bodies of ../shared/articles (62 pages)"
COST_TITLE = "extract: CPU per page, monitor's chain"
POLL_TITLE = "extract: cold poll of a 200-item teaser feed, pages served from 127.0.0.1"
POLL_ITEMS = 200
Extractor = Callable[[ArticlePage], str]


def _trafilatura_default(page: ArticlePage) -> str:
    import trafilatura

    return trafilatura.extract(page.html) or ""


def _trafilatura_precision(page: ArticlePage) -> str:
    import trafilatura

    found = trafilatura.extract(page.html, include_comments=False, favor_precision=True)
    return found or ""


def _readability_alone(page: ArticlePage) -> str:
    import lxml.html  # type: ignore[import-untyped]  # no stubs installed
    from readability import Document  # type: ignore[import-untyped]  # no stubs

    from monitor.pages.extract import decode_html

    summary = Document(decode_html(page.html)).summary(html_partial=True)
    if not summary.strip():
        return ""
    fragment = lxml.html.fragment_fromstring(summary, create_parent="div")
    return text_of(fragment, clean=False, max_chars=1_000_000)


def _chain(rules: ExtractRules) -> Extractor:
    def text(page: ArticlePage) -> str:
        try:
            return extract_page(page.html, url=page.url, content_type="text/html", rules=rules).text
        except ExtractError:
            return ""

    return text


CHOSEN = ExtractRules()
CONFIGURATIONS: dict[str, Extractor] = {
    "trafilatura extract() defaults": _trafilatura_default,
    "trafilatura precision, no comments": _trafilatura_precision,
    "readability-lxml alone": _readability_alone,
    "chain, recall-oriented trafilatura": _chain(replace(CHOSEN, favor_precision=False)),
    "chain without boilerplate removal": _chain(replace(CHOSEN, clean=False)),
    "chain without fallback": _chain(replace(CHOSEN, fallback=False)),
    "monitor's chain (as shipped)": _chain(CHOSEN),
}


def _quality(pages: tuple[ArticlePage, ...]) -> Table:
    table = Table(TITLE, ["precision", "recall", "F1 (mean of pages)", "F1 (of means)"])
    for name, extractor in CONFIGURATIONS.items():
        progress(f"extract: {name}")
        texts = {page.key: extractor(page) for page in pages}
        quality = score_extraction(pages, texts)
        table.add(name, "", quality.precision, quality.recall, quality.mean_f1, quality.f1_of_means)
    table.notes.append(
        "goal: F1 >= 0.96 and precision >= 0.95; tokens split on whitespace, compared as "
        "multisets per page (tests/utils/articles.py)"
    )
    return table


def _cost(pages: tuple[ArticlePage, ...]) -> Table:
    progress("extract: CPU per page")
    times: list[float] = []
    # Warm: imports and first-use caches are not a page's cost.
    _chain(CHOSEN)(pages[0])
    for page in pages:
        started = time.process_time()
        _chain(CHOSEN)(page)
        times.append(time.process_time() - started)
    times.sort()
    table = Table(COST_TITLE, ["value"])
    table.add("median", "ms", statistics.median(times) * 1000)
    table.add("95th percentile", "ms", times[int(len(times) * 0.95)] * 1000)
    table.add("slowest", "ms", times[-1] * 1000)
    table.add("pages per second per core", "pages/s", len(times) / sum(times))
    return table


def _poll(pages: tuple[ArticlePage, ...]) -> Table:
    progress("extract: cold poll with pages")
    with running_feed_server() as server, tempfile.TemporaryDirectory() as directory:
        items = []
        for number in range(POLL_ITEMS):
            page = pages[number % len(pages)]
            path = f"/copy{number}{page.path}"
            link = server.add(path, page.html, content_type="text/html; charset=utf-8")
            items.append((link, f"Article {number}", page.teaser))
        feed = server.add("/feed.xml", teaser_feed(iter(items)))
        config = Path(directory) / "config"
        config.mkdir()
        (config / "monitor.toml").write_text(
            f'[database]\nurl = "sqlite:///{directory}/monitor.db"\n\n'
            '[fetch]\nallow_networks = ["127.0.0.0/8"]\n\n'
            '[pages]\nper_host_interval = "0s"\n'
        )
        (config / "feeds.opml").write_text(
            '<?xml version="1.0"?><opml version="2.0"><head/><body>'
            f'<outline type="rss" text="site" xmlUrl="{feed}"/></body></opml>'
        )
        environment = {**os.environ, "MONITOR_CONFIG": str(config)}
        command = [sys.executable, "-m", "monitor", "poll"]
        measured = measure(command, env=environment, cwd=REPO_ROOT)
        fetched = sum(1 for path, _headers in server.requests if path.startswith("/copy"))
    table = Table(POLL_TITLE, ["value"])
    table.add("wall time", "s", measured.seconds)
    table.add("CPU time (process tree)", "s", measured.cpu_seconds)
    table.add("peak RSS (process tree)", "MB", measured.peak_rss_mb)
    table.add("peak PSS (process tree)", "MB", measured.peak_pss_mb)
    table.add("processes", "", measured.processes)
    table.add("pages fetched", "", fetched)
    table.notes.append(
        "one host, pages.per_host_interval 0s, fetch.per_host 2; the machine's load average "
        "shows in the header: wall time grows with it, CPU time much less"
    )
    if measured.returncode:
        table.notes.append(f"monitor poll exited {measured.returncode}: {measured.stderr}")
    return table


def run() -> list[Table]:
    """Every table of the extract benchmark."""
    pages = load_articles()
    if not pages:
        return [skipped(TITLE, f"skipped: {articles_missing()}")]
    return [_quality(pages), _cost(pages), _poll(pages)]
