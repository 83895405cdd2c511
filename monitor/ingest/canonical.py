"""Canonical URLs and the keys that decide whether two items are the same article."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from monitor.sources.parse import ParsedEntry
from monitor.text import fold

# Query parameters that identify a campaign or a click, never the article. Besides the usual
# analytics names: click identifiers peers strip too (Miniflux's list: gbraid, twclid, mkt_tok,
# ...), Adobe's s_cid (U.S. News feed links carry s_cid=rss:...), old Reuters feed links'
# feedType=RSS&feedName=topNews, and what the corpus of real feeds shows: Deutsche Welle's maca
# (a code of the feed the link came from, so one article read through two DW feeds had two
# keys), Al Jazeera's traffic_source=rss and CSMonitor's icid=rss.
TRACKING_PARAMETERS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "ocid",
        "cmpid",
        "cmp",
        "_ga",
        "igshid",
        "yclid",
        "ref_src",
        "smid",
        "smtyp",
        "at_medium",
        "at_campaign",
        "ito",
        "mbid",
        "s_cid",
        "sc_cid",
        "clickid",
        "fb_ref",
        "fb_source",
        "fb_action_ids",
        "fb_action_types",
        "gbraid",
        "wbraid",
        "gclsrc",
        "twclid",
        "ysclid",
        "mc_tc",
        "mkt_tok",
        "_hsenc",
        "_hsmi",
        "srsltid",
        "feedtype",
        "feedname",
        "maca",
        "icid",
        "traffic_source",
    }
)
# Names that are tracking only with these values: ``ref=rss`` (Ghost and others mark feed
# clicks so), where ``ref=home`` or ``ref=2`` may well choose the page.
TRACKING_VALUES = {"ref": frozenset({"rss"})}
_TRACKING_PREFIXES = ("utm_", "at_", "pk_", "mtm_")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_PATH = "/:@!$&'()*+,;=-._~%"
# Raw characters of a query are escaped as UTF-8 first; reserved characters and escapes stay.
_SAFE_QUERY = "/:@!$&'()*+,;=?-._~%"
_HOME_PATHS = frozenset({"/", "/index.html", "/index.htm", "/index.php"})
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Characters RFC 3986 never allows in a registered host name (IDN letters are fine).
_BAD_HOST_CHARS = re.compile(r"[\x00-\x20\"#/:<>?@\[\\\]^`{|}\x7f]")
_WORDS = re.compile(r"\w+")
# ASCII text's words as bytes.split() finds them once every byte that is not a word character
# of \w ([A-Za-z0-9_]) is a space: the words _WORDS finds, without a regex.
_ASCII_NON_WORD_TO_SPACE = bytes(
    c if chr(c).isascii() and (chr(c).isalnum() or chr(c) == "_") else 32 for c in range(256)
)


class InvalidURLError(ValueError):
    """A URL that has no canonical form: not an absolute http(s) URL, or malformed."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"canonical: {reason}: {url!r}")


