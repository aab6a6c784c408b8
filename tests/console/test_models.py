"""Parsing of dev3000 payloads: tolerant, typed, redacted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from console.models import (
    level_rank,
    normalise_status,
    parse_circuits,
    parse_deep_health,
    parse_event,
    parse_log_line,
    parse_targets,
    parse_ts,
)
from guilde_core.redaction import MASK


def test_deep_health_flattens_nested_groups_and_redacts() -> None:
    report = parse_deep_health(
        {
            "status": "degraded",
            "checks": {
                "database": {"status": "healthy", "latency_ms": 5.2, "pool": {"size": 5}},
                "external_apis": {
                    "openai": {"status": "degraded", "circuit_state": "half-open"},
                    "anthropic": {"status": "healthy", "api_key": "sk-abcdefghijklmnop1234"},
                },
                "observability": {},
            },
            "metrics": {"error_rate_percent": 2.5},
        }
    )
    assert report.status == "degraded"
    assert [c.name for c in report.checks] == [
        "database",
        "external_apis/openai",
        "external_apis/anthropic",
    ]
    db = report.check("database")
    assert db is not None
    assert db.latency_ms == 5.2
    assert db.details["pool"] == {"size": 5}
    anthropic = report.check("external_apis/anthropic")
    assert anthropic is not None
    assert anthropic.details["api_key"] == MASK
    assert anthropic.group == "external_apis"
    assert report.error_rate_percent == 2.5


def test_deep_health_garbage_is_unknown_not_an_error() -> None:
    assert parse_deep_health("nope").status == "unknown"
    assert parse_deep_health({"status": "weird", "checks": [{"name": "x"}]}).checks[0].status == (
        "unknown"
    )
    assert normalise_status("OK") == "healthy"
    assert normalise_status("down") == "unhealthy"


def test_circuits_countdown_to_half_open() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    (circuit,) = parse_circuits(
        {
            "circuits": [
                {
                    "name": "openai",
                    "state": "OPEN",
                    "failure_count": 3,
                    "retry_at": (now + timedelta(seconds=42)).isoformat(),
                    "last_failure": "2026-01-01T00:00:00Z",
                }
            ]
        }
    )
    assert circuit.state == "open"
    assert circuit.failure_count == 3
    assert circuit.seconds_to_half_open(now) == 42
    assert circuit.seconds_to_half_open(now + timedelta(minutes=5)) == 0
    (closed,) = parse_circuits([{"name": "x", "state": "half_open"}])
    assert closed.state == "half-open"
    assert closed.seconds_to_half_open(now) is None


def test_targets_take_status_from_last_check() -> None:
    (target,) = parse_targets(
        {
            "items": [
                {
                    "name": "orders",
                    "kind": "http",
                    "url": "http://user:hunter2@orders:8000",
                    "last_check": {"status": "unhealthy", "latency_ms": 12},
                }
            ]
        }
    )
    assert target.status == "unhealthy"
    assert target.latency_ms == 12
    assert "hunter2" not in target.url


def test_event_and_log_line_parsing() -> None:
    event = parse_event(
        {
            "id": "1",
            "ts": "2026-01-01T10:00:00Z",
            "source": "circuits",
            "kind": "circuit_transition",
            "severity": "WARNING",
            "subject": "openai",
            "summary": "token=abc123secret leaked",
            "data": {"password": "x"},
        }
    )
    assert event is not None
    assert event.severity == "warning"
    assert "abc123secret" not in event.summary
    assert event.data["password"] == MASK
    line = parse_log_line(
        {"ts": 1767261600, "source": "app", "level": "WARN", "message": '{"a": 1}'}
    )
    assert line is not None
    assert line.level == "warn"
    assert line.rank == level_rank("warning")
    assert line.ts == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert line.json == {"a": 1}
    assert line.pretty() == ["{", '  "a": 1', "}"]
    assert parse_ts("not a time") is None
