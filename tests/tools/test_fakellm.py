"""The fake providers driven by the real ``openai`` and ``anthropic`` SDKs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import httpx2
import openai
import pytest
from anthropic.types import MessageParam, ToolParam
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tools.fakellm import FakeLLM, Script, ScriptError, fakellm_server, load_script
from tools.fakellm.client import RunningFakeLLM

TOOL_SCRIPT = {
    "steps": [
        {"tool_calls": [{"name": "logs_search", "arguments": {"query": "database", "limit": 5}}]},
        {"text": "The database is slow.", "usage": {"input_tokens": 40, "output_tokens": 7}},
    ]
}
OPENAI_TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {"name": "logs_search", "parameters": {"type": "object", "properties": {}}},
    }
]
ANTHROPIC_TOOLS: list[ToolParam] = [
    {"name": "logs_search", "input_schema": {"type": "object", "properties": {}}}
]
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "why are orders slow?"}]
AUSER: list[MessageParam] = [{"role": "user", "content": "why are orders slow?"}]


@pytest.fixture
def fake() -> Iterator[RunningFakeLLM]:
    with fakellm_server(TOOL_SCRIPT) as running:
        yield running


def oai(fake: RunningFakeLLM, timeout: float = 10.0) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=fake.openai_base_url, api_key="sk-test", max_retries=0, timeout=timeout
    )


def ant(fake: RunningFakeLLM, timeout: float = 10.0) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=fake.anthropic_base_url, api_key="sk-ant-test", max_retries=0, timeout=timeout
    )


def test_openai_tool_call_then_final_answer(fake: RunningFakeLLM) -> None:
    client = oai(fake)
    first = client.chat.completions.create(model="gpt-x", messages=USER, tools=OPENAI_TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "logs_search"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"query": "database", "limit": 5}  # type: ignore[union-attr]
    second = client.chat.completions.create(model="gpt-x", messages=USER)
    assert second.choices[0].message.content == "The database is slow."
    assert second.usage is not None
    assert (second.usage.prompt_tokens, second.usage.completion_tokens) == (40, 7)
    # the script is used up: default echo of the last message
    third = client.chat.completions.create(model="gpt-x", messages=USER)
    assert third.choices[0].message.content == "echo: why are orders slow?"
    assert fake.control.count("openai") == 3
    models = client.models.list()
    assert "fake-gpt" in [m.id for m in models.data]


def test_anthropic_tool_use_then_final_answer(fake: RunningFakeLLM) -> None:
    client = ant(fake)
    first = client.messages.create(
        model="claude-x",
        max_tokens=100,
        messages=AUSER,
        tools=ANTHROPIC_TOOLS,
    )
    assert first.stop_reason == "tool_use"
    block = first.content[0]
    assert block.type == "tool_use"
    assert block.name == "logs_search"
    assert block.input == {"query": "database", "limit": 5}
    second = client.messages.create(model="claude-x", max_tokens=100, messages=AUSER)
    assert second.content[0].type == "text"
    assert second.content[0].text == "The database is slow."
    assert second.usage.output_tokens == 7
    assert fake.control.count("anthropic") == 2
    assert fake.control.count("openai") == 0


def test_openai_streaming_with_tool_calls_and_usage(fake: RunningFakeLLM) -> None:
    client = oai(fake)
    stream = client.chat.completions.create(
        model="gpt-x",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    args = ""
    name = None
    finish = None
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                name = name or (call.function.name if call.function else None)
                args += (call.function.arguments or "") if call.function else ""
            finish = choice.finish_reason or finish
    assert name == "logs_search"
    assert json.loads(args) == {"query": "database", "limit": 5}
    assert finish == "tool_calls"
    assert usage is not None
    # text streaming, assembled by the SDK's own stream helper
    with client.chat.completions.stream(model="gpt-x", messages=USER) as text_stream:
        final = text_stream.get_final_completion()
    assert final.choices[0].message.content == "The database is slow."


def test_anthropic_streaming_with_tool_use(fake: RunningFakeLLM) -> None:
    client = ant(fake)
    with client.messages.stream(
        model="claude-x",
        max_tokens=100,
        messages=AUSER,
        tools=ANTHROPIC_TOOLS,
    ) as stream:
        kinds = [event.type for event in stream]
        message = stream.get_final_message()
    assert "content_block_delta" in kinds
    assert kinds[-1] == "message_stop"
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "tool_use"
    assert message.content[0].input == {"query": "database", "limit": 5}
    with client.messages.stream(model="claude-x", max_tokens=100, messages=AUSER) as stream:
        text = "".join(stream.text_stream)
    assert text == "The database is slow."


def test_openai_errors_are_the_sdk_types(fake: RunningFakeLLM) -> None:
    client = oai(fake)
    ctl = fake.control
    ctl.inject("rate_limit", endpoint="openai", retry_after="7")
    with pytest.raises(openai.RateLimitError) as rate:
        client.chat.completions.create(model="m", messages=USER)
    assert rate.value.response.headers["retry-after"] == "7"
    ctl.inject("server_error", endpoint="openai")
    with pytest.raises(openai.InternalServerError) as server:
        client.chat.completions.create(model="m", messages=USER)
    assert server.value.status_code == 500
    ctl.inject("unavailable", endpoint="openai")
    with pytest.raises(openai.InternalServerError) as unavailable:
        client.chat.completions.create(model="m", messages=USER)
    assert unavailable.value.status_code == 503
    ctl.inject("auth", endpoint="openai")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="m", messages=USER)
    ctl.inject("hang", endpoint="openai", delay=20)
    with pytest.raises(openai.APITimeoutError):
        oai(fake, timeout=0.5).chat.completions.create(model="m", messages=USER)
    ctl.inject("drop", endpoint="openai")
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=USER)
    # faulted requests consumed no script step: the first step comes now
    ok = client.chat.completions.create(model="m", messages=USER)
    assert ok.choices[0].finish_reason == "tool_calls"
    assert ctl.count("openai") == 7
    fired = ctl.stats()["faults_fired"]
    assert fired["openai:rate_limit"] == 1
    assert fired["openai:hang"] == 1


def test_anthropic_errors_are_the_sdk_types(fake: RunningFakeLLM) -> None:
    client = ant(fake)
    ctl = fake.control
    ctl.inject("overloaded", endpoint="anthropic")
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        client.messages.create(model="c", max_tokens=10, messages=AUSER)
    assert overloaded.value.status_code == 529
    assert isinstance(overloaded.value, anthropic.InternalServerError)
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    ctl.inject("rate_limit", endpoint="anthropic", retry_after="3")
    with pytest.raises(anthropic.RateLimitError) as rate:
        client.messages.create(model="c", max_tokens=10, messages=AUSER)
    assert rate.value.response.headers["retry-after"] == "3"
    ctl.inject("auth", endpoint="anthropic")
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model="c", max_tokens=10, messages=AUSER)
    ctl.inject("unavailable", endpoint="anthropic")
    with pytest.raises(anthropic.ServiceUnavailableError):
        client.messages.create(model="c", max_tokens=10, messages=AUSER)
    ctl.inject("server_error", endpoint="anthropic")
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model="c", max_tokens=10, messages=AUSER)
    ctl.inject("hang", endpoint="anthropic", delay=20)
    with pytest.raises(anthropic.APITimeoutError):
        ant(fake, timeout=0.5).messages.create(model="c", max_tokens=10, messages=AUSER)
    assert ctl.count("anthropic") == 6


def test_dropped_and_malformed_streams_raise(fake: RunningFakeLLM) -> None:
    ctl = fake.control
    ctl.inject("drop", endpoint="openai")
    stream = oai(fake).chat.completions.create(model="m", messages=USER, stream=True)
    with pytest.raises((httpx2.HTTPError, openai.APIError)):
        list(stream)
    ctl.inject("drop", endpoint="anthropic")
    with (
        pytest.raises((httpx2.HTTPError, anthropic.APIError)),
        ant(fake).messages.stream(model="c", max_tokens=10, messages=AUSER) as astream,
    ):
        astream.get_final_message()
    ctl.inject("malformed", endpoint="openai")
    with pytest.raises((json.JSONDecodeError, openai.APIError)):
        oai(fake).chat.completions.create(model="m", messages=USER)


def test_slow_fault_and_rate_and_ttl(fake: RunningFakeLLM) -> None:
    import time

    ctl = fake.control
    ctl.inject("slow", endpoint="openai", delay=0.4)
    started = time.monotonic()
    oai(fake).chat.completions.create(model="m", messages=USER)
    assert time.monotonic() - started >= 0.4
    # rate 1.0 keeps firing until cleared; the other endpoint is untouched
    fault_id = ctl.inject("unavailable", endpoint="anthropic", rate=1.0)
    for _ in range(3):
        with pytest.raises(anthropic.ServiceUnavailableError):
            ant(fake).messages.create(model="c", max_tokens=10, messages=AUSER)
    assert [f["id"] for f in ctl.faults()] == [fault_id]
    assert ctl.clear_faults(fault_id) == 1
    ant(fake).messages.create(model="c", max_tokens=10, messages=AUSER)
    ctl.inject("unavailable", rate=1.0, ttl=0.3)
    time.sleep(0.35)
    assert ctl.faults() == []
    ctl.reset()
    assert ctl.stats()["total"] == 0


def test_rate_fault_fires_a_fraction() -> None:
    fake = FakeLLM(seed=7)
    fake.inject("server_error", endpoint="openai", rate=0.5)
    fired = sum(fake.faults.pick("openai") is not None for _ in range(400))
    assert 140 < fired < 260
    assert fake.faults.pick("anthropic") is None


def test_rules_match_last_message_and_script_file(tmp_path: Path) -> None:
    script = tmp_path / "script.yaml"
    script.write_text(
        "rules:\n"
        "  - match: '(?i)redis'\n"
        "    text: redis is down\n"
        "    times: 1\n"
        "steps:\n"
        "  - text: first turn\n"
        "default: nothing more\n"
    )
    with fakellm_server(script) as fake:
        client = oai(fake)

        def ask(text: str) -> str | None:
            msgs: list[ChatCompletionMessageParam] = [
                {"role": "user", "content": "hello"},
                {"role": "user", "content": text},
            ]
            reply = client.chat.completions.create(model="m", messages=msgs)
            return reply.choices[0].message.content

        assert ask("is REDIS ok?") == "redis is down"
        assert ask("is redis ok?") == "first turn"  # rule used up, the step by turn
        assert ask("anything") == "nothing more"
        fake.control.set_script([{"text": "replaced"}])
        assert ask("x") == "replaced"
        bodies = fake.control.requests("openai")
        assert bodies[0]["body"]["messages"][-1]["content"] == "is REDIS ok?"
        assert "sk-test" not in json.dumps(bodies)  # the bearer key is redacted


def test_bad_scripts_and_bad_faults_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"steps": [{"txt": "typo"}]}')
    with pytest.raises(ScriptError, match="invalid fake LLM script"):
        load_script(bad)
    with pytest.raises(ScriptError, match="invalid regex"):
        Script.parse({"rules": [{"match": "(", "text": "x"}]})
    with pytest.raises(ScriptError, match="cannot read"):
        load_script(tmp_path / "missing.yaml")
    with fakellm_server() as fake:
        response = httpx.post(f"{fake.url}/_control/faults", json={"kind": "explode"})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        response = httpx.post(
            f"{fake.url}/_control/faults", json={"kind": "auth", "times": 1, "rate": 0.5}
        )
        assert response.status_code == 422
        assert "either times" in response.json()["detail"]


def test_api_key_is_checked_when_configured() -> None:
    with fakellm_server(api_key="sk-right") as fake:
        wrong = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model="m", messages=USER)
        right = anthropic.Anthropic(
            base_url=fake.anthropic_base_url, api_key="sk-right", max_retries=0
        )
        reply = right.messages.create(model="c", max_tokens=5, messages=AUSER)
        assert reply.content[0].type == "text"
        models = right.models.list()
        assert "fake-claude" in [m.id for m in models.data]
