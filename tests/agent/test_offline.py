"""Offline engine: gather over MCP (in-process), analyzers, the scenario suite (≥ 90%), live
against the sandbox with its chaos faults, and its recordings replayed."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.models import CATEGORIES
from evals.recorded import build_recorded_server
from evals.scenario import load_scenarios
from evals.suite import run_suite
from tests.agent.conftest import SCENARIOS, diagnose, scenario_data
from tools.harness import wait_until


def test_suite_has_40_scenarios_covering_every_category_and_the_issue_cases() -> None:
    scenarios = load_scenarios(SCENARIOS)
    assert len(scenarios) >= 40
    categories = {s.expect.category for s in scenarios}
    assert categories == set(CATEGORIES)
    tags = [t for s in scenarios for t in s.tags]
    for tag in ("red-herring", "multi-step", "two-faults", "absent-optional", "symptom"):
        assert tag in tags, tag
    assert sum(s.expect.category == "unknown" for s in scenarios) >= 4  # healthy stacks
    assert any(s.question == "is everything ok?" for s in scenarios)
    assert all(s.paraphrases for s in scenarios)  # each question in other words too


@dataclass(frozen=True)
class LiveRunIds:
    """The id the live run's schemas and keys carry (see :func:`evals.live.live_environment`)."""

    run_id: str

    @property
    def schemas(self) -> str:
        return f"live\\_{self.run_id}\\_%"

    @property
    def keys(self) -> str:
        return f"live-scenario:{self.run_id}:*"


@pytest.fixture
def live_services(
    monkeypatch: pytest.MonkeyPatch, pg_dsn: str, redis_url: str
) -> Iterator[LiveRunIds]:
    """The live suite's sandbox on the machine's real PostgreSQL and Redis; afterwards none of
    THIS run's schemas or Redis keys, and no temporary directory, thread or fault, may be
    left behind (another run's leftovers, on a shared database, are not this test's)."""
    import psycopg
    import redis

    monkeypatch.setenv("SANDBOX_DATABASE_URL", pg_dsn)
    monkeypatch.setenv("SANDBOX_REDIS_URL", redis_url)
    threads = threading.active_count()
    temp_before = set(Path(tempfile.gettempdir()).glob("live-scenario-*"))

    def environ() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}

    before = environ()
    ids = LiveRunIds(uuid.uuid4().hex[:10])
    yield ids
    assert environ() == before  # dev3000's settings restored
    client = redis.Redis.from_url(redis_url)
    try:
        assert not list(client.scan_iter(match=ids.keys, count=1000))
    finally:
        client.close()
    with psycopg.connect(pg_dsn) as conn:
        left = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (ids.schemas,)
        ).fetchall()
    assert left == []
    assert set(Path(tempfile.gettempdir()).glob("live-scenario-*")) <= temp_before
    wait_until(lambda: threading.active_count() <= threads, timeout=10)
    from guilde_core.resilience import get_registry

    assert get_registry().names() == []  # the breakers of the last scenario are forgotten


def test_live_run_ids_are_this_runs_only(pg_dsn: str, redis_url: str) -> None:
    """The leftover check looks at this run's names: another run's schema does not match."""
    import psycopg

    from evals.live import live_environment

    ids = LiveRunIds(uuid.uuid4().hex[:10])
    other = f"live_{uuid.uuid4().hex[:12]}"  # what an older run named its schemas
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{other}"')
        try:
            matched = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (ids.schemas,)
            ).fetchall()
        finally:
            conn.execute(f'DROP SCHEMA "{other}" CASCADE')
    assert matched == []
    with live_environment(ids.run_id) as env:
        assert env.schema_prefix == f"live_{ids.run_id}_"
        assert env.key_prefix == f"live-scenario:{ids.run_id}:"


