"""Secret redaction: the one function every output path uses.

``redact(obj)`` masks

* values whose *name* looks secret (key, token, secret, password, passwd, dsn,
  authorization, cookie, credential, api-key, private key …), in dicts, Pydantic models
  and ``NAME=value`` / ``"name": "value"`` / ``name: value`` text;
* values whose *shape* looks secret, wherever they stand: ``sk-…``/``sk-ant-…`` keys,
  ``Bearer``/``Basic`` credentials, credentials inside URLs (``scheme://user:pass@host``),
  JWTs, AWS access keys, GitHub/Slack/Google tokens, PEM private keys;
* :class:`pydantic.SecretStr` / ``SecretBytes`` values.

Ordinary text is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = ["MASK", "escape_controls", "is_secret_name", "may_hold_secret", "redact", "redact_text"]

MASK = "***REDACTED***"

_SECRET_NAME = re.compile(
    r"(?:api[_\-]?key|apikey|access[_\-]?key|secret|token|password|passwd|pwd|passphrase|dsn|"
    r"authorization|auth[_\-]?header|cookie|set[_\-]?cookie|credential|private[_\-]?key|"
    r"session[_\-]?id|client[_\-]?secret|x[_\-]api[_\-]key|signing[_\-]?key)",
    re.IGNORECASE,
)
# names that contain a secret-looking word but are not secrets
_NOT_SECRET_NAME = re.compile(
    r"^(?:.*_)?(?:token_budget|max_tokens|tokens|token_count|tokens_used|input_tokens|output_tokens|"
    r"total_tokens|prompt_tokens|completion_tokens|key_count|keys|api_keys_count|"
    r"diagnostic_auth_required|auth_required|secret_name)$",
    re.IGNORECASE,
)

_SHAPES: list[tuple[re.Pattern[str], str]] = [
    # PEM private keys
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
        ),
        MASK,
    ),
    # credentials inside URLs: scheme://user:pass@host  (keep the user, mask the password)
    (
        re.compile(
            r"(?P<pre>(?<![a-zA-Z0-9+.\-])[a-zA-Z][a-zA-Z0-9+.\-]{0,31}://[^\s:/@'\"]{0,256}:)"
            r"[^\s@/'\"]{1,512}(?=@)"
        ),
        r"\g<pre>" + MASK,
    ),
    # Authorization schemes
    (
        re.compile(r"(?i)\b(?P<scheme>bearer|basic|token)\s+[A-Za-z0-9\-._~+/]{8,}=*"),
        r"\g<scheme> " + MASK,
    ),
    # OpenAI / Anthropic / OpenRouter style keys
    (re.compile(r"\bsk-(?:ant-|or-|proj-)?[A-Za-z0-9_\-]{8,}"), MASK),
    # JWTs
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}"), MASK),
    # AWS access key ids
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    # GitHub, Slack, Google API tokens
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"), MASK),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"), MASK),
    # Logfire / Sentry style tokens embedded in text
    (re.compile(r"\b(?:pylf_v\d_[a-z]+_|lf_)[A-Za-z0-9_]{16,}"), MASK),
]

# NAME=value, name: value, "name": "value" (a quoted value runs to its closing quote). Only a
# name holding a secret word matches: a plain name ("message", "failed") would swallow its
# value, and a secret assignment inside it ("failed: x-api-key: …", "message": "… token=…")
# would never be looked at.
_ASSIGNMENT = re.compile(
    # a name starts only where a token starts, so a long token is scanned once, not once per
    # position (that made redaction quadratic in the length of a token)
    r"""(?<![A-Za-z0-9_\-.])(?P<name>\\?["']?(?=[A-Za-z_])[A-Za-z0-9_\-.]{0,63}?"""
    r"""(?i:api[_\-]?key|apikey|access[_\-]?key|secret|token|passw|pwd|passphrase|dsn|"""
    r"""authorization|auth[_\-]?header|cookie|credential|private[_\-]?key|session[_\-]?id|"""
    r"""signing[_\-]?key)[A-Za-z0-9_\-.]{0,63}\\?["']?)"""
    r"""(?P<sep>\s*[=:]\s*\\?)"""
    r"""(?:"(?P<dq>[^"\n]*)"|'(?P<sq>[^'\n]*)'|(?P<value>[^\s"',;&}]+))"""
)

T = TypeVar("T")


@lru_cache(maxsize=8192)
def is_secret_name(name: str) -> bool:
    """Whether a field/variable/header name denotes a secret (cached: names repeat)."""
    if _NOT_SECRET_NAME.match(name):
        return False
    return bool(_SECRET_NAME.search(name))


def _mask_assignment(match: re.Match[str]) -> str:
    name = match["name"].strip("\"'\\")
    if match["dq"] is not None:
        value, quote = match["dq"], '"'
    elif match["sq"] is not None:
        value, quote = match["sq"], "'"
    else:
        value, quote = match["value"], ""
    if (
        not value
        or value.startswith(MASK)  # masked already (a MASK further on hides nothing here)
        or not is_secret_name(name)
        or value.lower() in {"true", "false", "none", "null"}
    ):
        return match.group(0)
    # inside a JSON string the quotes are escaped (\"token\": \"…\"): keep the escape
    escape = "\\" if quote and value.endswith("\\") else ""
    return f"{match['name']}{match['sep']}{quote}{MASK}{escape}{quote}"


# Literal hints (lower case): a shape can only match where one of its hints occurs, so a
# substring test skips the regex on the common text that holds none.
_SHAPE_HINTS: tuple[tuple[str, ...], ...] = (
    ("private key-----",),
    ("://",),
    ("bearer", "basic", "token"),
    ("sk-",),
    ("eyj",),
    ("akia", "asia"),
    ("gh",),
    ("xox",),
    ("aiza",),
    ("lf_",),
)
_NAME_HINTS = (
    "key", "secret", "token", "passw", "pwd", "passphrase", "dsn", "auth", "cookie",
    "credential", "session", "signing",
)  # fmt: skip


# every hint once: most text (levels, timestamps, messages) holds none and returns at once
_ALL_HINTS = tuple(sorted({*(h for hs in _SHAPE_HINTS for h in hs), *_NAME_HINTS}))


def may_hold_secret(text: str) -> bool:
    """Whether :func:`redact` could change ``text`` or anything parsed out of it (JSON
    values and keys, substrings, fields): False only for ASCII text without a backslash
    (a JSON escape such as ``\\u0074oken`` or ``https:\\/\\/`` could spell a hint once
    decoded) that holds none of the hints every secret shape, every secret name and every
    ``name=value`` needs. True just means "redact what comes out of it"; a reader that
    checks each raw line once can skip redacting what comes from the lines that are False."""
    if not text.isascii() or "\\" in text:
        return True
    lowered = text.lower()
    for hint in _ALL_HINTS:  # noqa: SIM110 - a plain loop: half the cost of any() over a genexpr
        if hint in lowered:
            return True
    return False


def redact_text(text: str) -> str:
    """Mask secret-looking shapes and ``name=value`` secrets inside free text."""
    if not text:
        return text
    if len(text) <= _SHORT:  # levels, loggers, paths, ids repeat: remember their answer
        return _redact_short(text)
    return _redact_text(text)


def _redact_text(text: str) -> str:
    lowered = text.lower()
    if not any(hint in lowered for hint in _ALL_HINTS):
        return text
    for (pattern, repl), hints in zip(_SHAPES, _SHAPE_HINTS, strict=True):
        if any(hint in lowered for hint in hints):
            text = pattern.sub(repl, text)
    if not any(hint in lowered for hint in _NAME_HINTS):  # no secret-looking name anywhere
        return text
    return _ASSIGNMENT.sub(_mask_assignment, text)


_SHORT = 64
_redact_short = lru_cache(maxsize=16384)(_redact_text)
# values that can hold no secret: returned as they are without further checks
_ATOMS = frozenset(
    {int, float, bool, type(None), datetime, date, time, timedelta, Decimal, UUID, complex}
)


def _redact(obj: Any, depth: int) -> Any:
    kind = type(obj)
    if kind is str:
        return redact_text(obj)
    if kind in _ATOMS:
        return obj
    if depth > 50:
        return obj
    if kind is dict:
        return _redact_items(obj, depth)
    if kind is list:
        return [_redact(v, depth + 1) for v in obj]
    if isinstance(obj, SecretStr | SecretBytes):
        return MASK
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, BaseModel):
        data = obj.model_dump(mode="python")
        cleaned = _redact(data, depth + 1)
        if cleaned == data:  # nothing masked: keep the model (no second validation)
            return obj
        try:
            return type(obj).model_validate(cleaned)
        except Exception:  # the masked value may not validate (e.g. a URL field)
            return type(obj).model_construct(**cleaned)
    if isinstance(obj, Mapping):
        return _redact_items(obj, depth)
    if isinstance(obj, list):
        return [_redact(v, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_redact(v, depth + 1) for v in obj)
    if isinstance(obj, set | frozenset):
        return type(obj)(_redact(v, depth + 1) for v in obj)
    return obj


def _redact_items(obj: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in obj.items():
        if isinstance(key, str) and is_secret_name(key) and value not in (None, "", False, True):
            out[key] = MASK
        else:
            out[key] = _redact(value, depth + 1)
    return out


# C0 controls but tab, DEL, C1 controls and the Unicode line/paragraph separators: what a
# terminal, a log file or a log reader could take for a line break or an escape sequence
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return _NAMED.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def escape_controls(text: str) -> str:
    """``text`` on one line: newlines, carriage returns, escape sequences and the other
    control characters written as ``\\n``, ``\\r``, ``\\x1b`` …, so a value from outside
    (a control reason, a header, a log message) cannot forge a log line or a timeline entry."""
    if text.isprintable():
        return text
    return _CONTROLS.sub(_escape, text)


def redact[T](obj: T) -> T:
    """Return a copy of ``obj`` (str, dict, list, Pydantic model, …) with secrets masked."""
    result: T = _redact(obj, 0)
    return result
