"""``python -m tools.sandbox [--port N]`` — serve the sandbox on loopback (settings from
``SANDBOX_*`` variables; see :class:`tools.sandbox.config.SandboxConfig`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guilde_core.errors import ConfigurationError

__all__ = ["main", "serve"]


def serve(
    *,
    port: int,
    host: str = "127.0.0.1",
    logs_dir: Path | None = None,
    token_file: Path | None = None,
    llm_base_url: str | None = None,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> None:
    import uvicorn

    from tools.sandbox import SandboxConfig, create_app

    config = SandboxConfig.from_env(
        logs_dir=logs_dir,
        chaos_token_file=token_file,
        llm_base_url=llm_base_url,
        database_url=database_url,
        redis_url=redis_url,
    )
    app = create_app(config)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=3,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.sandbox")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--logs-dir", type=Path)
    parser.add_argument("--token-file", type=Path)
    parser.add_argument("--llm-base-url")
    args = parser.parse_args(argv)
    try:
        serve(
            port=args.port,
            logs_dir=args.logs_dir,
            token_file=args.token_file,
            llm_base_url=args.llm_base_url,
        )
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
