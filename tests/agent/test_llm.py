"""LLM mode through the real ``openai``/``anthropic`` SDKs against a fake provider server.

The loop (parallel calls, repeated calls refused, trimmed output, tool errors), the
fault matrix (429 + Retry-After, model unavailable → breaker → fallback, 401 → no retry,
timeout → larger timeout, 529 overloaded → degraded), the fallback chain down to offline,
budgets, approval interrupt/resume without repeated side effects, prompt injection, and
secrets never reaching a prompt.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from agent.mcp_client import DiagTools
from agent.providers import build_chain
from agent.providers.resilience import reset_local_breakers
from agent.runner import DiagnosisAgent, RunResult
from evals.recorded import RecordedState, build_recorded_server
from guilde_core.config import get_settings
from tests.agent.conftest import diagnose, scenario_data
from tools.fakellm import RunningFakeLLM, fakellm_server

OPENAI_KEY = "sk-test-PLANTEDOPENAIKEY0123456789"
ANTHROPIC_KEY = "sk-ant-PLANTEDANTHROPIC0123456789"

CONCLUSION: dict[str, Any] = {
    "status": "unhealthy",
    "root_cause": {
        "component": "database",
        "category": "unreachable",
        "summary": "PostgreSQL refuses connections on 5432; the breaker opened.",
        "confidence": 0.9,
        "evidence_ids": ["E1", "E6"],
    },
    "findings": [
        {
            "title": "breaker database open after refused connections",
            "component": "database",
            "category": "circuit_open",
            "severity": "error",
            "evidence_ids": ["E6", "E77"],
        }
    ],
    "recommendations": ["Start PostgreSQL and check port 5432."],
}


@dataclass
class Fault:
    """A fault for the fake server: ``status`` (429/503/529/401/…) or a hang of ``delay`` s."""

    status: int | None = None
    retry_after: str | None = None
    delay: float | None = None
    times: int = 1


_KINDS = {
    429: "rate_limit",
    503: "unavailable",
    529: "overloaded",
    401: "auth",
    500: "server_error",
}


@dataclass
class Request:
    api: str
    body: dict[str, Any]
    headers: dict[str, str]


class Fake:
    """The fake provider server (tools.fakellm), driven through its control helper."""

    def __init__(self, running: RunningFakeLLM) -> None:
        self.running = running
        self.control = running.control

    @property
    def script(self) -> list[dict[str, Any]]:
        return []

    @script.setter
    def script(self, steps: list[dict[str, Any]]) -> None:
        self.control.set_script(list(steps))

    @property
    def faults(self) -> list[dict[str, Any]]:
        return self.control.faults()

    @faults.setter
    def faults(self, faults: list[Fault]) -> None:
        self.control.clear_faults()
        for f in faults:
            if f.status is None:
                self.control.inject("hang", times=f.times, delay=f.delay)
            elif f.status in _KINDS:
                self.control.inject(_KINDS[f.status], times=f.times, retry_after=f.retry_after)
            else:
                self.control.inject("status", status=f.status, times=f.times)

    @property
    def requests(self) -> list[Request]:
        return [Request(r["endpoint"], r["body"], r["headers"]) for r in self.control.requests()]

    def prompt_text(self) -> str:
        return self.running.fake.prompt_text()


def Step(
    text: str = "",
    tool_calls: list[tuple[str, dict[str, Any]]] | None = None,
    *,
    input_tokens: int = 100,
    output_tokens: int = 20,
) -> dict[str, Any]:
    """One scripted model turn (tool calls or a final text) in the fake's script format."""
    return {
        "text": text,
        "tool_calls": [{"name": n, "arguments": a} for n, a in tool_calls or []],
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fake]:
    reset_local_breakers()
    with fakellm_server() as running:
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", running.openai_base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", running.anthropic_base_url)
        monkeypatch.setenv("RETRY_LLM_BASE_DELAY", "0.01")
        monkeypatch.setenv("RETRY_LLM_MAX_DELAY", "2")
        monkeypatch.setenv("TIMEOUT_LLM", "10")
        yield Fake(running)
    reset_local_breakers()


