"""Story sketches: what the story index knows of an article, computed from text alone.

An article's *signature* is a MinHash of the word 3-shingles of its title and lead text, with
boilerplate taken out first (newsletter footers, bylines, "Live updates:" prefixes, paragraphs a
feed repeats under every item); its *bands* are the LSH keys stored in ``story_band``. Nothing
here touches a database, so the prepare pool's worker processes compute sketches without
importing the ORM (see ``monitor.ingest.stories`` for the index itself).
"""

from __future__ import annotations

import functools
import hashlib
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from monitor.text import fold, split_words

NUM_PERM = 64
# 10 + 10 bands of 3 values: 20 index rows per article (42 before, for the same recall on the
# labelled set). A band matches by chance between leads of Jaccard similarity s with
# probability s**3: 0.8% at s = 0.2 (stock phrases), 22% at s = 0.6 (an edited copy), which
# at least one of 10 bands then finds with probability 91%, the bands of the opening more.
PROBE_BANDS = 10
LEAD_BANDS = 10
ROWS = 3
SHINGLE_WORDS = 3
# Fixed, so that signatures stored by one process compare with those of every other.
SEED = 20240906


@functools.cache
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """The permutations of datasketch's "affine32" MinHash (h -> a * h + b mod 2**32, a odd),
    drawn as datasketch draws them, applied here to a whole article at once with numpy.

    The values equal those of datasketch's MinHash.update_batch (a test pins it), so signatures
    stored before stay comparable; drawing them here spares every process datasketch's import,
    which brings SciPy (some 45 MB per process, the poller and each prepare worker).
    """
    generator = np.random.RandomState(SEED)
    a = generator.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = generator.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


# Headline prefixes that label a format, not a story ("Live updates: ...", "WATCH: ...").
_TITLE_LABEL = re.compile(
    r"^\s*(?:live(?:\s+updates?|\s+blog)?|breaking(?:\s+news)?|watch|video|opinion|analysis|"
    r"explainer|exclusive|updated?|podcast|photos?|in\s+pictures)\s*[:|\-\u2013\u2014]\s*",
    re.IGNORECASE,
)
# Paragraphs that say nothing about the story: footers, calls to action, credits, bylines.
# Matched against folded (lower-case) text: IGNORECASE made this search most of the lead's cost.
_BOILERPLATE = re.compile(
    r"newsletter|sign\s+up|subscribe|all\s+rights\s+reserved|copyright|©|\(c\)\s*\d{4}|"
    r"appeared\s+first\s+on|read\s+more|continue\s+reading|click\s+here|follow\s+us|"
    r"download\s+(?:our|the)\s+app|originally\s+(?:published|appeared)|"
    r"support\s+(?:our|independent)\s+journalism|share\s+this\s+(?:story|article)"
)
_BYLINE = re.compile(r"^\s*(?:by|von|par|por|reporting\s+by|written\s+by)\s+\S")
_BYLINE_MAX_WORDS = 12


@dataclass(frozen=True, slots=True)
class StoryRules:
    """How stories are formed: window, similarity threshold, how much text is compared."""

    window: timedelta = timedelta(days=7)
    threshold: float = 0.55
    lead_words: int = 200
    probe_words: int = 40
    min_words: int = 12
    # Query parameters to drop from links besides the built-in tracking parameters.
    tracking_parameters: frozenset[str] = frozenset()


def repeated_paragraphs(texts: Iterable[str]) -> frozenset[str]:
    """Paragraphs (lower-cased) that appear under two or more items of one feed: boilerplate."""
    counts: Counter[str] = Counter()
    for text_ in texts:
        counts.update({_paragraph_key(p) for p in _paragraphs(text_)} - {""})
    return frozenset(key for key, n in counts.items() if n > 1)


def _paragraphs(text_: str) -> list[str]:
    return [line for line in text_.split("\n") if line.strip()]


def _paragraph_key(paragraph: str) -> str:
    # Exact text, spacing and case aside: a feed repeats its boilerplate verbatim.
    return " ".join(paragraph.lower().split())


def lead_words(
    title: str, body: str, *, rules: StoryRules, boilerplate: frozenset[str] = frozenset()
) -> tuple[list[str], list[str]]:
    """The folded words of the title (without a format label) and of the lead text."""
    title_words = split_words(fold(_TITLE_LABEL.sub("", title)))
    words: list[str] = []
    for paragraph in _paragraphs(body):
        if boilerplate and _paragraph_key(paragraph) in boilerplate:
            continue
        folded = fold(paragraph)
        if _is_boilerplate(folded):
            continue
        words.extend(split_words(folded))
        if len(words) >= rules.lead_words:
            break
    return title_words, words[: rules.lead_words]


def _is_boilerplate(folded: str) -> bool:
    if _BOILERPLATE.search(folded):
        return True
    return bool(_BYLINE.match(folded)) and len(folded.split()) <= _BYLINE_MAX_WORDS


@dataclass(frozen=True, slots=True)
class Sketch:
    """What the index knows of an article: its signature and its LSH band keys.

    Plain data (a numpy array and integers): it pickles, so a worker process can compute it.
    """

    signature: np.ndarray
    bands: list[int]


