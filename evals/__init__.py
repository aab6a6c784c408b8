"""evals: the evaluation harness of the diagnosis agent and its scenarios.

* :mod:`evals.suite` — scenarios (``evals/scenarios/<name>/scenario.yaml``), the suite
  runner and the scoring (``dev3000 eval``).
* :mod:`evals.live` — a scenario made real: the sandbox with chaos faults, dev3000's
  aggregate MCP server over it.
* :mod:`evals.recorded` / :mod:`evals.recording` — replaying / capturing the tool outputs
  of a live run.
* :mod:`evals.llm` — LLM mode: scripted models on the fake providers.
* :mod:`evals.cli` — the ``dev3000 eval`` command.
"""