@pytest.mark.timeout(900)  # 168 live diagnoses: minutes on a 2-CPU box, more when it is loaded
def test_offline_suite_in_both_setups(live_services: LiveRunIds) -> None:
    """Every scenario live — the sandbox with its chaos faults, dev3000's aggregate — in the
    demo's setup and in dev3000's clean defaults, each question and its paraphrase: at least
    95% component and category in each setup, every healthy stack answered healthy, every
    cited evidence id resolving."""
    report = asyncio.run(run_suite(SCENARIOS, mode="offline", run_id=live_services.run_id))
    failures = [
        (r.name, r.setup, r.got_component, r.got_category, r.error)
        for r in report.results
        if not r.correct
    ]
    scenarios = load_scenarios(SCENARIOS)
    asked = sum(1 + len(s.paraphrases) for s in scenarios)
    assert len(report.results) == 2 * asked
    assert all(r.source == "live" for r in report.results)
    assert [x.setup for x in report.setups] == ["demo", "clean"]
    for setup in report.setups:
        assert setup.scenarios == asked
        assert setup.accuracy >= 0.95, (setup, failures)
        assert setup.healthy == 1.0, (setup, failures)
        assert setup.citations == 1.0
        assert setup.grounding >= 0.9
    assert all(r.diagnosis_mode == "offline" for r in report.results)
    # every scenario used the first pass's tools, over MCP
    assert all(r.tool_calls >= 5 for r in report.results)
    tags = {t.tag: t for t in report.tags}
    assert tags["red-herring"].accuracy == 1.0
    assert tags["multi-step"].accuracy == 1.0
    assert tags["two-faults"].accuracy >= 0.95
    assert tags["absent-optional"].accuracy == 1.0


def test_recorded_suite_replays_the_live_captures() -> None:
    """The recordings (captured from live runs) replay to the same diagnoses, offline."""
    scenarios = load_scenarios(SCENARIOS)
    assert all(s.recorded.get("captured_at") for s in scenarios)  # none hand-written
    report = asyncio.run(run_suite(SCENARIOS, mode="offline", source="recorded"))
    assert all(r.source == "recorded" for r in report.results)
    failures = [(r.name, r.got_component, r.got_category, r.error) for r in report.results]
    assert report.accuracy >= 0.9, failures
    tags = {t.tag: t for t in report.tags}
    assert tags["red-herring"].accuracy == 1.0
    assert tags["multi-step"].accuracy == 1.0


def test_multi_step_chain_names_the_pool_not_the_breaker() -> None:
    server, state = build_recorded_server(scenario_data("pool-exhausted-chain"))

    d = diagnose(server, "why is checkout failing?")
    assert (d.root_cause.component, d.root_cause.category) == (
        "database",
        "resource_exhaustion",
    )
    # the chain is explained: the breaker finding is cited in the root cause
    categories = {f.category for f in d.findings}
    assert {"resource_exhaustion", "circuit_open"} <= categories
    assert len(d.root_cause.evidence_ids) >= 2
    assert d.mode == "offline"
    assert d.steps == 0
    # the gather pass ran in parallel over MCP: one call per role
    assert sorted(name for name, _ in state.calls) == sorted(
        [
            "health_topology",
            "health_deep_health",
            "health_check_health",
            "circuits_list_breakers",
            "logs_error_groups",
            "timeline_recent",
        ]
    )


def test_tool_error_becomes_error_evidence_and_analysis_survives() -> None:
    data = scenario_data("db-unreachable")
    data["errors"] = {"error": "log source unreadable: permission denied"}
    server, _ = build_recorded_server(data)

    d = diagnose(server, "why is checkout failing?")
    errors = [e for e in d.evidence if e.error]
    assert len(errors) == 1
    assert "permission denied" in errors[0].excerpt
    assert d.root_cause.category == "unreachable"


