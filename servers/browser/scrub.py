"""What the capture keeps of URLs and texts: never credentials, query tokens or cookies.

* :func:`scrub_url` drops the user/password part, masks a fragment unless it is a plain
  client-side route (``#/orders``), and masks every query value except short plain ones
  (``limit=20``, ``view=orders``) whose name does not look secret — a token in a query
  string or fragment never reaches a record, whatever its name.
* :func:`clean_text` runs a text through the project's redactor, then cuts it to a bound
  (redaction first: a cut inside a secret would leave a start no pattern recognises).

Headers are never read into a record (no cookies, no ``Authorization``), so there is
nothing to scrub there.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from guilde_core.redaction import MASK, is_secret_name, redact_text

__all__ = ["clean_text", "scrub_url"]

#: how far past a cut redaction reads, so a secret straddling the cut is seen whole
_CUT_MARGIN = 4096
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_.\-]{0,12}$")
_PLAIN_FRAGMENT = re.compile(r"^[A-Za-z0-9_./\-]{0,64}$")  # a client-side route: #/orders
_MAX_URL = 500


def _query(query: str) -> str:
    kept: list[str] = []
    for name, value in parse_qsl(query, keep_blank_values=True)[:50]:
        plain = _PLAIN_VALUE.match(value) and not is_secret_name(name)
        kept.append(f"{name[:64]}={value if plain else MASK}")
    return "&".join(kept)


def scrub_url(url: str | None) -> str | None:
    """A URL safe to record (see the module doc); non-URLs are redacted as text."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return clean_text(url, _MAX_URL)
    if parts.scheme in ("data", "blob", "javascript"):
        return f"{parts.scheme}:…"
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = _query(parts.query) if parts.query else ""
    fragment = parts.fragment if _PLAIN_FRAGMENT.match(parts.fragment) else MASK
    cleaned = urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    # redacted before the cut: a token in the path cut in two would escape the patterns
    return redact_text(cleaned[: _MAX_URL + _CUT_MARGIN])[:_MAX_URL]


def clean_text(text: str | None, limit: int = 2000) -> str:
    """``text`` redacted (URLs inside keep no query values), then cut to ``limit``
    characters: redaction sees a secret whole even where the cut falls inside it (it reads
    a margin past the cut; the rest is never read)."""
    if not text:
        return ""
    head = _URL_IN_TEXT.sub(lambda m: scrub_url(m.group(0)) or "", text[: limit + _CUT_MARGIN])
    cleaned = redact_text(head)
    if len(cleaned) <= limit and len(text) <= limit + _CUT_MARGIN:
        return cleaned
    more = len(text) - limit if len(text) > limit else len(cleaned) - limit
    return cleaned[:limit] + f" … [{more} more]"


_URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>()]+")
