"""``GET /api/v1/logs/search`` over real log files: filters, regex, paging, redaction."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient


def _write_logs(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(12):
        level = "error" if i % 3 == 0 else "info"
        lines.append(
            json.dumps(
                {
                    "timestamp": f"2026-01-22T10:{i:02d}:00Z",
                    "level": level,
                    "message": f"order {i} processed token=sk-live-abcdefghijklmnopqrstuvwx",
                }
            )
        )
    (root / "app.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "other.log").write_text(
        '{"timestamp": "2026-01-22T11:00:00Z", "level": "error", "message": "order 99 failed"}\n',
        encoding="utf-8",
    )


def test_search_filters_pages_and_redacts(make_app: Callable[..., FastAPI], tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    _write_logs(logs)
    with TestClient(make_app(dev3000_log_paths=[str(logs)])) as client:
        r = client.get("/api/v1/logs/search", params={"q": "order", "limit": 5})
        assert r.status_code == 200
        body = r.json()
        assert len(body["items"]) == 5
        assert body["next_offset"] == 5
        assert "sk-live-abcdef" not in r.text
        page2 = client.get("/api/v1/logs/search", params={"q": "order", "limit": 5, "offset": 5})
        first = {(i["source"], i["line"]) for i in body["items"]}
        second = {(i["source"], i["line"]) for i in page2.json()["items"]}
        assert first.isdisjoint(second)

        errors = client.get("/api/v1/logs/search", params={"q": "order", "level": "error"}).json()
        assert {i["level"] for i in errors["items"]} == {"error"}
        assert len(errors["items"]) == 5  # 4 in app.log + 1 in other.log
        assert errors["next_offset"] is None

        only_other = client.get(
            "/api/v1/logs/search", params={"q": "order", "sources": "other.log"}
        ).json()
        assert [i["message"] for i in only_other["items"]] == ["order 99 failed"]

        rx = client.get("/api/v1/logs/search", params={"q": r"order (3|6) ", "regex": "true"})
        assert sorted(i["line"] for i in rx.json()["items"]) == [4, 7]

        bad = client.get("/api/v1/logs/search", params={"q": "x", "level": "loud"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "query.level"
        missing = client.get("/api/v1/logs/search")
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["field"] == "query.q"