def canonical_url(url: str, *, tracking: frozenset[str] = frozenset()) -> str:
    """The canonical form of ``url``, so that one page has one key whatever link led to it.

    Lower-cases scheme and host (internationalised hosts in their IDNA "xn--" form), drops the
    default port, the user info, the fragment and tracking parameters (``TRACKING_PARAMETERS``,
    ``utm_*`` and the like, plus the names in ``tracking``), sorts the remaining query
    parameters, decodes percent-escapes of unreserved characters and upper-cases the others,
    keeping them byte for byte (``%E9`` of a Latin-1 link stays ``%E9``: two links in a legacy
    encoding are never merged into U+FFFD), and removes dot segments (RFC 3986 5.2.4); keeps
    the path's case. Idempotent. Raises InvalidURLError when ``url`` is not an absolute http(s)
    URL or is malformed.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(url, f"malformed URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURLError(url, "not an absolute http(s) URL")
    host = _host(parts.hostname or "")
    if not host:
        raise InvalidURLError(url, "no valid host")
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _normalise_path(parts.path) or "/"
    return urlunsplit((scheme, netloc, path, _normalise_query(parts.query, tracking), ""))


def canonical_url_or_none(url: str, *, tracking: frozenset[str] = frozenset()) -> str | None:
    """``canonical_url``, or None where it raises (for links that are optional anyway)."""
    try:
        return canonical_url(url, tracking=tracking)
    except InvalidURLError:
        return None


def _host(hostname: str) -> str | None:
    """The host for the canonical netloc: IPv6 literals in brackets; None when malformed."""
    if ":" in hostname:
        try:
            return f"[{ipaddress.IPv6Address(hostname).compressed}]"
        except ValueError:
            return None
    host = hostname.rstrip(".")
    if _BAD_HOST_CHARS.search(host):
        return None
    if host.isascii():
        return host
    try:
        # IDNA 2003 (Python's codec) maps case and width the way browsers do for most hosts.
        encoded = ".".join(
            label.encode("idna").decode("ascii") if not label.isascii() else label
            for label in host.split(".")
        ).lower()
    except UnicodeError:
        return None
    # The codec's name preparation can map odd characters to ones no host may hold.
    return None if _BAD_HOST_CHARS.search(encoded) else encoded


def _normalise_path(path: str) -> str:
    # RFC 3986 6.2.2: decode escapes of unreserved characters only; "%2F" is not "/". Dot
    # segments go after that, so "%2E%2E" is one too, as browsers read it.
    path = _STRAY_PERCENT.sub("%25", path)
    path = _ESCAPE.sub(_normalise_escape, path)
    return quote(remove_dot_segments(path), safe=_SAFE_PATH)


def remove_dot_segments(path: str) -> str:
    """``path`` without "." and ".." segments, as RFC 3986 5.2.4 resolves them."""
    if "." not in path or not path.startswith("/"):
        return path
    kept: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
            continue
        if last:
            kept.append("")  # "/a/b/.." is the directory "/a/"
    return "/" + "/".join(kept)


def _normalise_query(query: str, tracking: frozenset[str]) -> str:
    """Parameters sorted, tracking ones dropped, escapes kept byte for byte (upper-cased)."""
    if not query:
        return ""
    query = quote(_STRAY_PERCENT.sub("%25", query), safe=_SAFE_QUERY)
    # Latin-1 maps each escaped byte to one character and back: nothing is decoded as UTF-8,
    # so a byte that is not UTF-8 survives instead of becoming U+FFFD.
    pairs = parse_qsl(query, keep_blank_values=True, encoding="latin-1")
    extra = {name.lower() for name in tracking}
    kept = [
        (key, value)
        for key, value in pairs
        if not _is_tracking(key, value) and key.lower() not in extra
    ]
    return urlencode(sorted(kept), encoding="latin-1")


def _normalise_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def _is_tracking(key: str, value: str) -> bool:
    lowered = key.lower()
    if lowered in TRACKING_PARAMETERS or lowered.startswith(_TRACKING_PREFIXES):
        return True
    values = TRACKING_VALUES.get(lowered)
    return values is not None and value.lower() in values


def is_home_page(canonical: str) -> bool:
    """Whether a canonical URL is a site's home page (its root, no query): no article's own."""
    parts = urlsplit(canonical)
    return not parts.query and parts.path in _HOME_PATHS


def fingerprint(*texts: str) -> str:
    """SHA-256 of the words of ``texts``, ignoring case, accents, spacing and punctuation."""
    text = " ".join(texts)
    if text.isascii():  # most feeds: the same words and bytes, several times faster
        ascii_words = text.lower().encode("ascii").translate(_ASCII_NON_WORD_TO_SPACE).split()
        return hashlib.sha256(b" ".join(ascii_words)).hexdigest()
    words = _WORDS.findall(fold(text))
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ArticleKey:
    """How an entry is identified: the hash of its key, and its canonical URL when it has one.

    ``key_hash`` is one of two candidates: ``link_hash``, the key of its canonical link (None
    without a usable link), or ``own_hash``, the key of the item itself apart from its link
    (its GUID within its feed, else its feed, title and date). ``article_keys`` chooses the
    link unless the link cannot tell items apart; ``shared_link`` marks a link found naming
    several different items of its document, or the feed's own site, so the archive remembers
    it (``monitor.ingest.identity``); ``own_by_guid`` says whether ``own_hash`` is a GUID key.
    """

    key_hash: str
    canonical_url: str | None
    content_hash: str
    link_hash: str | None = None
    own_hash: str = ""
    shared_link: bool = False
    own_by_guid: bool = False


def article_key(
    entry: ParsedEntry, *, feed_id: int, tracking: frozenset[str] = frozenset()
) -> ArticleKey:
    """Key an entry by canonical URL, else by GUID within its feed, else by its content.

    A link to a site's home page (its root, no query) names no article: such an entry is keyed
    by its own identity, as ``own_key`` says.
    """
    content_hash = fingerprint(entry.title, entry.content or entry.summary)
    canonical = canonical_url_or_none(entry.link, tracking=tracking) if entry.link else None
    if canonical is None:
        if entry.guid:
            # Without a link a GUID is all we have; many feeds number items 1, 2, 3, so scope it.
            key = _hash(f"guid:{feed_id}:{entry.guid}")
            return ArticleKey(key, None, content_hash, own_hash=key, own_by_guid=True)
        key = _hash(f"content:{content_hash}")
        return ArticleKey(key, None, content_hash, own_hash=key)
    link_hash = _hash(f"url:{canonical}")
    own_text, by_guid = own_key(entry, feed_id=feed_id, canonical=canonical)
    own_hash = _hash(own_text)
    key = own_hash if is_home_page(canonical) else link_hash
    return ArticleKey(key, canonical, content_hash, link_hash, own_hash, own_by_guid=by_guid)


def own_key(entry: ParsedEntry, *, feed_id: int, canonical: str) -> tuple[str, bool]:
    """An entry's key apart from its link, and whether that is its GUID.

    The GUID within its feed, unless the GUID is the link itself; else the feed, the title's
    words and the publication date (the content hash stands in for an empty title).
    """
    guid = entry.guid
    if guid and not _names_link(guid, entry.link or "", canonical):
        return f"guid:{feed_id}:{guid}", True
    title = " ".join(_WORDS.findall(fold(entry.title)))
    published = entry.published_at.isoformat() if entry.published_at else ""
    if not title:
        title = "content:" + fingerprint(entry.content or entry.summary)
    return f"item:{feed_id}:{title}:{published}", False


def _names_link(guid: str, link: str, canonical: str) -> bool:
    """Whether a GUID is only the item's link again (``isPermaLink``), so no identity of its own."""
    if guid.strip() == link.strip():
        return True
    if not guid.startswith(("http://", "https://")) or _loose(guid) != _loose(link):
        # Canonical forms differ when these do (spelling aside): no URL parse for most GUIDs.
        return False
    return canonical_url_or_none(guid) == canonical


