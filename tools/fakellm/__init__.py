"""Fake OpenAI- and Anthropic-compatible LLM providers for tests and the demo.

* :class:`FakeLLM` — the server state + ASGI app (``fake.app``).
* :func:`fakellm_server` — run one on a free loopback port (yields :class:`RunningFakeLLM`
  with ``url``, ``openai_base_url``, ``anthropic_base_url``, ``control``, ``fake``).
* :class:`FakeLLMControl` — its ``/_control`` HTTP API (faults, stats, script, reset).
* :class:`Script` / :func:`load_script` — scripted answers; :class:`FaultSpec` — faults.
"""

from tools.fakellm.app import FakeLLM, create_app
from tools.fakellm.client import FakeLLMControl, RunningFakeLLM, fakellm_server
from tools.fakellm.faults import FaultSpec
from tools.fakellm.script import Rule, Script, ScriptError, Step, ToolCall, Usage, load_script

__all__ = [
    "FakeLLM",
    "FakeLLMControl",
    "FaultSpec",
    "Rule",
    "RunningFakeLLM",
    "Script",
    "ScriptError",
    "Step",
    "ToolCall",
    "Usage",
    "create_app",
    "fakellm_server",
    "load_script",
]
