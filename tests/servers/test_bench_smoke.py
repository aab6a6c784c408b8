"""The servers benchmark runs end to end at minimal sizes (figures are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench" / "bench_servers.py"


def test_bench_servers_runs_at_minimal_sizes(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--tail-sizes", "1", "--search-size", "1",
         "--targets", "2", "--timeout", "0.3", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=90, check=True,
    )  # fmt: skip
    assert "tail -n 1000" in out.stdout
    assert "grep -c" in out.stdout
    assert "one hanging" in out.stdout
    assert list(tmp_path.iterdir()) == []  # generated files removed