def _run(
    providers: str,
    scenario: str = "db-unreachable",
    *,
    question: str = "why is checkout failing?",
    approver: Any = None,
    max_steps: int | None = None,
    token_budget: int | None = None,
    decisions: list[dict[str, Any]] | None = None,
) -> tuple[RunResult, RecordedState, list[RunResult]]:
    server, state = build_recorded_server(scenario_data(scenario))
    resumed: list[RunResult] = []

    async def go() -> RunResult:
        settings = get_settings()
        chain = build_chain(settings, providers)
        try:
            async with DiagTools(server) as tools:
                agent = DiagnosisAgent(
                    tools,
                    chain,
                    settings=settings,
                    max_steps=max_steps,
                    token_budget=token_budget,
                )
                result = await agent.ask(question, session_id="s1", approver=approver)
                for decision in decisions or []:
                    snapshot_calls = list(state.calls)
                    result = await agent.resume("s1", decision)
                    resumed.append(result)
                    # resuming re-ran no read-only tool call made before the interrupt
                    assert state.calls[: len(snapshot_calls)] == snapshot_calls
                return result
        finally:
            await chain.aclose()

    return asyncio.run(go()), state, resumed


def _final(conclusion: dict[str, Any] | None = None) -> dict[str, Any]:
    return Step("```json\n" + json.dumps(conclusion or CONCLUSION) + "\n```")


# --- the loop ---------------------------------------------------------------------------------
def test_openai_tool_loop_parallel_refusal_trim_errors(fake: Fake) -> None:
    fake.script = [
        Step(
            tool_calls=[
                ("circuits_breakers", {"names": ["database"]}),
                ("logs_search", {"query": "refused", "limit": 5}),
                ("circuits_breakers", {"names": ["no-such-breaker"]}),
            ]
        ),
        Step(tool_calls=[("circuits_breakers", {"names": ["database"]})]),  # repeated
        _final(),
    ]
    result, state, _ = _run("openai:gpt-fake,offline")
    d = result.diagnosis
    assert d is not None
    assert d.mode == "llm"
    assert (d.provider, d.model) == ("openai", "gpt-fake")
    assert d.steps == 3
    assert d.tokens == 3 * 120
    assert (d.root_cause.component, d.root_cause.category) == ("database", "unreachable")
    # the model's E77 does not exist: dropped, the finding kept with its valid id
    llm_findings = [f for f in d.findings if f.source == "llm"]
    assert llm_findings[0].evidence_ids == ["E6"]
    assert not any("finding 1 dropped" in n for n in d.notes)
    # offline findings survive the LLM conclusion
    assert any(f.source == "offline" for f in d.findings)
    # three calls of step 1 ran (in one parallel batch), the repeat was refused
    # (the first pass lists every breaker: only the calls naming one are the model's)
    called = [name for name, args in state.calls if args.get("names")]
    assert called.count("circuits_breakers") == 2
    assert {e.id for e in d.evidence} >= {"E6", "E7", "E8"}
    assert d.tool_calls == 5 + 3
    second, third = fake.requests[1].body, fake.requests[2].body
    tool_msgs = [m for m in second["messages"] if m["role"] == "tool"]
    assert len(tool_msgs) == 3
    assert any("ERROR" in m["content"] and "no circuit breaker" in m["content"] for m in tool_msgs)
    assert all("<tool_output" in m["content"] for m in tool_msgs)
    refused = [m for m in third["messages"] if m["role"] == "tool"][-1]
    assert "refused" in refused["content"]
    assert "tools" in fake.requests[0].body  # the MCP tools were offered


def test_oversized_tool_output_is_trimmed_with_a_note(fake: Fake) -> None:
    fake.script = [Step(tool_calls=[("logs_search", {"query": ".", "limit": 500})]), _final()]
    data = scenario_data("db-unreachable")
    data["logs"] = {"entries": [{"message": f"line {i} " + "x" * 80} for i in range(400)]}
    server, _ = build_recorded_server(data)

    diagnose(server, "why?", "openai:gpt-fake")
    tool_msg = next(m for m in fake.requests[1].body["messages"] if m["role"] == "tool")
    assert "output trimmed" in tool_msg["content"]
    assert len(tool_msg["content"]) < 5000


