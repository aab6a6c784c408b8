"""Planted secrets of every kind (hypothesis strategies) and the check that none survives.

A :class:`Planted` is a snippet of text holding one secret as it appears in the wild (an
``sk-`` key, a Bearer token, a DSN with a password, an ``x-api-key`` header, an AWS key, a
JWT, a cookie, a ``?token=`` query string) and the secret's own characters. Bodies are
runs of letters between digits: a transformation that treats digits specially (an error
group's ``<n>``) leaves the letter runs standing, and :func:`leaks` finds any 8 characters
of a secret that survive, not only the whole of it.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from hypothesis import strategies as st

__all__ = [
    "KINDS",
    "Planted",
    "leaks",
    "log_line",
    "one_of_each",
    "planted",
    "planted_lists",
]

WINDOW = 8


@dataclass(frozen=True)
class Planted:
    kind: str
    text: str  # the snippet as it appears in a log line, a header, a URL
    secret: str  # the characters that must not survive anywhere


def _body(draw_letters: list[str], digits: list[str]) -> str:
    out = []
    for i, run in enumerate(draw_letters):
        out.append(run)
        if i < len(digits):
            out.append(digits[i])
    return "".join(out)


# letters from bytes, not drawn as text: hypothesis would offer words it has seen elsewhere
# ("timestamp"), which the output holds for other reasons
_letters = st.binary(min_size=9, max_size=12).map(
    lambda raw: "".join(string.ascii_letters[b % 52] for b in raw)
)
_digits = st.text(alphabet=string.digits, min_size=1, max_size=3)


@st.composite
def _secret_body(draw: st.DrawFn, runs: int = 3) -> str:
    return _body([draw(_letters) for _ in range(runs)], [draw(_digits) for _ in range(runs - 1)])


@st.composite
def _upper_body(draw: st.DrawFn, size: int = 16) -> str:
    alphabet = string.ascii_uppercase + string.digits
    raw = draw(st.binary(min_size=size, max_size=size))
    return "".join(alphabet[b % len(alphabet)] for b in raw)


def _b64url(body: str) -> str:
    return body.replace("+", "-").replace("/", "_")


@st.composite
def planted(draw: st.DrawFn) -> Planted:
    """One secret in one of its usual settings."""
    kind = draw(st.sampled_from(KINDS))
    body = draw(_secret_body())
    if kind == "sk_key":
        prefix = draw(st.sampled_from(["sk-", "sk-proj-", "sk-ant-", "sk-or-"]))
        setting = draw(st.sampled_from(["{k}", "key={k}", "api_key={k}", "OPENAI_API_KEY={k}"]))
        return Planted(kind, setting.format(k=prefix + body), body)
    if kind == "bearer":
        setting = draw(
            st.sampled_from(["Authorization: Bearer {t}", "bearer {t}", "auth=Bearer {t}"])
        )
        return Planted(kind, setting.format(t=body), body)
    if kind == "dsn":
        scheme = draw(st.sampled_from(["postgresql", "postgres", "redis", "amqp", "https"]))
        user = draw(st.sampled_from(["app", "admin", "u"]))
        return Planted(kind, f"{scheme}://{user}:{body}@db.internal:5432/main", body)
    if kind == "x_api_key":
        setting = draw(st.sampled_from(["x-api-key: {v}", "X-API-Key={v}", '"x-api-key": "{v}"']))
        return Planted(kind, setting.format(v=body), body)
    if kind == "aws_key":
        key = draw(st.sampled_from(["AKIA", "ASIA"])) + draw(_upper_body())
        return Planted(
            kind, draw(st.sampled_from(["{k}", "aws_access_key_id={k}"])).format(k=key), key[4:]
        )
    if kind == "jwt":
        header, payload, signature = (draw(_secret_body()) for _ in range(3))
        token = f"eyJ{_b64url(header)}.eyJ{_b64url(payload)}.{_b64url(signature)}"
        return Planted(kind, draw(st.sampled_from(["{t}", "jwt={t}"])).format(t=token), signature)
    if kind == "cookie":
        setting = draw(
            st.sampled_from(
                ["Cookie: session={v}", "Set-Cookie: sid={v}; Path=/; HttpOnly", "cookie={v}"]
            )
        )
        return Planted(kind, setting.format(v=body), body)
    # query_token
    path = draw(st.sampled_from(["/api/v1/diag/stream", "/timeline", "/api/v1/diag/stream/sse"]))
    setting = draw(st.sampled_from(["{p}?token={v}", "{p}?kinds=notice&token={v}&replay=5"]))
    return Planted(kind, setting.format(p=path, v=body), body)


KINDS = ("sk_key", "bearer", "dsn", "x_api_key", "aws_key", "jwt", "cookie", "query_token")


def planted_lists(min_size: int = 1, max_size: int = 6) -> st.SearchStrategy[list[Planted]]:
    return st.lists(planted(), min_size=min_size, max_size=max_size)


_LINE_STYLES = (
    "2026-01-22 10:{m:02d}:{s:02d},123 ERROR orders.api: request failed {x} (attempt {n})",
    "2026-01-22T10:{m:02d}:{s:02d}Z [ERROR] payment 1{n}23 declined {x}",
    'INFO:     127.0.0.1:5{n}00 - "GET {x} HTTP/1.1" 500',
    "ERROR:app:upstream {x} answered 5{n}3 after 12{n}ms",
    "2026-01-22 10:{m:02d}:{s:02d},000 ERROR worker: Traceback follows {x}",
)


def log_line(planted: Planted, style: int, n: int) -> str:
    """``planted`` inside a log line of one of several formats (JSON and tracebacks too)."""
    m, s = n % 60, (n * 7) % 60
    if style == len(_LINE_STYLES):
        import json

        return json.dumps(
            {
                "timestamp": f"2026-01-22T10:{m:02d}:{s:02d}Z",
                "level": "error",
                "logger": "orders",
                "message": f"charge {n} failed: {planted.text}",
            }
        )
    if style == len(_LINE_STYLES) + 1:
        return (
            f"2026-01-22 10:{m:02d}:{s:02d},000 ERROR orders: unhandled\n"
            "Traceback (most recent call last):\n"
            '  File "app.py", line 1, in <module>\n'
            f"RuntimeError: connect {n} failed with {planted.text}"
        )
    return _LINE_STYLES[style].format(m=m, s=s, n=n, x=planted.text)


LINE_STYLES = len(_LINE_STYLES) + 2


def one_of_each(seed: int = 14) -> list[Planted]:
    """One planted secret of each kind, drawn reproducibly (for tests that cannot run
    hypothesis, such as a real server process)."""
    rng = random.Random(seed)

    def body() -> str:
        runs = ["".join(rng.choices(string.ascii_letters, k=10)) for _ in range(3)]
        return _body(runs, [str(rng.randint(1, 999)) for _ in range(2)])

    aws = "AKIA" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=16))
    jwt_sig = body()
    b = [body() for _ in range(7)]
    return [
        Planted("sk_key", f"api_key=sk-proj-{b[0]}", b[0]),
        Planted("bearer", f"Authorization: Bearer {b[1]}", b[1]),
        Planted("dsn", f"postgresql://app:{b[2]}@db.internal:5432/main", b[2]),
        Planted("x_api_key", f"x-api-key: {b[3]}", b[3]),
        Planted("aws_key", aws, aws[4:]),
        Planted("jwt", f"eyJ{b[4]}.eyJ{b[5]}.{jwt_sig}", jwt_sig),
        Planted("cookie", f"Cookie: session={b[6]}", b[6]),
        Planted("query_token", f"/api/v1/diag/stream?token={b[0][::-1]}", b[0][::-1]),
    ]


def leaks(output: str, secrets: list[Planted]) -> list[str]:
    """The planted secrets of which any :data:`WINDOW` consecutive characters appear in
    ``output`` (an empty list: nothing survived)."""
    found = []
    for p in secrets:
        s = p.secret
        windows = {s[i : i + WINDOW] for i in range(max(1, len(s) - WINDOW + 1))}
        hits = sorted(w for w in windows if w in output)
        if hits:
            found.append(f"{p.kind}: {p.text!r} -> {hits[:3]}")
    return found
