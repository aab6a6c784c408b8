"""The table of categories: what each explains, how fundamental it is, what to do about it.

One row per category of :data:`guilde_core.stack.Category` (the vocabulary itself lives
there, once): the symptom kinds a fault of that category can cause (a slow database explains
slow orders and failing ones — timeouts —, a rejected credential explains rejected and
failing requests, never slow ones), its rank in a causal chain (lower: more fundamental; a
pool exhausted explains a breaker opening, which explains an error spike) and the next step
a person takes. A host resource is narrower than its category: memory or CPU over budget
slows a service down, a full disk makes writes fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from agent.models import SymptomKind
from guilde_core.stack import Category

__all__ = ["CATEGORY_RULES", "CategoryRule", "explains", "recommendation"]

_ALL: frozenset[SymptomKind] = frozenset(get_args(SymptomKind))


@dataclass(frozen=True)
class CategoryRule:
    #: symptom kinds a fault of this category causes directly
    explains: frozenset[SymptomKind]
    causal_rank: int
    recommendation: str
    #: kinds it causes only sometimes (a slow dependency makes callers time out and fail)
    also: frozenset[SymptomKind] = frozenset()


def _kinds(*kinds: SymptomKind) -> frozenset[SymptomKind]:
    return frozenset({"overall", *kinds})


CATEGORY_RULES: dict[Category, CategoryRule] = {
    "configuration": CategoryRule(
        _kinds("failing", "rejected"),
        0,
        "Correct the invalid configuration of {c} and reload it.",
    ),
    "upstream_auth": CategoryRule(
        _kinds("rejected", "failing"),
        1,
        "Replace the credential used for {c}: it was rejected (401/403); retrying will not help.",
    ),
    "resource_exhaustion": CategoryRule(
        _kinds("failing", "slow"),
        2,
        "Free or enlarge {c} (pool size, disk, memory) and look for leaks holding it.",
    ),
    "unreachable": CategoryRule(
        _kinds("failing"),
        3,
        "Restore connectivity to {c}: check that it is running, its host/port and network "
        "policy; callers will recover when it answers.",
        also=frozenset({"slow"}),
    ),
    "upstream_rate_limited": CategoryRule(
        _kinds("rejected", "failing"),
        4,
        "Slow down calls to {c} (client-side rate limit, backoff honouring Retry-After) or "
        "raise the quota.",
        also=frozenset({"slow"}),
    ),
    "latency": CategoryRule(
        _kinds("slow"),
        5,
        "Find why {c} is slow (load, locks, network); raise timeouts only as a stopgap.",
        also=frozenset({"failing"}),
    ),
    "circuit_open": CategoryRule(
        _kinds("failing", "rejected"),
        6,
        "Fix what made the {c} breaker trip; it will half-open after its recovery timeout "
        "(close it by hand only once the cause is gone, with approval).",
    ),
    "error_spike": CategoryRule(
        _kinds("failing"),
        7,
        "Inspect the failing code path of {c} (see the error signature) and roll back the "
        "change that introduced it.",
    ),
    "unknown": CategoryRule(
        _kinds(),
        8,
        "Gather more evidence about {c} (logs, traces) before acting.",
        also=frozenset({"failing"}),
    ),
}
assert set(CATEGORY_RULES) == set(get_args(Category)), "one row per category"

#: host resources whose exhaustion explains fewer symptoms than the category does
_RESOURCE_EXPLAINS: dict[str, frozenset[SymptomKind]] = {
    "memory": _kinds("slow"),
    "cpu": _kinds("slow"),
    "disk": _kinds("failing"),
}


def explains(category: Category, component: str, kind: SymptomKind) -> int:
    """How well a fault of ``category`` in ``component`` explains a ``kind`` symptom: 2
    directly, 1 sometimes, 0 not at all."""
    if kind == "overall":
        return 2
    if category == "resource_exhaustion" and component in _RESOURCE_EXPLAINS:
        return 2 if kind in _RESOURCE_EXPLAINS[component] else 0
    rule = CATEGORY_RULES[category]
    return 2 if kind in rule.explains else 1 if kind in rule.also else 0


def recommendation(category: Category, component: str) -> str:
    return CATEGORY_RULES[category].recommendation.format(c=component)
