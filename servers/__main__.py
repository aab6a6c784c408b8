"""``python -m servers <area> [--transport stdio|sse|http] [--host H] [--port P]``."""

from __future__ import annotations

import argparse

from servers.cli import TRANSPORTS, run_server
from servers.registry import AREAS


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m servers")
    parser.add_argument("area", choices=list(AREAS))
    parser.add_argument("--transport", choices=TRANSPORTS, default="stdio")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    run_server(args.area, args.transport, args.host, args.port)


if __name__ == "__main__":
    main()
