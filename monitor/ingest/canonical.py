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
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Characters RFC 3986 never allows in a registered host name (IDN letters are fine).
_BAD_HOST_CHARS = re.compile(r"[\x00-\x20\"#/:<>?@\[\\\]^`{|}\x7f]")
_WORDS = re.compile(r"\w+")


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


def fingerprint(*texts: str) -> str:
    """SHA-256 of the words of ``texts``, ignoring case, accents, spacing and punctuation."""
    words = _WORDS.findall(fold(" ".join(texts)))
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ArticleKey:
    """How an entry is identified: the hash of its key, and its canonical URL when it has one."""

    key_hash: str
    canonical_url: str | None
    content_hash: str


def article_key(
    entry: ParsedEntry, *, feed_id: int, tracking: frozenset[str] = frozenset()
) -> ArticleKey:
    """Key an entry by canonical URL, else by GUID within its feed, else by its content."""
    content_hash = fingerprint(entry.title, entry.content or entry.summary)
    canonical = canonical_url_or_none(entry.link, tracking=tracking) if entry.link else None
    if canonical:
        key = f"url:{canonical}"
    elif entry.guid:
        # Without a link a GUID is all we have; many feeds number items 1, 2, 3, so scope it.
        key = f"guid:{feed_id}:{entry.guid}"
    else:
        key = f"content:{content_hash}"
    return ArticleKey(hashlib.sha256(key.encode()).hexdigest(), canonical, content_hash)


def article_keys(
    entries: Sequence[ParsedEntry], *, feed_id: int, tracking: frozenset[str] = frozenset()
) -> list[ArticleKey]:
    """Key each of one document's entries; see ``article_key``.

    Canonical URLs drop the fragment, but some feeds (comment feeds, link logs, journals kept on
    one page) tell their items apart only by it. When entries of one document share a canonical
    URL and carry two or more different fragments, each keeps its fragment in its key. (One
    fragment alone, as in ``story#comments`` beside ``story``, names the same article.)
    """
    keys = [article_key(entry, feed_id=feed_id, tracking=tracking) for entry in entries]
    fragments: dict[str, set[str]] = defaultdict(set)
    for entry, key in zip(entries, keys, strict=True):
        if key.canonical_url and entry.link and urlsplit(entry.link).fragment:
            fragments[key.key_hash].add(urlsplit(entry.link).fragment)
    for index, (entry, key) in enumerate(zip(entries, keys, strict=True)):
        fragment = urlsplit(entry.link).fragment if entry.link else ""
        if fragment and len(fragments[key.key_hash]) > 1:
            key_text = f"url:{key.canonical_url}#{fragment}"
            keys[index] = replace(key, key_hash=hashlib.sha256(key_text.encode()).hexdigest())
    return keys