def test_planted_secrets_never_reach_the_output() -> None:
    """The recording is redacted already (the logs server redacts what it serves), so the
    planted line goes back in raw — as a log source that did not redact would serve it."""
    (scenario,) = [s for s in load_scenarios(SCENARIOS) if s.name == "secrets-in-logs-auth"]
    planted = str(scenario.setup[0]["log"]["lines"][0]["message"])
    assert "PLANTEDSECRET" in planted
    assert "hunter2planted" in planted
    data = scenario_data("secrets-in-logs-auth")
    data["errors"]["groups"].insert(
        0,
        {
            "fingerprint": planted,
            "count": 9,
            "sources": ["billing.jsonl"],
            "sample": {"level": "error", "logger": "billing.sync", "message": planted},
        },
    )
    server, _ = build_recorded_server(data)

    out = diagnose(server, "why does the OpenAI integration fail?").model_dump_json()
    assert "Incorrect API key provided" in out  # the line reached the diagnosis, masked
    assert "PLANTEDSECRET" not in out
    assert "hunter2planted" not in out
    assert "upstream_auth" in out


def test_empty_server_gives_unknown_not_a_crash() -> None:
    from fastmcp import FastMCP

    d = diagnose(FastMCP("empty"), "anything wrong?")
    assert d.root_cause.category == "unknown"
    assert d.evidence == []


def test_tag_filter_and_healthy_system_invents_no_cause(live_services: LiveRunIds) -> None:
    report = asyncio.run(
        run_suite(SCENARIOS, tags=["unknown"], setups=["clean"], run_id=live_services.run_id)
    )
    assert [r.name for r in report.results] == ["healthy-system", "healthy-system~1"]
    for result in report.results:
        assert (result.source, result.setup) == ("live", "clean")
        assert result.got_category == "unknown"
        assert result.correct
        assert result.no_false_claims


def test_record_writes_a_scrubbed_live_capture(live_services: LiveRunIds, tmp_path: Path) -> None:
    """``--record`` writes what the tools answered in the live run, without this run's
    paths or ports, and the recording replays to the same diagnosis."""
    import shutil

    import yaml

    shutil.copytree(SCENARIOS / "db-unreachable", tmp_path / "db-unreachable")
    path = tmp_path / "db-unreachable" / "scenario.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw.pop("recorded")
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    live = asyncio.run(run_suite(tmp_path, record=True, run_id=live_services.run_id))
    # the question and its paraphrase, in the demo setup (recorded) and the clean one
    assert [(r.setup, r.correct) for r in live.results] == [
        ("demo", True), ("demo", True), ("clean", True), ("clean", True),
    ]  # fmt: skip
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# recorded: tool outputs captured from a live run")
    assert tempfile.gettempdir() + "/" not in text
    assert "live-scenario-" not in text
    recorded = yaml.safe_load(text)["recorded"]
    assert {"topology", "checks", "circuits", "errors", "timeline", "logs"} <= set(recorded)
    assert "refused" in json.dumps(recorded["circuits"])
    replay = asyncio.run(run_suite(tmp_path, source="recorded"))
    assert [(r.source, r.correct) for r in replay.results] == [("recorded", True)] * 2
    with pytest.raises(ValueError, match="--source live"):
        asyncio.run(run_suite(tmp_path, source="recorded", record=True))


def test_eval_command_sources() -> None:
    """``dev3000 eval --source recorded`` replays; a bad source or ``--record`` on
    recordings is refused before anything runs."""
    from typer.testing import CliRunner

    from guilde_diag.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["eval", "--source", "recorded", "--tags", "multi-step", "--json"])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.output[ok.output.index("{") :])
    assert {r["source"] for r in report["results"]} == {"recorded"}
    assert len(report["results"]) == 6  # three scenarios, each question and its paraphrase
    assert report["accuracy"] == 1.0
    bad = runner.invoke(app, ["eval", "--source", "replay"])
    assert bad.exit_code == 2
    assert "--source must be live or recorded" in bad.output
    refused = runner.invoke(app, ["eval", "--source", "recorded", "--record"])
    assert refused.exit_code == 2