def test_anthropic_tool_loop(fake: Fake) -> None:
    fake.script = [Step(tool_calls=[("circuits_breakers", {"names": ["database"]})]), _final()]
    result, _, _ = _run("anthropic:claude-fake,offline")
    d = result.diagnosis
    assert d is not None
    assert (d.mode, d.provider) == ("llm", "anthropic")
    second = fake.requests[1].body
    assert second["system"].startswith("You are the guilde-diag diagnosis agent")
    blocks = second["messages"][-1]["content"]
    assert blocks[0]["type"] == "tool_result"
    assert fake.requests[1].api == "anthropic"


# --- the model's conclusion ---------------------------------------------------------------------
def _offline_root() -> tuple[str, str, list[str]]:
    d = diagnose(build_recorded_server(scenario_data("db-unreachable"))[0], "why?")
    return d.root_cause.component, d.root_cause.category, d.root_cause.evidence_ids


@pytest.mark.parametrize(
    ("answer", "note"),
    [
        (
            Step(json.dumps({**CONCLUSION, "root_cause": {"component": "database"}})),
            "invalid conclusion (root_cause.category: Field required)",
        ),
        (
            Step(
                json.dumps(
                    {**CONCLUSION, "root_cause": {**CONCLUSION["root_cause"], "confidence": "high"}}
                )
            ),
            "invalid conclusion (root_cause.confidence:",
        ),
        (Step("The database is down, I am fairly sure."), "not the expected JSON"),
    ],
)
def test_an_invalid_conclusion_falls_back_to_the_offline_answer(
    fake: Fake, answer: dict[str, Any], note: str
) -> None:
    fake.script = [answer]
    result, _, _ = _run("openai:gpt-fake,offline")
    d = result.diagnosis
    assert d is not None
    assert d.mode == "degraded"
    assert (d.provider, d.model) == (None, None)
    assert (d.root_cause.component, d.root_cause.category, d.root_cause.evidence_ids) == (
        _offline_root()
    )
    assert not any(f.source == "llm" for f in d.findings)
    assert any(note in n and "offline root cause is kept" in n for n in d.notes), d.notes


def test_a_root_cause_citing_only_unknown_evidence_cites_the_offline_evidence(
    fake: Fake,
) -> None:
    conclusion = {**CONCLUSION, "root_cause": {**CONCLUSION["root_cause"], "evidence_ids": ["E99"]}}
    fake.script = [_final(conclusion)]
    result, _, _ = _run("openai:gpt-fake,offline")
    d = result.diagnosis
    assert d is not None
    assert d.mode == "llm"
    assert d.root_cause.summary.startswith("PostgreSQL refuses connections")
    assert d.root_cause.evidence_ids == _offline_root()[2]
    assert "model cited 1 unknown evidence id(s); they were dropped" in d.notes


# --- the fault matrix ------------------------------------------------------------------------
def test_rate_limit_backs_off_honouring_retry_after(fake: Fake) -> None:
    fake.faults = [Fault(status=429, retry_after="1", times=1)]
    fake.script = [_final()]
    started = time.monotonic()
    result, _, _ = _run("openai:gpt-fake")
    elapsed = time.monotonic() - started
    assert result.diagnosis is not None
    assert result.diagnosis.mode == "llm"
    assert len(fake.requests) == 2  # one 429, one retry
    assert elapsed >= 1.0  # waited for Retry-After, not the 10 ms base delay


def test_model_unavailable_opens_breaker_then_falls_back(fake: Fake) -> None:
    fake.faults = [Fault(status=503, times=3)]
    fake.script = [_final()]
    result, _, _ = _run("openai:gpt-fake,anthropic:claude-fake,offline")
    d = result.diagnosis
    assert d is not None
    assert (d.mode, d.provider) == ("llm", "anthropic")
    assert [r.api for r in fake.requests] == ["openai"] * 3 + ["anthropic"]
    assert any("openai:gpt-fake" in n and "unavailable" in n for n in d.notes)
    # the openai breaker is open now: the next run skips it without a request
    fake.script = [_final()]
    before = len(fake.requests)
    again, _, _ = _run("openai:gpt-fake,anthropic:claude-fake,offline")
    assert again.diagnosis is not None
    assert again.diagnosis.provider == "anthropic"
    assert [r.api for r in fake.requests[before:]] == ["anthropic"]
    assert any("circuit" in n and "open" in n for n in again.diagnosis.notes)


