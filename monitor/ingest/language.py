"""Language detection: which language an article is written in, from its own text.

Sits in ingest, between parse and store (DESIGN.md's data flow): the prepare pool runs it in
its worker processes beside story sketches and tagging, so the event loop never pays for it.
A feed's declared language (``<language>``, ``xml:lang``) is often wrong, left at a CMS's
default: Media Cloud found it wrong so often that it prefers the detected language. So
monitor stores both, and ``lang:`` reads the detected one, falling back to the declared one
only when the text is too short to tell (a two-word title, an empty item).

The detector is py3langid (a naive Bayes model over byte n-grams, 97 languages, its model inside
the wheel); ``python -m benchmarks languages`` measures it and lingua on real text.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

    from monitor.sources.parse import ParsedEntry

# Below this many letters the text says too little: the declared language is used instead.
MIN_LETTERS = 12
# Detection reads this much of the text at most: a few paragraphs decide, the rest costs time.
MAX_CHARS = 2000
# Below this probability the best guess is not sure: a declared language the detector finds
# at least PLAUSIBLE wins over it (short titles: Russian read as Macedonian or Bulgarian). The
# figures were chosen on the languages benchmark: with the right tag, titles 98.5% right
# (93.8% without a tag), and a wrong "en" tag still loses (95.8%).
MIN_CONFIDENCE = 0.8
PLAUSIBLE = 0.05
_URLS = re.compile(r"\S+://\S+|www\.\S+|\S+@\S+\.\w+")
_LETTER = re.compile(r"[^\W\d_]")
# The detector's byte automaton is Aho-Corasick's: its state after a text depends only on the
# text's last WINDOW bytes (the deepest state is 6 bytes from the start; a test checks it), so
# every position's state is found at once with numpy, WINDOW steps over the whole text.
WINDOW = 6


@cache
def _identifier() -> LanguageIdentifier:
    """The model, loaded once per process (about 30 ms and 20 MB)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@dataclass(frozen=True, slots=True)
class _Scorer:
    """py3langid's model as numpy arrays, for scoring a whole text at once."""

    identifier: LanguageIdentifier
    next_move: np.ndarray  # (state << 8) + byte -> next state (py3langid's array, not a copy)
    row_base: np.ndarray  # state -> its row's offset in next_move
    output: np.ndarray  # state -> the feature it counts, or -1
    # The column of each distinct label (its first), in py3langid's order, and the labels.
    columns: np.ndarray
    labels: tuple[str, ...]


@cache
def _scorer() -> _Scorer:
    identifier = _identifier()
    first: dict[str, int] = {}
    for column, label in enumerate(identifier.nb_classes):
        first.setdefault(label, column)
    return _Scorer(
        identifier,
        np.frombuffer(identifier.tk_nextmove, dtype=np.uint32),
        np.asarray(identifier._rowbase, dtype=np.uint32),
        np.asarray(identifier.tk_output, dtype=np.int32),
        np.fromiter(first.values(), dtype=np.intp, count=len(first)),
        tuple(first),
    )


def rank_languages(sample: str, top: int | None = None) -> list[tuple[str, float]]:
    """The ``top`` (default: all) languages by probability, best first: py3langid's ``rank``,
    value for value.

    py3langid walks its byte automaton in a Python loop, most of the detector's time; here
    the walk is numpy's (see WINDOW) and the rest is py3langid's own arithmetic, in the same
    order, so every probability is the same float.
    """
    scorer = _scorer()
    identifier = scorer.identifier
    encoded: bytes = identifier._encode(sample)
    data = np.frombuffer(encoded, dtype=np.uint8).astype(np.uint32)
    states = np.zeros(len(data), dtype=np.uint32)
    for step in range(WINDOW):
        # Position i reads byte i - offset at this step (when there is one), starting at 0.
        offset = WINDOW - 1 - step
        if offset < len(data):
            moved = states[offset:]
            states[offset:] = scorer.next_move[scorer.row_base[moved] + data[: len(data) - offset]]
    features = scorer.output[states]
    features = features[features >= 0]
    if not len(features):
        return list(identifier.rank(sample))[:top]  # no features: py3langid's own answer
    # Counted as py3langid counts them (a Counter: features in order of first appearance), so
    # the matrix product sums in the same order.
    counted = Counter(features.tolist())
    found = np.fromiter(counted.keys(), dtype=np.intp, count=len(counted))
    counts = np.fromiter(counted.values(), dtype=np.float32, count=len(counted))
    scores = np.log1p(counts) @ identifier.nb_ptc[found]
    scores += identifier.nb_pc
    # py3langid's _decide (normalised), then rank: one score per label, best first.
    scores *= 1.0 / math.sqrt(len(encoded) or 1)
    np.exp(scores - scores.max(), out=scores)
    scores /= scores.sum()
    for column, duplicate in identifier._alias_pairs:
        scores[column] += scores[duplicate]
        scores[duplicate] = 0.0
    values = scores[scorer.columns]
    # A stable sort of the negated values: ties keep py3langid's order, as sorted() does.
    best = np.argsort(-values, kind="stable")[:top]
    labels = scorer.labels
    chosen = zip(best.tolist(), values[best].tolist(), strict=True)
    return [(labels[i], value) for i, value in chosen]


def load_model() -> None:
    """Load the detector's model now rather than at the first article (the fork server does,
    so that the prepare workers share its pages)."""
    _scorer()


def base_language(code: str) -> str:
    """The primary subtag of a language tag, lower case: ``en-US`` -> ``en``."""
    return code.strip().replace("_", "-").split("-", 1)[0].lower()


def detect_language(title: str, text: str, declared: str = "") -> str:
    """The language of an article (ISO 639-1 code, ``ru``), or "" when its text is too short
    to tell; ``declared`` (the feed's tag) wins when the detector is unsure and finds it
    plausible."""
    sample = f"{title}\n{text}"[:MAX_CHARS]
    if "://" in sample or "www." in sample or "@" in sample:  # what _URLS needs to match
        sample = _URLS.sub(" ", sample)
    if sum(1 for _ in itertools.islice(_LETTER.finditer(sample), MIN_LETTERS)) < MIN_LETTERS:
        return ""
    ranked = rank_languages(sample, top=5)
    best, confidence = ranked[0]
    if confidence >= MIN_CONFIDENCE:
        return str(best)
    wanted = base_language(declared)
    for language, probability in ranked[:5]:
        if language == wanted and probability >= PLAUSIBLE:
            return str(language)
    return str(best)


def detect_entry_language(entry: ParsedEntry) -> str:
    """``detect_language`` of a feed entry: its title and its feed text."""
    return detect_language(entry.title, f"{entry.summary}\n{entry.content}", entry.language)


def effective_language(detected: str, declared: str) -> str:
    """The language ``lang:`` tests: the detected one, else the declared one."""
    return detected or declared
