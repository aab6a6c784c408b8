"""Shared fixtures: the real Redis and PostgreSQL of the machine, isolated per test.

Tests run concurrently with other test sessions on the same machine, so they never
FLUSHALL, never stop the shared Redis on :6379, and only touch keys under their own
prefix / tables in their own schema. A test that needs Redis to go away uses
``private_redis`` (a redis-server of its own).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from tools.harness import PrivateRedis, delete_keys

REDIS_URL = os.environ.get("GUILDE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_DSN = os.environ.get("GUILDE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

# Settings must not leak from a developer's own .env into the tests.
os.environ.setdefault("DEV3000_ENV_FILE", os.devnull)


@pytest.fixture
def redis_url() -> str:
    """URL of the machine's real Redis (the test fails if it is down)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A unique key prefix; every key under it is deleted after the test."""
    prefix = f"guilde-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    delete_keys(redis_url, prefix)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A redis-server of the test's own, which it may stop and restart."""
    server = PrivateRedis().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_dsn() -> str:
    """DSN of the machine's real PostgreSQL database ``test``."""
    import psycopg

    with psycopg.connect(PG_DSN, connect_timeout=5) as conn:
        conn.execute("SELECT 1")
    return PG_DSN


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A fresh schema dropped after the test (tables go there, not in public)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(autouse=True)
def _fresh_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Each test reads configuration anew (tests set env vars with monkeypatch).

    State and logs go to a temporary directory, never into the checkout; a test that
    wants other paths sets DEV3000_LOG_PATHS / DEV3000_DATA_DIR itself.
    """
    from guilde_core.config import reset_settings_cache

    monkeypatch.setenv("DEV3000_ENV_FILE", os.devnull)
    scratch = tmp_path_factory.mktemp("dev3000-state")
    (scratch / "logs").mkdir()
    monkeypatch.setenv("DEV3000_LOG_PATHS", str(scratch / "logs"))
    monkeypatch.setenv("DEV3000_DATA_DIR", str(scratch / "data"))
    # starlette's TestClient sends ``Host: testserver``: one more name of the app under test
    # (the Host/Origin tests set their own)
    monkeypatch.setenv("DEV3000_ALLOWED_HOSTS", "testserver")
    reset_settings_cache()
    yield
    reset_settings_cache()
