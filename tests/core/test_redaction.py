"""Redaction catches every secret pattern and leaves ordinary text alone."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from guilde_core.redaction import MASK, is_secret_name, redact, redact_text

SECRETS = {
    "openai key": "sk-proj-9f8e7d6c5b4a39281716151413121110",
    "anthropic key": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz",
    "bearer": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlMTIz",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlMTIz",
    "aws": "AKIAABCDEFGHIJKLMNOP",
    "github": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "slack": "xoxb-1234567890-abcdefghij",
}


def test_shapes_are_masked_in_free_text() -> None:
    for label, secret in SECRETS.items():
        out = redact_text(f"calling upstream with {secret} now")
        assert secret not in out, label
        assert MASK in out, label
        assert out.startswith("calling upstream with"), label


def test_url_credentials_keep_user_and_host() -> None:
    out = redact_text("connect postgresql://app:s3cr3t-pass@db.internal:5432/app failed")
    assert "s3cr3t-pass" not in out
    assert "postgresql://app:" in out
    assert "@db.internal:5432/app failed" in out
    assert redact_text("redis://:hunter2@cache:6379/0") == f"redis://:{MASK}@cache:6379/0"


def test_named_assignments() -> None:
    for text, secret in [
        ("OPENAI_API_KEY=abc123def456", "abc123def456"),
        ('{"password": "correct horse"}', "correct"),
        ("token: 12345abcde", "12345abcde"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
        ("SENTRY_DSN=https://abc@o1.ingest.sentry.io/1", "abc@o1"),
        ("client_secret='zzz-999'", "zzz-999"),
    ]:
        assert secret not in redact_text(text), text


def test_pem_private_key() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----"
    assert "MIIEow" not in redact_text(f"key:\n{pem}\nend")


def test_dicts_models_and_secretstr() -> None:
    class Cfg(BaseModel):
        api_key: str
        url: str
        token: SecretStr
        tokens_used: int

    data: dict[str, Any] = {
        "Authorization": "Bearer abcdefghijklmnop",
        "nested": [{"db_password": "pw", "note": "hello"}],
        "model": Cfg(api_key="k-1", url="https://u:p4ss@h/x", token=SecretStr("t"), tokens_used=12),
        "max_tokens": 100,
        "auth_required": True,
    }
    out: dict[str, Any] = redact(data)
    assert out["Authorization"] == MASK
    assert out["nested"][0]["db_password"] == MASK
    assert out["nested"][0]["note"] == "hello"
    model = out["model"]
    assert model.api_key == MASK
    assert "p4ss" not in model.url
    assert out["max_tokens"] == 100
    assert out["auth_required"] is True
    assert data["nested"][0]["db_password"] == "pw"  # input untouched


def test_names() -> None:
    for name in ("OPENAI_API_KEY", "x-api-key", "password", "DATABASE_DSN", "authorization",
                 "LOGFIRE_TOKEN", "client_secret", "Cookie"):  # fmt: skip
        assert is_secret_name(name), name
    for name in ("max_tokens", "token_budget", "status", "latency_ms", "url", "keys_total",
                 "signature"):  # fmt: skip
        assert not is_secret_name(name), name


ORDINARY = [
    "GET /api/v1/orders 200 12.5ms",
    "2026-01-22T10:30:00Z INFO checkout completed order_id=42",
    "connection refused to 127.0.0.1:5432",
    "circuit openai is half-open; failure_count=3",
    'Traceback (most recent call last):\n  File "app.py", line 3, in <module>',
    "redis://cache:6379/0",
    "http://localhost:8000/api/v1/health",
    "the task was skipped",
]


def test_ordinary_text_untouched() -> None:
    for text in ORDINARY:
        assert redact_text(text) == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + " .,/()[]-", max_size=80))
def test_plain_words_are_never_masked(text: str) -> None:
    # text with no secret names, no '=' or ':' and no secret shapes stays as it is
    lowered = text.lower()
    if any(w in lowered for w in ("sk-", "bearer", "basic", "token", "akia", "asia", "ghp_",
                                   "gho_", "ghu_", "ghs_", "ghr_", "xox", "aiza", "eyj", "lf_")):  # fmt: skip
        return
    assert redact_text(text) == text


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits, min_size=12, max_size=40))
def test_planted_keys_always_masked(body: str) -> None:
    secret = f"sk-{body}"
    assert secret not in redact_text(f"msg={secret} rest")
    assert body not in str(redact({"headers": {"Authorization": f"Bearer {body}"}}))


def test_long_tokens_are_redacted_in_one_pass() -> None:
    # a 200 KB token (a minified blob, a base64 body) once made redaction quadratic; it must
    # come back promptly and intact, with a secret after it still masked
    blob = "a" * 200_000
    dotted = ".".join(["abc"] * 50_000)
    text = f"{blob} {dotted} password=hunter2hunter2"
    out = redact_text(text)
    assert out.startswith(blob)
    assert dotted in out
    assert "hunter2" not in out
