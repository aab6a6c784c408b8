"""LLM mode of ``dev3000 eval``: the real SDKs against fake providers with scripted answers.

For each scenario a scripted model first asks for one more piece of evidence through an MCP
tool, then concludes with the scenario's ``llm.reply`` (or one built from its ground truth,
citing the first-pass evidence and the new one). ``llm.faults`` inject provider faults
(``{provider: openai|anthropic, status: 429, retry_after: "1", times: 1}``) so the suite
also drives the retry/fallback chain. This proves the loop, the chain and the fault handling
end to end; the accuracy it reports is the script's, by construction.

The fake provider server is ``tools.fakellm`` (scripts and faults set
through its control API).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from agent.providers import ProviderChain
from agent.providers.anthropic_provider import AnthropicProvider
from agent.providers.openai_provider import OpenAIProvider
from evals.scenario import Scenario
from guilde_core.config import get_settings

__all__ = ["conclusion_for", "scripted_providers"]

ChainFactory = Callable[[Scenario], Awaitable[Any]]


def conclusion_for(scenario: Scenario) -> dict[str, Any]:
    """The scripted model's final answer for ``scenario``."""
    reply = scenario.llm.get("reply")
    if isinstance(reply, dict):
        return reply
    exp = scenario.expect
    mention = ", ".join(exp.mention)
    return {
        "status": "unhealthy" if exp.category != "unknown" else "healthy",
        "root_cause": {
            "component": exp.component[0],
            "category": exp.category,
            "summary": f"{exp.component[0]}: {exp.category.replace('_', ' ')} ({mention})",
            "confidence": 0.8,
            "evidence_ids": [f"E{i}" for i in range(1, 8)],
        },
        "findings": [],
        "recommendations": [f"Investigate {exp.component[0]}."],
    }


_FAULT_KINDS = {429: "rate_limit", 503: "unavailable", 529: "overloaded", 401: "auth"}


@contextmanager
def scripted_providers() -> Iterator[ChainFactory]:
    """Run the fake provider server; yield a chain factory scripted per scenario."""
    from tools.fakellm import fakellm_server

    with fakellm_server() as fake:

        async def factory(scenario: Scenario) -> ProviderChain:
            query = (scenario.expect.mention or scenario.expect.component)[0]
            calls = scenario.llm.get("tool_calls") or [["logs_search", {"query": query}]]
            fake.control.reset()
            fake.control.set_script(
                [
                    {
                        "tool_calls": [
                            {"name": str(name), "arguments": dict(args)} for name, args in calls
                        ]
                    },
                    {"text": json.dumps(conclusion_for(scenario))},
                ]
            )
            for f in scenario.llm.get("faults") or []:
                status = f.get("status")
                kind = _FAULT_KINDS.get(status, "status") if status else "hang"
                fake.control.inject(
                    kind,
                    status=status if kind == "status" else None,
                    retry_after=f.get("retry_after"),
                    delay=f.get("delay"),
                    times=int(f.get("times", 1)),
                )
            settings = get_settings()
            first = scenario.llm.get("first", "openai")
            openai = OpenAIProvider(
                "fake-gpt", api_key="sk-fake-eval", base_url=fake.openai_base_url
            )
            anthropic = AnthropicProvider(
                "fake-claude", api_key="sk-fake-eval", base_url=fake.anthropic_base_url
            )
            order: list[Any] = [openai, anthropic] if first == "openai" else [anthropic, openai]
            return ProviderChain(order, settings)

        yield factory
