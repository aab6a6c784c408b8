"""The rules of the offline diagnosis: small readers of evidence, one per role.

:data:`COLLECTORS` is the one entry point: evidence role (:mod:`agent.toolnames`) → the
collector that reads records of that role into :class:`~agent.rules.base.Signal` s. A new
kind of evidence (Prometheus series of the question's component, say) is a role in
:mod:`agent.toolnames` that the gather pass calls, and a collector registered here; the
diagnosis places its signals on the symptom's path like any other. What each category
explains and what to do about it is the table in :mod:`agent.rules.categories`.
"""

from __future__ import annotations

from agent.rules.base import Collector, RuleInput, Signal
from agent.rules.browser import browser_signals
from agent.rules.circuits import circuit_signals
from agent.rules.logs import error_group_signals
from agent.rules.metrics import metrics_signals
from agent.rules.model import model_signals
from agent.rules.timeline import timeline_signals

__all__ = ["COLLECTORS", "Collector", "RuleInput", "Signal"]

#: evidence role → the collector that reads it
COLLECTORS: dict[str, Collector] = {
    "topology": model_signals,
    "errors": error_group_signals,
    "logs": error_group_signals,
    "timeline": timeline_signals,
    "circuits": circuit_signals,
    "browser_errors": browser_signals,
    "metrics": metrics_signals,
}
