"""What a start of ``dev3000 serve`` / ``dev3000 mcp all`` does not import when it is not
configured (each is a tenth of a second or more of the start-up goal, issue #15 item 2:
``tools/bench/bench_start.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_SERVE = """
import asyncio, sys
from dev3000.app import create_app
from guilde_core.config import get_settings
from guilde_core.observability import setup_observability
setup_observability(get_settings())
app = create_app()
async def life():
    async with app.router.lifespan_context(app):
        pass
asyncio.run(life())
print(sorted({m.split(".")[0] for m in sys.modules} & {"redis", "sentry_sdk", "griffe"}))
"""


def test_an_app_without_redis_sentry_or_docstring_tools_imports_none_of_them(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REDIS_", "SENTRY_", "LOGFIRE_", "DEV3000_", "DIAGNOSTIC_"))}  # fmt: skip
    env.update(DEV3000_DATA_DIR=str(tmp_path / "data"), DEV3000_LOG_PATHS=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", _SERVE], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr[-2000:]