def sketch_of(
    title: str, body: str, *, rules: StoryRules, boilerplate: frozenset[str] = frozenset()
) -> Sketch | None:
    """The article's signature (of title and lead) and band keys (of opening and lead).

    Bands of the opening words find a copy trimmed at the end or missing a later paragraph:
    it shares its opening with the original even when the whole leads differ in size, and
    MinHash bands find only sets of similar size. Bands of the whole lead find copies whose
    opening was rewritten. None when the lead is too short to tell.
    """
    title_words, body_words = lead_words(title, body, rules=rules, boilerplate=boilerplate)
    if len(body_words) < rules.min_words:
        return None
    words = title_words + body_words
    hashes = _shingle_hashes(words)
    permuted = _permuted(hashes)
    # The opening's shingles are the first ones of the whole lead's: one matrix serves both.
    opening = max(1, len(title_words) + min(len(body_words), rules.probe_words) - SHINGLE_WORDS + 1)
    probe = permuted[:opening].min(axis=0)
    values = permuted.min(axis=0)
    signature = np.append(values, np.uint32(len(set(hashes))))
    # The lead's bands read other positions of the signature than the opening's: the two
    # minima coincide whenever the lead's lies in the opening, and equal bands find nothing new.
    lead = np.roll(values, -PROBE_BANDS * ROWS)
    bands = band_hashes(probe, count=PROBE_BANDS, first=0)
    return Sketch(signature, bands + band_hashes(lead, count=LEAD_BANDS, first=PROBE_BANDS))


def sketch_entries(items: Sequence[tuple[str, str]], rules: StoryRules) -> list[Sketch | None]:
    """Sketches of one feed's entries, given as (title, text) pairs, in order.

    The paragraphs the batch repeats are its boilerplate, as in save_new_articles. A pure
    function of plain data: it may run in another process.
    """
    boilerplate = repeated_paragraphs(body for _title, body in items)
    return [sketch_of(title, body, rules=rules, boilerplate=boilerplate) for title, body in items]


def signature_of(
    title: str, body: str, *, rules: StoryRules, boilerplate: frozenset[str] = frozenset()
) -> np.ndarray | None:
    """The MinHash signature of title and lead text, then the number of shingles it covers.

    None when the lead is too short to tell a copy from a look-alike.
    """
    sketch = sketch_of(title, body, rules=rules, boilerplate=boilerplate)
    return sketch.signature if sketch is not None else None


def _shingle_hashes(words: list[str]) -> list[int]:
    # CRC-32 of each shingle: C speed, and the same in every process (unlike hash()).
    return [
        zlib.crc32(" ".join(words[i : i + SHINGLE_WORDS]).encode())
        for i in range(max(1, len(words) - SHINGLE_WORDS + 1))
    ]


def _permuted(hashes: list[int]) -> np.ndarray:
    """Each shingle hash under each permutation: a (shingles, NUM_PERM) uint32 matrix."""
    values = np.asarray(hashes, dtype=np.uint32).reshape(-1, 1)
    # MurmurHash3's 32-bit finalizer, then the affine permutation, both modulo 2**32 (the
    # scheme datasketch calls "affine32").
    values ^= values >> np.uint32(16)
    values *= np.uint32(0x85EBCA6B)
    values ^= values >> np.uint32(13)
    values *= np.uint32(0xC2B2AE35)
    values ^= values >> np.uint32(16)
    perm_a, perm_b = _permutations()
    permuted: np.ndarray = values * perm_a + perm_b
    return permuted


def band_hashes(signature: np.ndarray, *, count: int, first: int = 0) -> list[int]:
    """The LSH band keys of a signature: a signed 64-bit hash of each band and its number."""
    data = signature[: count * ROWS].astype("<u4").tobytes()
    width = ROWS * 4
    keys = []
    for band in range(count):
        number = (first + band).to_bytes(2, "big")
        digest = hashlib.blake2b(
            data[band * width : (band + 1) * width], digest_size=8, person=number
        ).digest()
        keys.append(int.from_bytes(digest, "big", signed=True))
    return keys


def similarity(first: np.ndarray, second: np.ndarray) -> float:
    """How much of the shorter lead the longer one holds, estimated from the signatures.

    The share of equal MinHash values estimates the Jaccard similarity J of the shingle sets;
    with their sizes that gives the overlap |A & B| = J (|A| + |B|) / (1 + J), here divided by
    the smaller set. A copy trimmed at the end, or missing a paragraph, is mostly contained in
    the original even when their Jaccard similarity is low.
    """
    jaccard = float(np.count_nonzero(first[:NUM_PERM] == second[:NUM_PERM])) / NUM_PERM
    size_a, size_b = int(first[NUM_PERM]), int(second[NUM_PERM])
    overlap = jaccard * (size_a + size_b) / (1 + jaccard)
    return min(1.0, overlap / max(1, min(size_a, size_b)))


def signature_bytes(signature: np.ndarray) -> bytes:
    """A signature as stored in ``article.signature`` (little-endian uint32 values)."""
    return signature.astype("<u4").tobytes()


def signature_from_bytes(data: bytes) -> np.ndarray:
    """A stored signature back as an array."""
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)
