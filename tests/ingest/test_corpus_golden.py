"""What the prepare stage makes of every document of the real corpus, pinned to golden output.

Parsing (html_to_text and element_text inside it), article keys (canonical URLs, content
fingerprints), detected languages and story sketches are hot paths that were moved to faster
code (issue 21); their output over the whole of ``../shared/corpus`` was recorded, before the
change, in ``tests/fixtures/corpus_golden.json``, one short hash per entry and stage, and must
stay the same. Regenerate only for a deliberate change of behaviour, and say why in the commit:

    python -m tests.ingest.test_corpus_golden --write

The corpus is found as in tests/sources/test_parse_differential.py; without it the test skips.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import FeedError
from monitor.ingest.canonical import article_keys
from monitor.ingest.language import detect_entry_language
from monitor.ingest.prepare import drop_empty_entries
from monitor.ingest.sketch import StoryRules, signature_bytes, sketch_entries
from monitor.sources.parse import parse_feed
from tests.sources.test_parse_differential import corpus_feeds

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "corpus_golden.json"
FEED_URL = "https://news.example.com/feeds/world.xml"
CONTENT_TYPE = "application/xml"
STAGES = ("text", "key", "language", "sketch")
# Differences accepted against the golden output: (document, entry, stage) -> reason. Empty.
ACCEPTED_DIFFERENCES: dict[tuple[str, int, str], str] = {}


def _digest(*values: object) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:12]


def document_outputs(body: bytes) -> dict[str, Any]:
    """Per stage, one short hash per entry of the document (or the parse error's reason)."""
    try:
        parsed = drop_empty_entries(parse_feed(body, url=FEED_URL, content_type=CONTENT_TYPE))
    except FeedError as exc:
        return {"error": exc.reason}
    entries = parsed.entries
    keys = article_keys(entries, feed_id=1, site_url=parsed.site_url, feed_url=FEED_URL)
    sketches = sketch_entries([(e.title, e.content or e.summary) for e in entries], StoryRules())
    return {
        "feed": _digest(parsed.title, parsed.site_url, parsed.language, parsed.warning),
        "text": [_digest(e.guid, e.link, e.title, e.summary, e.content, e.author) for e in entries],
        "key": [
            _digest(
                k.key_hash,
                k.canonical_url,
                k.content_hash,
                k.link_hash,
                k.own_hash,
                k.shared_link,
                k.own_by_guid,
            )
            for k in keys
        ],
        "language": [detect_entry_language(e) for e in entries],
        "sketch": [
            _digest(signature_bytes(s.signature), s.bands) if s is not None else None
            for s in sketches
        ],
    }


def corpus_outputs(feeds: Path) -> dict[str, dict[str, Any]]:
    """``document_outputs`` of every corpus document, by file name."""
    return {path.name: document_outputs(path.read_bytes()) for path in sorted(feeds.iterdir())}


def differences(golden: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """Every (document, entry, stage) whose output differs from the golden one."""
    lines = []
    for name in sorted(golden.keys() | found.keys()):
        want, got = golden.get(name), found.get(name)
        if want is None or got is None or "error" in want or "error" in got:
            if want != got:
                lines.append(f"{name}: {want if want is None else want.get('error')!r} != "
                             f"{got if got is None else got.get('error')!r}")  # fmt: skip
            continue
        if want["feed"] != got["feed"]:
            lines.append(f"{name}: feed fields differ")
        for stage in STAGES:
            if len(want[stage]) != len(got[stage]):
                lines.append(f"{name} {stage}: {len(want[stage])} != {len(got[stage])} entries")
                continue
            for index, (old, new) in enumerate(zip(want[stage], got[stage], strict=True)):
                if old != new and (name, index, stage) not in ACCEPTED_DIFFERENCES:
                    lines.append(f"{name} entry {index} {stage}: {old!r} != {new!r}")
    return lines


@pytest.mark.slow
def test_corpus_output_is_the_golden_output() -> None:
    """Text, keys, languages and sketches of every corpus entry are what they were."""
    feeds = corpus_feeds()
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    found = corpus_outputs(feeds)
    assert sum(len(doc.get("text", ())) for doc in found.values()) > 1000  # the corpus was read
    assert differences(golden, found) == []


def main(argv: list[str]) -> int:
    """Write the golden file from the code as it is (``--write``)."""
    parser = argparse.ArgumentParser(prog="python -m tests.ingest.test_corpus_golden")
    parser.add_argument("--write", action="store_true", required=True)
    parser.add_argument("--corpus", type=Path, help="the directory holding feeds/")
    args = parser.parse_args(argv)
    feeds = args.corpus / "feeds" if args.corpus else corpus_feeds()
    outputs = corpus_outputs(feeds)
    GOLDEN.write_text(json.dumps(outputs, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}: {len(outputs)} documents")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
