"""Benchmark: ``dev3000 ask`` as a user runs it — a new process, from its start until the
answer is printed (goal: under 2.5 s with compiled bytecode).

The stack is ``dev3000 demo`` (fake LLM, sandbox, ``dev3000 serve``; no traffic, so the
rounds see the same server), or a running dev3000 (``--url``). Each round runs, in a fresh
random order:

* **candidate** — this checkout's ``dev3000 ask --url … -q QUESTION``;
* **baseline** — the same command with the code of ``--baseline`` (a git revision,
  exported by ``tools.bench.ab.baseline_tree`` and put first on ``PYTHONPATH``; same
  virtual environment, so only the project's code differs). Default :data:`BASELINE_REV`, main just before
  ``dev3000 ask`` dropped the FastMCP client;
* **python -c pass** — the interpreter's own start, the floor of any command.

Timed from spawning the process to the first byte of the answer on stdout (``answer``) and
to its exit (``exit``); medians with min–max over ``--rounds`` rounds, and the load average
before and after (the machine may be shared: the figures say how loaded it was). Bytecode:
compiled by default — each variant's imports cached in a temporary ``PYTHONPYCACHEPREFIX``,
warmed by one unmeasured run, as an installed package has; ``--no-bytecode`` compiles every
module on every start instead (a first run after install). ``--importtime`` also prints,
per variant, where the import time goes (``python -X importtime``).

    uv run python tools/bench/bench_ask.py                     # 7 rounds, ~1-2 min
    uv run python tools/bench/bench_ask.py --rounds 11 --importtime
    uv run python tools/bench/bench_ask.py --baseline main --url http://127.0.0.1:3001/mcp
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import selectors
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.bench import ab  # noqa: E402

#: main before ``dev3000 ask`` used the official MCP client (with the typed agent merged)
BASELINE_REV = "9e4c0c2"
GOAL_S = 2.5
QUESTION = "why are orders slow?"


@dataclass
class Variant:
    name: str
    argv: list[str]
    env: dict[str, str]
    answers: list[float] = field(default_factory=list)
    exits: list[float] = field(default_factory=list)


def _entry_point() -> str:
    """The ``dev3000`` console script of this environment (what a user runs)."""
    script = Path(sys.executable).with_name("dev3000")
    if not script.exists():
        raise SystemExit(f"no dev3000 script beside {sys.executable}: run `uv sync` first")
    return str(script)


def timed(
    argv: list[str], env: dict[str, str], cwd: str, timeout: float = 120.0
) -> tuple[float, float, str]:
    """Seconds to the first stdout byte and to the exit of ``argv``, and its stdout; raise
    when it fails."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    first: float | None = None
    chunks: list[bytes] = []
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            if time.perf_counter() - started > timeout:
                proc.kill()
                raise TimeoutError(f"{argv[:3]} did not finish within {timeout}s")
            if not sel.select(timeout=1.0):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            if first is None:
                first = time.perf_counter()
            chunks.append(chunk)
    err = proc.stderr.read().decode(errors="replace")
    code = proc.wait()
    ended = time.perf_counter()
    out = b"".join(chunks).decode(errors="replace")
    if code != 0:
        raise RuntimeError(f"{argv[:3]} exited {code}: {err.strip()[-800:]}")
    return (first or ended) - started, ended - started, out


@contextlib.contextmanager
def demo_stack() -> Iterator[str]:
    """``dev3000 demo`` without traffic in a thread; yields dev3000's MCP URL."""
    from tools.demo import DemoOptions, run_demo
    from tools.harness import free_port, wait_until

    ready: dict[str, Any] = {}
    lines: list[str] = []
    stop = threading.Event()
    options = DemoOptions(traffic=False, dev3000_port=free_port())
    thread = threading.Thread(
        target=run_demo,
        args=(options,),
        kwargs={"ready_callback": ready.update, "stop_event": stop, "out": lines.append},
        daemon=True,
    )
    thread.start()
    try:
        wait_until(lambda: bool(ready) or not thread.is_alive(), timeout=120, interval=0.2)
        if not ready:
            raise SystemExit("the demo did not come up:\n" + "\n".join(lines))
        yield str(ready["dev3000"]) + "/mcp"
    finally:
        stop.set()
        thread.join(30)


