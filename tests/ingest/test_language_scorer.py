"""monitor's numpy scoring of py3langid's model against py3langid's own ``rank``: the same
languages in the same order with the same probabilities, float for float."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.errors import FeedError
from monitor.ingest.language import MAX_CHARS, WINDOW, _identifier, _scorer, rank_languages
from monitor.sources.parse import parse_feed
from tests.sources.test_parse_differential import corpus_feeds


def test_automaton_depends_on_the_last_window_bytes_only() -> None:
    """Every state of the byte automaton is at most WINDOW bytes from the start state, which
    is what makes the state after a text that of its last WINDOW bytes (Aho-Corasick)."""
    scorer = _scorer()
    rows = scorer.next_move.reshape(-1, 256)
    row_of = scorer.row_base >> 8
    depth = np.full(len(scorer.output), -1)
    depth[0] = 0
    frontier = np.array([0])
    level = 0
    while len(frontier):
        level += 1
        reached = np.unique(rows[row_of[frontier]])
        frontier = reached[depth[reached] < 0]
        depth[frontier] = level
    assert (depth >= 0).all()
    assert depth.max() <= WINDOW


@pytest.mark.parametrize(
    "sample",
    [
        "",
        "12345 67890 !!! ???",
        "THE PRIME MINISTER RESIGNED TODAY AFTER A VOTE",
        "Премьер-министр подал в отставку после голосования в парламенте",
        "Der Bundestag hat heute über den Haushalt abgestimmt",
        "a",
        "日本の首相が辞任した",
        "mixed English и русский текст with é accents",
    ],
)
def test_rank_is_py3langids(sample: str) -> None:
    """Odd and ordinary inputs rank as py3langid ranks them; top=N is their first N."""
    expected = _identifier().rank(sample)
    assert rank_languages(sample) == expected
    assert rank_languages(sample, top=5) == expected[:5]


@pytest.mark.slow
def test_rank_is_py3langids_over_the_corpus() -> None:
    """Every entry's sample of the real corpus ranks exactly as py3langid ranks it."""
    samples = []
    for path in sorted(corpus_feeds().iterdir()):
        try:
            entries = parse_feed(path.read_bytes(), url="https://example.com/feed").entries
        except FeedError:
            continue
        samples += [f"{e.title}\n{e.summary}\n{e.content}"[:MAX_CHARS] for e in entries]
    assert len(samples) > 1000
    identifier = _identifier()
    differing = [s[:60] for s in samples if rank_languages(s) != identifier.rank(s)]
    assert differing == []
