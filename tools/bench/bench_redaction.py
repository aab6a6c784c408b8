"""Redaction throughput on log-like input, beside a bare regex scan of the same text.

Run: ``uv run python -m tools.bench.bench_redaction [--kib 256]``. Every line served by the
logs server, every tool output and every event goes through ``redact_text``, so its cost per
byte must stay linear and small next to just scanning the text once.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable

from guilde_core.redaction import redact_text

SAMPLES: dict[str, Callable[[int], str]] = {
    "log lines": lambda n: (
        (
            '{"ts":"2026-11-23T10:00:00Z","level":"info","msg":"GET /api/v1/orders 200",'
            '"request_id":"4f1c2b","latency_ms":12.5}\n'
        )
        * (n // 110 + 1)
    ),
    "long token": lambda n: "a" * n,
    "dotted": lambda n: ".".join(["abc"] * (n // 4 + 1)),
    "with secrets": lambda n: (
        "user=bob password=hunter2 url=postgresql://u:pw@db/x " * (n // 50 + 1)
    ),
}


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kib", type=int, default=256, help="size of each sample (KiB)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size = args.kib * 1024
    scan = re.compile(r"\S+")
    print(f"{'input':<14}{'size':>10}{'redact MB/s':>14}{'bare scan MB/s':>16}{'ratio':>8}")
    for name, make in SAMPLES.items():
        text = make(size)[:size]
        mb = len(text) / 1e6
        t_redact = _best(lambda t=text: redact_text(t), args.repeat)  # type: ignore[misc]
        t_scan = _best(lambda t=text: scan.findall(t), args.repeat)  # type: ignore[misc]
        print(
            f"{name:<14}{len(text):>10}{mb / t_redact:>14.1f}{mb / t_scan:>16.1f}"
            f"{t_redact / t_scan:>8.1f}x"
        )


if __name__ == "__main__":
    main()