def _env(pythonpath: Path | None, bytecode: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["DEV3000_ENV_FILE"] = os.devnull  # no .env of the checkout: both variants alike
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="bench-ask-pyc-")
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # an empty cache, never filled
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def importtime(variant: Variant, cwd: str, top: int) -> None:
    """Where ``variant`` spends its import time: the total and the biggest top-level
    imports (cumulative), from ``python -X importtime``."""
    argv = [variant.argv[0], "-X", "importtime", *variant.argv[1:]]
    proc = subprocess.run(argv, env=variant.env, cwd=cwd, capture_output=True, text=True)
    rows: list[tuple[int, int, int, str]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        if not own.strip().isdigit():
            continue
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((int(cumulative), int(own), depth, name.strip()))
    total = sum(r[1] for r in rows) / 1e6
    print(f"\n{variant.name}: imports {total:.2f} s in all; largest top-level (cumulative):")
    for cumulative_us, _, _, module in sorted((r for r in rows if r[2] == 0), reverse=True)[:top]:
        print(f"  {cumulative_us / 1e6:6.3f} s  {module}")


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s  ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="A/B rounds (≥ 5 for a figure)")
    parser.add_argument("--baseline", default=BASELINE_REV, help="git revision of the baseline")
    parser.add_argument("--url", default=None, help="a running dev3000's MCP endpoint")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--no-bytecode", action="store_true", help="compile on every start")
    parser.add_argument("--importtime", action="store_true", help="where the imports go")
    parser.add_argument("--json", action="store_true", help="the figures as JSON at the end")
    args = parser.parse_args()
    script = _entry_point()
    bytecode = not args.no_bytecode
    cwd = tempfile.mkdtemp(prefix="bench-ask-cwd-")  # no ./.env, nothing on sys.path
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(demo_stack())
        tree = stack.enter_context(ab.baseline_tree(args.baseline))
        ask = [sys.executable, script, "ask", "--url", url, "-q", args.question]
        variants = [
            Variant("candidate (this checkout)", ask, _env(ROOT, bytecode)),
            Variant(f"baseline ({args.baseline})", ask, _env(tree, bytecode)),
            Variant("python -c pass", [sys.executable, "-c", "pass"], _env(None, bytecode)),
        ]
        answers = {}
        for variant in variants:  # warm-up: fills the bytecode caches, checks the answer
            answers[variant.name] = timed(variant.argv, variant.env, cwd)[2]
        for name in (v.name for v in variants[:2]):
            if "Root cause" not in answers[name]:
                raise SystemExit(f"{name} printed no diagnosis:\n{answers[name]}")
        for _ in range(max(1, args.rounds)):
            for variant in random.sample(variants, len(variants)):
                answer, exited, _ = timed(variant.argv, variant.env, cwd)
                variant.answers.append(answer)
                variant.exits.append(exited)
        if args.importtime:
            for variant in variants[:2]:
                importtime(variant, cwd, top=12)
    load_after = os.getloadavg()
    print(
        f"\n`dev3000 ask` end to end, {args.rounds} rounds, alternating in random order, "
        f"{'compiled bytecode' if bytecode else 'no bytecode'}; question {args.question!r}"
    )
    print(
        f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} "
        f"({os.cpu_count()} CPUs)"
    )
    print(f"{'':<30} {'start → answer printed':<28} start → exit")
    for variant in variants:
        print(f"{variant.name:<30} {_spread(variant.answers):<28} {_spread(variant.exits)}")
    candidate = statistics.median(variants[0].answers)
    verdict = "met" if candidate < GOAL_S else "NOT met"
    print(f"goal (< {GOAL_S} s, start → answer): {verdict}")
    if args.json:
        print(
            json.dumps(
                {
                    "rounds": args.rounds,
                    "bytecode": bytecode,
                    "load_before": load_before,
                    "load_after": load_after,
                    "variants": {
                        v.name: {"answer_s": v.answers, "exit_s": v.exits} for v in variants
                    },
                }
            )
        )


if __name__ == "__main__":
    main()
