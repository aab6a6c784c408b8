"""The A/B helper every benchmark in ``tools/bench/`` uses, so its figures survive a loaded
machine: variants are measured *alternately* in the same run (A B, B A, A B, … — the order
flips each round so neither side always runs on a warmer cache), at least five rounds, and
reported as medians with their spread (min–max) beside the load average at the start and
the end of the run. A ratio of medians from one run stays meaningful when the absolute
figures move with the load; comparing figures of two runs does not.

The usual baseline is the project's code at :data:`BASELINE_COMMIT` (the commit the
performance work of issue #15 started from), exported with ``git archive`` into a
temporary directory and put first on ``PYTHONPATH`` (same virtual environment):

* whole processes (``dev3000 mcp all`` over stdio, ``dev3000 serve``) run with
  :func:`python_env` of either tree;
* in-process measurements run in a worker script (a file that imports only the project's
  packages, never ``tools.bench``) started with :func:`worker` for either tree; it prints
  one JSON object on its last line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BASELINE_COMMIT",
    "ROOT",
    "Series",
    "alternate",
    "baseline_tree",
    "load_average",
    "python_env",
    "report",
    "served",
    "worker",
]

ROOT = Path(__file__).resolve().parents[2]
#: main at the start of the hot-path work (issue #15): the "before" of every A/B bench
BASELINE_COMMIT = "166818ea347cd86d7b83f71ed6d28edb9457b786"
MIN_ROUNDS = 5


@dataclass
class Series:
    """The samples of one variant, one per round (in round order)."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    @property
    def spread(self) -> float:
        """(max - min) / median: how much the rounds disagree."""
        return (self.high - self.low) / self.median if self.median else 0.0


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def alternate(
    variants: Mapping[str, Callable[[], float]],
    *,
    rounds: int = MIN_ROUNDS,
    warmup: int = 1,
) -> dict[str, Series]:
    """Run each variant once per round, alternating, and collect what each returns (one
    measurement: seconds, a rate, a ratio…). The order flips every round; ``warmup``
    rounds run first and are discarded."""
    if rounds < MIN_ROUNDS:
        raise SystemExit(f"at least {MIN_ROUNDS} alternating rounds are needed (got {rounds})")
    names = list(variants)
    series = {name: Series(name) for name in names}
    for r in range(warmup + rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            value = variants[name]()
            if r >= warmup:
                series[name].samples.append(value)
    return series


def report(
    title: str,
    series: Mapping[str, Series],
    *,
    unit: str = "ms",
    scale: float = 1000.0,
    baseline: str | None = None,
    load_before: str | None = None,
    digits: int = 2,
) -> dict[str, float]:
    """Print one table: median, min–max, spread and the ratio of medians to ``baseline``
    (the first variant by default); returns {name: ratio}."""
    names = list(series)
    base = series[baseline or names[0]]
    rounds = len(base.samples)
    print(f"\n== {title} ==")
    print(f"   {rounds} alternating rounds; load average {load_before or load_average()}")
    width = max(len(n) for n in names)
    print(f"   {'':<{width}}  {'median':>12}  {'min – max':>23}  {'spread':>7}  vs {base.name}")
    ratios: dict[str, float] = {}
    for name in names:
        s = series[name]
        ratio = s.median / base.median if base.median else float("nan")
        ratios[name] = ratio
        lo, hi, med = s.low * scale, s.high * scale, s.median * scale
        print(
            f"   {name:<{width}}  {med:>9.{digits}f} {unit:<2}  "
            f"{lo:>10.{digits}f} – {hi:<10.{digits}f}  {s.spread:>6.0%}  {ratio:.2f}x"
        )
    print(f"   load average at the end: {load_average()}")
    return ratios


@contextlib.contextmanager
def baseline_tree(commit: str = BASELINE_COMMIT) -> Iterator[Path]:
    """The project's files at ``commit`` in a temporary directory (``git archive``; no
    worktree, nothing left behind), byte-compiled like the candidate's."""
    tmp = Path(tempfile.mkdtemp(prefix="guilde-bench-base-"))
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", str(tmp)],
            check=False,
            capture_output=True,
        )
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def python_env(tree: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment that makes ``python`` import the project from ``tree``: this one,
    without Logfire's variables (exporting spans is not what either side measures, and an
    older tree may not accept values a newer one writes, e.g. ``LOGFIRE_CONSOLE_COLORS=auto``
    set by an in-process Logfire set-up)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGFIRE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tree), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra or {})
    return env


def worker(
    tree: Path, script: Path, args: Sequence[str], *, env: Mapping[str, str] | None = None
) -> dict[str, float]:
    """Run ``script`` (a file importing only the project's packages) with the project of
    ``tree``; its last stdout line is a JSON object of measurements."""
    out = subprocess.run(
        [sys.executable, str(script), *args],
        env=python_env(tree, env),
        capture_output=True,
        text=True,
        check=False,
        cwd=str(tree),
    )
    if out.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@contextlib.contextmanager
def served(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    ready_url: str,
    *,
    timeout: float = 180,
    status: int | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process (in a session of its own, exactly ``env``: no variable of this
    process comes back in) until the block ends, from when ``ready_url`` answers (with
    ``status`` when given)."""
    from tools.harness import wait_for_http

    proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(env), cwd=cwd, start_new_session=True)  # fmt: skip
    try:
        wait_for_http(ready_url, timeout=timeout, status=status)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