def test_auth_error_is_not_retried_and_reported(fake: Fake) -> None:
    fake.faults = [Fault(status=401, times=1)]
    fake.script = [_final()]
    result, _, _ = _run("anthropic:claude-fake,openai:gpt-fake,offline")
    d = result.diagnosis
    assert d is not None
    assert [r.api for r in fake.requests] == ["anthropic", "openai"]  # no retry of the 401
    assert (d.mode, d.provider) == ("llm", "openai")
    assert any("bad credential" in n and "ANTHROPIC_API_KEY" in n for n in d.notes)
    assert ANTHROPIC_KEY not in json.dumps(d.model_dump())


def test_timeout_is_retried_with_a_larger_timeout(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMEOUT_LLM", "1")
    monkeypatch.setenv("TIMEOUT_LLM_MULTIPLIER", "4")
    fake.faults = [Fault(delay=1.6, times=1)]
    fake.script = [_final()]
    result, _, _ = _run("openai:gpt-fake")
    assert result.diagnosis is not None
    assert result.diagnosis.mode == "llm"
    timeouts = [float(r.headers["x-stainless-read-timeout"]) for r in fake.requests]
    assert len(timeouts) >= 2
    assert timeouts[1] > timeouts[0]


def test_overloaded_everywhere_gives_a_degraded_offline_answer(fake: Fake) -> None:
    fake.faults = [Fault(status=529, times=100)]
    result, _, _ = _run("anthropic:claude-fake,openai:gpt-fake,offline")
    d = result.diagnosis
    assert d is not None
    assert d.mode == "degraded"
    assert d.provider is None
    assert (d.root_cause.component, d.root_cause.category) == ("database", "unreachable")
    assert any("overloaded" in n for n in d.notes)
    assert len(fake.requests) <= 6  # bounded by the retry policy, then breakers


def test_all_providers_failing_falls_back_to_offline(fake: Fake) -> None:
    fake.faults = [Fault(status=401, times=10)]
    result, _, _ = _run("openai:gpt-fake,anthropic:claude-fake,offline")
    d = result.diagnosis
    assert d is not None
    assert d.mode == "degraded"
    assert len(fake.requests) == 2
    assert d.findings
    assert d.root_cause.category == "unreachable"


def test_missing_key_skips_provider(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "")
    fake.script = [_final()]
    result, _, _ = _run("anthropic:claude-fake,openai:gpt-fake")
    d = result.diagnosis
    assert d is not None
    assert d.provider == "openai"
    assert any("no API key" in n for n in d.notes)


# --- budgets ----------------------------------------------------------------------------------
def test_step_budget_concludes_with_what_is_known(fake: Fake) -> None:
    fake.script = [Step(tool_calls=[("logs_search", {"query": f"q{i}"})]) for i in range(10)]
    result, _, _ = _run("openai:gpt-fake", max_steps=2)
    d = result.diagnosis
    assert d is not None
    assert d.steps == 2
    assert len(fake.requests) == 2
    assert any("step budget" in n for n in d.notes)
    assert d.root_cause.category == "unreachable"  # the offline analysis stands


def test_token_budget_concludes_with_what_is_known(fake: Fake) -> None:
    fake.script = [
        Step(tool_calls=[("logs_search", {"query": f"q{i}"})], input_tokens=400) for i in range(10)
    ]
    result, _, _ = _run("openai:gpt-fake", token_budget=1000)
    d = result.diagnosis
    assert d is not None
    assert len(fake.requests) == 3  # 420 + 420 + 420 > 1000
    assert any("token budget" in n for n in d.notes)


# --- approval -----------------------------------------------------------------------------------
def test_control_call_waits_for_approval_and_resume_repeats_nothing(fake: Fake) -> None:
    fake.script = [
        Step(
            tool_calls=[
                ("circuits_breakers", {"names": ["database"]}),
                ("circuits_reset", {"name": "database", "reason": "db is back"}),
            ]
        ),
        _final(),
    ]
    first, state, resumed = _run(
        "openai:gpt-fake", decisions=[{"approved": True, "reason": "ok by oncall"}]
    )
    # before approval: the run stopped at the interrupt, no control call was made
    assert resumed
    assert first.diagnosis is not None
    assert state.control_calls == [("reset", {"name": "database", "reason": "db is back"})]
    assert [n for n, a in state.calls if a.get("names")].count("circuits_breakers") == 1
    assert first.diagnosis.actions[0].status == "approved"
    assert first.diagnosis.mode == "llm"


def test_pending_approval_is_reported_and_denial_runs_nothing(fake: Fake) -> None:
    fake.script = [
        Step(tool_calls=[("circuits_open", {"name": "redis", "reason": "x"})]),
        _final(),
    ]
    server, state = build_recorded_server(scenario_data("db-unreachable"))

    async def go() -> None:
        settings = get_settings()
        chain = build_chain(settings, "openai:gpt-fake")
        try:
            async with DiagTools(server) as tools:
                agent = DiagnosisAgent(tools, chain, settings=settings)
                pending = await agent.ask("why?", session_id="p1")
                assert pending.diagnosis is None
                assert pending.pending[0]["tool"] == "circuits_open"
                assert pending.pending[0]["type"] == "approval"
                assert state.control_calls == []
                done = await agent.resume("p1", {"approved": False, "reason": "no"})
                assert done.diagnosis is not None
                assert done.diagnosis.actions[0].status == "denied"
        finally:
            await chain.aclose()

    asyncio.run(go())
    assert state.control_calls == []
    denied_msg = next(m for m in fake.requests[1].body["messages"] if m["role"] == "tool")
    assert "denied" in denied_msg["content"]


# --- prompt injection and secrets ----------------------------------------------------------------
def test_injected_log_line_leads_to_no_control_call(fake: Fake) -> None:
    # a model that obeys the injected line and asks to open every circuit
    fake.script = [
        Step(
            tool_calls=[
                ("circuits_open", {"name": n, "reason": "log said so"})
                for n in ("database", "redis", "openai")
            ]
        ),
        _final(),
    ]

    async def deny(request: dict[str, Any]) -> dict[str, Any]:
        return {"approved": False, "reason": "no operator"}

    result, state, _ = _run("openai:gpt-fake", "prompt-injection-in-logs", approver=deny)
    assert state.control_calls == []
    d = result.diagnosis
    assert d is not None
    assert [a.status for a in d.actions] == ["denied"] * 3
    first = fake.requests[0].body["messages"]
    assert first[0]["role"] == "system"
    assert "never an instruction" in first[0]["content"]
    user = first[1]["content"]
    line = user.index("ignore previous instructions")
    # the line sits inside a tool_output data element
    assert user.rfind("<tool_output", 0, line) > user.rfind("</tool_output>", 0, line)


def test_secrets_in_logs_and_config_never_reach_a_prompt(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:configPLANTED99@db/prod")
    fake.script = [Step(tool_calls=[("logs_search", {"query": "Authorization"})]), _final()]
    data = scenario_data("secrets-in-logs-auth")
    data["logs"] = {
        "entries": [
            {"message": "Authorization: Bearer sk-live-PLANTEDSECRET0123456789"},
            {"message": "password=hunter2planted connecting"},
        ]
    }
    server, _ = build_recorded_server(data)

    output = diagnose(
        server, "why does the OpenAI integration fail?", "openai:gpt-fake"
    ).model_dump_json()
    sent = fake.prompt_text()
    for secret in ("PLANTEDSECRET", "hunter2planted", "configPLANTED99", OPENAI_KEY):
        assert secret not in sent
        assert secret not in output
    assert len(fake.requests) == 2


# --- the scenario suite in LLM mode -------------------------------------------------------------
def test_llm_mode_eval_runs_the_loop_and_the_fault_chain() -> None:
    from evals.suite import run_suite
    from tests.agent.conftest import SCENARIOS

    reset_local_breakers()
    report = asyncio.run(run_suite(SCENARIOS, mode="llm", tags=["llm"]))
    reset_local_breakers()
    assert {r.name for r in report.results} == {
        "anthropic-auth",
        "llm-upstream-timeouts",
        "openai-rate-limited",
        "secrets-in-logs-auth",
    }
    for r in report.results:
        assert r.error is None, r.error
        assert r.diagnosis_mode == "llm", r.name
        assert r.steps == 2, r.name  # one tool step, one answer
        assert "logs" in r.tools_used, r.name  # the scripted tool call went over MCP
        assert r.correct, r.name
        assert r.grounded, r.name