def _loose(url: str) -> str:
    """A URL without scheme, query, fragment and trailing slash, lower-cased."""
    head = url.strip().split("#", 1)[0].split("?", 1)[0].lower()
    return head.partition("://")[2].rstrip("/")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def article_keys(
    entries: Sequence[ParsedEntry],
    *,
    feed_id: int,
    tracking: frozenset[str] = frozenset(),
    site_url: str = "",
    feed_url: str = "",
) -> list[ArticleKey]:
    """Key each of one document's entries; see ``article_key``.

    Canonical URLs drop the fragment, but some feeds (comment feeds, link logs, journals kept on
    one page) tell their items apart only by it. When entries of one document share a canonical
    URL and carry two or more different fragments, each keeps its fragment in its key. (One
    fragment alone, as in ``story#comments`` beside ``story``, names the same article.)

    A link is no identity when it is the feed's site (``site_url``, the channel's link) or the
    feed itself, or when several different items of the document share it (a podcast whose
    episodes all link to its home page, an aggregator's landing page): those entries are keyed
    by their own identity. Items are different when they differ both in their own key (GUID)
    and in title or date; the same item listed twice, or under two GUIDs, keeps its link.
    """
    keys = [article_key(entry, feed_id=feed_id, tracking=tracking) for entry in entries]
    keys = _split_by_fragment(entries, keys)
    site_links = {
        link
        for link in (canonical_url_or_none(url, tracking=tracking) for url in (site_url, feed_url))
        if link
    }
    groups: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        if key.link_hash is not None and key.key_hash == key.link_hash:
            groups[key.link_hash].append(index)
    for members in groups.values():
        first = keys[members[0]]
        at_site = first.canonical_url in site_links and first.link_hash == _hash(
            f"url:{first.canonical_url}"
        )
        if at_site or _names_different_items([entries[i] for i in members], keys, members):
            for index in members:
                keys[index] = replace(keys[index], key_hash=keys[index].own_hash, shared_link=True)
    return keys


def _split_by_fragment(entries: Sequence[ParsedEntry], keys: list[ArticleKey]) -> list[ArticleKey]:
    """Give entries that share a link but carry different fragments a link key each."""
    fragments: dict[str, set[str]] = defaultdict(set)
    for entry, key in zip(entries, keys, strict=True):
        if key.link_hash and entry.link and urlsplit(entry.link).fragment:
            fragments[key.link_hash].add(urlsplit(entry.link).fragment)
    for index, (entry, key) in enumerate(zip(entries, keys, strict=True)):
        fragment = urlsplit(entry.link).fragment if entry.link else ""
        if key.link_hash and fragment and len(fragments[key.link_hash]) > 1:
            # The fragment names the item, even on a home page ("/#post-2").
            link_hash = _hash(f"url:{key.canonical_url}#{fragment}")
            keys[index] = replace(key, key_hash=link_hash, link_hash=link_hash)
    return keys


def url_key_hash(canonical_url: str) -> str:
    """The key hash of an article whose link has this canonical URL (as article_key makes it),
    for finding the article an address names, such as a page's own canonical link."""
    return hashlib.sha256(f"url:{canonical_url}".encode()).hexdigest()


def _names_different_items(
    entries: Sequence[ParsedEntry], keys: Sequence[ArticleKey], members: Sequence[int]
) -> bool:
    """Whether entries sharing one link are different items, not one item listed twice.

    Two entries are different when their own keys differ and so do their titles or dates. With
    two own keys and two title-and-date pairs among them, some pair differs in both.
    """
    if len(members) < 2:
        return False
    owns = {keys[index].own_hash for index in members}
    shown = {(fold(entry.title).strip(), entry.published_at) for entry in entries}
    return len(owns) > 1 and len(shown) > 1
