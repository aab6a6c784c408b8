"""``python -m tools.fakellm [--port N] [--script FILE] [--api-key KEY]`` — serve the fake
providers (with ``--api-key`` or ``FAKELLM_API_KEY``, requests with another key are answered
401; the variable keeps the key out of the process list)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tools.fakellm.script import ScriptError

__all__ = ["main", "serve"]


def serve(
    *,
    port: int,
    host: str = "127.0.0.1",
    script: Path | None = None,
    api_key: str | None = None,
) -> None:
    import uvicorn

    from tools.fakellm.app import FakeLLM

    fake = FakeLLM(script, api_key=api_key)
    uvicorn.run(
        fake.app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fakellm")
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--script", type=Path)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("FAKELLM_API_KEY") or None,
        help="Accept only this key (401 for any other); default $FAKELLM_API_KEY.",
    )
    args = parser.parse_args(argv)
    try:
        serve(port=args.port, script=args.script, api_key=args.api_key)
    except ScriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
