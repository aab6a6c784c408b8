"""Run one question per checkpointer in a fresh process (used by test_sessions).

``python -m tests.agent.session_proc <mcp-url> <question> <json list of [kind, dsn, session]>``
prints ``{session: [evidence ids]}`` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys

from agent.checkpoint import open_checkpointer
from agent.mcp_client import DiagTools
from agent.providers import ProviderChain
from agent.runner import DiagnosisAgent
from guilde_core.config import get_settings


async def main(url: str, question: str, targets: list[list[str]]) -> dict[str, list[str]]:
    settings = get_settings()
    out: dict[str, list[str]] = {}
    async with DiagTools(url) as tools:
        for kind, dsn, session in targets:
            async with open_checkpointer(settings, kind, dsn) as saver:
                agent = DiagnosisAgent(
                    tools, ProviderChain([], settings), settings=settings, checkpointer=saver
                )
                result = await agent.ask(question, session_id=session)
                assert result.diagnosis is not None
                out[session] = [e.id for e in result.diagnosis.evidence]
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))))
