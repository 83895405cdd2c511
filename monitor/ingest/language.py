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

import re
from functools import cache
from typing import TYPE_CHECKING

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


@cache
def _identifier() -> LanguageIdentifier:
    """The model, loaded once per process (about 30 ms and 20 MB)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def load_model() -> None:
    """Load the detector's model now rather than at the first article."""
    _identifier()


def base_language(code: str) -> str:
    """The primary subtag of a language tag, lower case: ``en-US`` -> ``en``."""
    return code.strip().replace("_", "-").split("-", 1)[0].lower()


def detect_language(title: str, text: str, declared: str = "") -> str:
    """The language of an article (ISO 639-1 code, ``ru``), or "" when its text is too short
    to tell; ``declared`` (the feed's tag) wins when the detector is unsure and finds it
    plausible."""
    sample = _URLS.sub(" ", f"{title}\n{text}"[:MAX_CHARS])
    if len(_LETTER.findall(sample)) < MIN_LETTERS:
        return ""
    ranked = _identifier().rank(sample)
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
