"""Dead letters: written on permanent failure (file and Redis stream), listed, replayed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from guilde_core.config import Settings
from guilde_core.correlation import correlation_scope
from guilde_core.errors import (
    GuildeError,
    NotFoundError,
    RetryBudgetExhaustedError,
    ServiceUnavailableError,
    error_from_status,
)
from guilde_core.resilience import (
    BreakerRegistry,
    FileDeadLetterStore,
    RedisDeadLetterStore,
    list_dead_letters,
    register_replay_handler,
    replay_dead_letter,
    replayable,
    reset_dead_letter_store,
    resilient_call,
)
from tests.core.conftest import dead_letter

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
REPLAYED: list[Any] = []


@replayable
async def replay_handler(payload: Any) -> str:
    """Referenced as ``tests.core.test_deadletter:replay_handler`` by a stored letter."""
    REPLAYED.append(payload)
    return f"replayed order {payload['order']}"


async def _no_sleep(delay: float) -> None:
    return None


def _registry(tmp_path: Path, **overrides: Any) -> BreakerRegistry:
    values: dict[str, Any] = {"dev3000_data_dir": str(tmp_path), "retry_budget_enabled": False}
    values.update(overrides)
    return BreakerRegistry(settings=Settings(**values))


def test_file_dead_letter_written_redacted_and_replayable(tmp_path: Path) -> None:
    reset_dead_letter_store(FileDeadLetterStore(tmp_path / "deadletters.jsonl"))
    reg = _registry(tmp_path)

    async def bad_request(timeout: float | None) -> None:
        raise error_from_status(422, "order rejected")

    async def run() -> None:
        with correlation_scope("corr-dl-1"), pytest.raises(GuildeError):
            await resilient_call(
                "orders", bad_request, registry=reg, sleep=_no_sleep,
                payload={"order": 7, "api_key": SECRET, "note": f"token {SECRET}"},
                operation="tests.core.test_deadletter:replay_handler",
            )  # fmt: skip
        letters = await list_dead_letters()
        assert len(letters) == 1
        letter = letters[0]
        assert (letter.service, letter.reason, letter.attempts) == ("orders", "non_retryable", 1)
        assert letter.correlation_id == "corr-dl-1"
        assert letter.error_code == "permanent"
        assert letter.payload["order"] == 7
        raw = (tmp_path / "deadletters.jsonl").read_text()
        assert SECRET not in raw  # redacted before it was stored
        assert json.loads(raw)["payload"]["api_key"] != SECRET

        REPLAYED.clear()
        assert await replay_dead_letter(letter.id) == "replayed order 7"
        assert [letter.payload] == REPLAYED
        assert await list_dead_letters() == []
        with pytest.raises(NotFoundError):
            await replay_dead_letter(letter.id)

    asyncio.run(run())


def test_redis_stream_dead_letters_for_exhausted_retries_and_budget(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    store = RedisDeadLetterStore(redis_url, prefix=redis_prefix)
    reset_dead_letter_store(store)
    reg = _registry(tmp_path, circuit_breaker_failure_threshold=100)

    async def down(timeout: float | None) -> None:
        raise ServiceUnavailableError("503")

    async def run() -> None:
        with pytest.raises(ServiceUnavailableError):
            await resilient_call(
                "billing", down, registry=reg, sleep=_no_sleep, payload={"order": 1}
            )
        letters = await store.list()
        assert len(letters) == 1
        assert letters[0].reason == "retries_exhausted"
        assert letters[0].attempts == reg.settings().retry_policy("third_party_api").max_attempts
        assert "-" in letters[0].id  # a stream id

        # a retry refused by the budget is a permanent failure too
        reg2 = _registry(
            tmp_path, retry_budget_enabled=True, retry_budget_ratio=0.0,
            retry_budget_min_retries=0, circuit_breaker_failure_threshold=100,
        )  # fmt: skip
        with pytest.raises(RetryBudgetExhaustedError):
            await resilient_call(
                "billing", down, registry=reg2, sleep=_no_sleep, payload={"order": 2}
            )
        newest = (await store.list(limit=1))[0]
        assert (newest.reason, newest.payload) == ("budget_exhausted", {"order": 2})
        assert [x.payload["order"] for x in await store.list(service="billing")] == [2, 1]

        # replay: a failing handler keeps the letter, a working one removes it
        async def still_down(payload: Any) -> None:
            raise ServiceUnavailableError("still 503")

        with pytest.raises(ServiceUnavailableError):
            await replay_dead_letter(newest.id, still_down, store=store)
        assert len(await store.list()) == 2

        async def charged(payload: Any) -> str:
            return f"charged {payload['order']}"

        assert await replay_dead_letter(newest.id, charged, store=store) == "charged 2"
        assert [x.payload["order"] for x in await store.list()] == [1]
        await store.aclose()

    asyncio.run(run())


def test_redis_replay_by_registered_operation(redis_url: str, redis_prefix: str) -> None:
    store = RedisDeadLetterStore(redis_url, prefix=redis_prefix)
    register_replay_handler("orders.submit", replay_handler)

    async def run() -> None:
        letter_id = await store.add(
            dead_letter(operation="orders.submit", payload={"order": 9}, attempts=3)
        )
        assert await replay_dead_letter(letter_id, store=store) == "replayed order 9"
        assert await store.get(letter_id) is None
        await store.aclose()

    asyncio.run(run())


def test_no_payload_no_dead_letter_and_flag_off(tmp_path: Path) -> None:
    store = FileDeadLetterStore(tmp_path / "dl.jsonl")
    reset_dead_letter_store(store)

    async def bad(timeout: float | None) -> None:
        raise error_from_status(400)

    async def run() -> None:
        with pytest.raises(GuildeError):
            await resilient_call("x", bad, registry=_registry(tmp_path))
        with pytest.raises(GuildeError):
            await resilient_call(
                "x", bad, registry=_registry(tmp_path, dead_letter_enabled=False), payload={}
            )
        assert await store.list() == []

    asyncio.run(run())


async def not_marked(payload: Any) -> str:
    REPLAYED.append(payload)
    return "ran"


def test_a_letter_may_only_name_a_function_marked_replayable(tmp_path: Path) -> None:
    """The operation is data: a letter naming any importable callable (os:system, a function
    its code never meant as a handler) is refused, the callable never runs, the letter stays."""

    async def run() -> None:
        store = FileDeadLetterStore(tmp_path / "dl.jsonl")
        reset_dead_letter_store(store)
        try:
            for operation in ("os:system", "tests.core.test_deadletter:not_marked"):
                letter_id = await store.add(
                    dead_letter(operation=operation, payload={"order": 1}, attempts=3)
                )
                before = len(REPLAYED)
                with pytest.raises(GuildeError, match="not marked @replayable"):
                    await replay_dead_letter(letter_id)
                assert len(REPLAYED) == before
                assert await store.get(letter_id) is not None
        finally:
            reset_dead_letter_store()

    asyncio.run(run())
