"""Redaction throughput on log-like input, beside a bare regex scan of the same text.

Run: ``uv run python -m tools.bench.bench_redaction [--kib 256] [--rounds 5]``. Every line
served by the logs server, every tool output and every event goes through ``redact_text``,
so its cost per byte must stay linear and small next to just scanning the text once. Both
alternate for ``--rounds`` rounds per input (``tools.bench.ab``: medians, min–max, spread,
load average).
"""

from __future__ import annotations

import argparse
import functools
import re
import time
from collections.abc import Callable

from guilde_core.redaction import redact_text
from tools.bench import ab

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kib", type=int, default=256, help="size of each sample (KiB)")
    parser.add_argument("--rounds", type=int, default=ab.MIN_ROUNDS)
    args = parser.parse_args()
    size = args.kib * 1024
    scan = re.compile(r"\S+")

    def timed(fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    for name, make in SAMPLES.items():
        text = make(size)[:size]
        load = ab.load_average()
        series = ab.alternate(
            {"redact_text": functools.partial(timed, functools.partial(redact_text, text)),
             "bare regex scan": functools.partial(timed, functools.partial(scan.findall, text))},
            rounds=args.rounds,
        )  # fmt: skip
        ab.report(f"{name}, {len(text):,} characters", series, load_before=load,
                  baseline="bare regex scan")  # fmt: skip
        mbps = len(text) / 1e6 / series["redact_text"].median
        print(f"   redact_text: {mbps:.1f} MB/s (median)")


if __name__ == "__main__":
    main()
