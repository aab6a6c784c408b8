"""Container healthcheck: ``python -m dev3000.healthcheck [--url URL]``.

Exits 0 when ``URL`` (default ``http://127.0.0.1:$DEV3000_PORT/health``) answers 200
within 5 s, 1 otherwise. Standard library only, so the slim image needs no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    url = f"http://127.0.0.1:{os.environ.get('DEV3000_PORT', '3001')}/health"
    if len(args) == 2 and args[0] == "--url":
        url = args[1]
    elif args:
        print("usage: python -m dev3000.healthcheck [--url URL]", file=sys.stderr)
        return 2
    if not url.startswith(("http://", "https://")):
        print(f"unhealthy: not an http(s) URL: {url}", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - http(s) only
            ok = response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    print(("healthy: " if ok else "unhealthy: ") + url)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
