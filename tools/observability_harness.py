"""A real Prometheus and a real Alertmanager on loopback, for tests and local trials.

Both are the Debian packages' binaries (``prometheus``, ``prometheus-alertmanager``), each
on a free port with its configuration and storage in a temporary directory of its own, run
under ``timeout`` so they stop by themselves even if the test process dies (``lifetime``
seconds), and stopped (process group included) when the ``with`` block ends::

    with PrometheusServer(scrape={"backend": sandbox_url}, rule_files=[rules]) as prom:
        prom.wait_for_scrape("backend")
        httpx.get(prom.url + "/api/v1/query", params={"query": "up"})

    with AlertmanagerServer(webhook_url=dev3000 + "/api/v1/alerts", bearer=key) as am:
        am.post_alerts([{"labels": {"alertname": "X"}}])
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
import yaml

from tools.harness import ManagedProcess, free_port, wait_until

__all__ = [
    "AlertmanagerServer",
    "PrometheusServer",
    "alertmanager_binary",
    "prometheus_binary",
    "promtool_binary",
    "resolve_after",
]


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def promtool_binary() -> str | None:
    return shutil.which("promtool")


def alertmanager_binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


class _Daemon:
    """A binary under ``timeout <lifetime>`` in a temp dir; subclasses write its config."""

    name = "daemon"

    def __init__(self, *, lifetime: float = 600.0) -> None:
        self.port = free_port()
        self.lifetime = lifetime
        self.dir = Path(tempfile.mkdtemp(prefix=f"guilde-{self.name}-"))
        self.log = self.dir / f"{self.name}.log"
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready_path(self) -> str:
        return "/-/ready"

    def start(self, timeout: float = 30.0) -> Self:
        argv = ["timeout", "-s", "TERM", "-k", "5", str(int(self.lifetime)), *self.argv()]
        handle = self.log.open("wb")
        self.process = ManagedProcess(argv, stdout=handle, stderr=handle, cwd=self.dir).start()
        handle.close()

        deadline = time.monotonic() + timeout
        while True:
            if not self.process.alive():
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"{self.name} exited at start: {tail}")
            try:
                if httpx.get(self.url + self.ready_path(), timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise TimeoutError(f"{self.name} not ready within {timeout} s: {tail}")
            time.sleep(0.1)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PrometheusServer(_Daemon):
    """Prometheus scraping ``scrape`` (job → base URL; ``/metrics`` is scraped) every
    ``interval``, evaluating ``rule_files`` as often, alerting to ``alertmanager`` (a URL)."""

    name = "prometheus"

    def __init__(
        self,
        *,
        scrape: Mapping[str, str] = {},
        rule_files: Sequence[Path] = (),
        alertmanager: str | None = None,
        interval: str = "1s",
        lifetime: float = 600.0,
    ) -> None:
        super().__init__(lifetime=lifetime)
        rules = []
        for i, path in enumerate(rule_files):
            copy = self.dir / f"rules{i}.yml"
            copy.write_text(Path(path).read_text(encoding="utf-8"), encoding="utf-8")
            rules.append(str(copy))
        config: dict[str, Any] = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": rules,
            "scrape_configs": [
                {
                    "job_name": job,
                    "metrics_path": "/metrics",
                    "scheme": urlsplit(url).scheme or "http",
                    "static_configs": [{"targets": [urlsplit(url).netloc]}],
                }
                for job, url in scrape.items()
            ],
        }
        if alertmanager:
            config["alerting"] = {
                "alertmanagers": [
                    {"static_configs": [{"targets": [urlsplit(alertmanager).netloc]}]}
                ]
            }
        self.config = self.dir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")

    def argv(self) -> list[str]:
        binary = prometheus_binary()
        assert binary, "prometheus is not installed (apt-get install prometheus)"
        return [
            binary,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ]

    def api(self, path: str, **params: Any) -> Any:
        body = httpx.get(self.url + path, params=params, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]

    def wait_for_scrape(self, job: str, timeout: float = 30.0) -> None:
        """Until the targets of ``job`` have been scraped successfully."""

        def up() -> bool:
            result = self.api("/api/v1/query", query=f'up{{job="{job}"}}')["result"]
            return bool(result) and all(r["value"][1] == "1" for r in result)

        wait_until(up, timeout=timeout, interval=0.3)

    def alerts(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api("/api/v1/alerts")["alerts"]
        return found


class AlertmanagerServer(_Daemon):
    """Alertmanager routing every alert to ``webhook_url`` (with ``bearer`` as its
    Authorization), grouping by alert name, waiting ``group_wait`` before the first
    notification; clustering off (no gossip port)."""

    name = "alertmanager"

    def __init__(
        self,
        *,
        webhook_url: str,
        bearer: str | None = None,
        group_wait: str = "1s",
        group_interval: str = "2s",
        repeat_interval: str = "1h",
        lifetime: float = 600.0,
    ) -> None:
        super().__init__(lifetime=lifetime)
        receiver: dict[str, Any] = {"url": webhook_url, "send_resolved": True}
        if bearer:
            (self.dir / "bearer").write_text(bearer, encoding="utf-8")
            self.dir.joinpath("bearer").chmod(0o600)
            receiver["http_config"] = {
                "authorization": {"type": "Bearer", "credentials_file": str(self.dir / "bearer")}
            }
        config = {
            "route": {
                "receiver": "dev3000",
                "group_by": ["alertname"],
                "group_wait": group_wait,
                "group_interval": group_interval,
                "repeat_interval": repeat_interval,
            },
            "receivers": [{"name": "dev3000", "webhook_configs": [receiver]}],
        }
        self.config = self.dir / "alertmanager.yml"
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")

    def argv(self) -> list[str]:
        binary = alertmanager_binary()
        assert binary, "alertmanager is not installed (apt-get install prometheus-alertmanager)"
        return [
            binary,
            f"--config.file={self.config}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts to Alertmanager as Prometheus would (``POST /api/v2/alerts``)."""
        response = httpx.post(self.url + "/api/v2/alerts", json=alerts, timeout=10)
        response.raise_for_status()


def resolve_after(alert: dict[str, Any], seconds: float = 0.0) -> dict[str, Any]:
    """``alert`` with ``endsAt`` set ``seconds`` from now (resolved once it passes)."""
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
    return {**alert, "endsAt": ends}
