"""Which text an article keeps when its feed, or another feed carrying it, gives a new one.

Sits in ingest, where an entry meets the article already stored under its key
(``monitor.ingest.store``). One URL is often carried by several feeds with different texts
(the outlet's own feed with the full text, an aggregator with a teaser): taking each in turn
rewrote the article on every re-parse. The rule, in one place:

* the article's own feed (the feed it was first seen in) edits it: a title or text that differs
  from what that feed last gave is an edit, and replaces title and text;
* another feed never changes the title, and replaces the text only with a richer one (more
  characters), so the stored text only ever grows from what other feeds carry;
* a text the own feed has not changed is never an edit, whatever another feed gave meanwhile.

A page body fetched from the article's own page is the richest text there is; a feed's text
never replaces it (it is kept apart from the feed's summary and content).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TextChange(StrEnum):
    """What an incoming entry does to the stored article."""

    NONE = "none"
    EDIT = "edit"  # its own feed changed it: title and text replaced
    ENRICH = "enrich"  # another feed carries a richer text: text replaced, title kept


@dataclass(frozen=True, slots=True)
class StoredText:
    """What deciding needs of a stored article."""

    feed_id: int
    content_hash: str
    # The content hash of what its own feed last gave, when the text is another feed's.
    source_hash: str | None
    richness: int


def text_richness(summary: str, content: str) -> int:
    """How much text an entry gives: the longer of its summary and its full text."""
    return max(len(summary), len(content))


def text_change(
    stored: StoredText, *, feed_id: int, content_hash: str, richness: int
) -> TextChange:
    """What an entry from ``feed_id`` with this text does to the stored article."""
    if feed_id == stored.feed_id:
        last_own = stored.source_hash or stored.content_hash
        return TextChange.NONE if content_hash == last_own else TextChange.EDIT
    if content_hash != stored.content_hash and richness > stored.richness:
        return TextChange.ENRICH
    return TextChange.NONE
