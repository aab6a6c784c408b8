"""The question read as a symptom: what it is about, how it hurts, where its path starts.

"why are orders slow?" is a *slow* symptom of the route *orders*, served by the backend: its
path is the backend and everything the backend depends on. "why is the cache slow?" names a
component (redis): its path starts there. "is everything ok?" is an *overall* question about
the whole stack. The ``focus`` option (``dev3000 ask --focus``) overrides what the question
names; its kind still comes from the question.

Kinds: ``slow`` (latency, timeouts), ``rejected`` (401/403/429, denied, throttled),
``failing`` (errors, 5xx, down, broken; a page that is empty, blank or does not load) and ``overall`` ("is anything wrong?", "is the
database healthy?") — a question that says none of these is an overall one.

What a word names is read from two places: the components of the stack model itself (a
node's name or component appearing in the question: "payments", "webhooks", "backend"), then
the words people use for them (:data:`COMPONENT_WORDS`: "the cache" is redis, "the AI" is
any upstream provider). Anything else that looks like a feature or a route ("orders",
"checkout", "/api/v1/orders") is a route of the entry service.
"""

from __future__ import annotations

import re

from agent.models import SymptomKind, SymptomView
from guilde_core.stack import StackModel, canonical

__all__ = [
    "COMPONENT_WORDS",
    "LLM",
    "LLM_PROVIDERS",
    "about_the_page",
    "entry_nodes",
    "read_symptom",
]

#: a component the question names by a word people use for it → canonical component
#: (``LLM``: whichever upstream providers the stack has)
LLM = "llm"
#: the components "the AI" / "the LLM" / "the upstream" names
LLM_PROVIDERS = frozenset({"openai", "anthropic", "openrouter"})
COMPONENT_WORDS: dict[str, str] = {
    "database": "database",
    "db": "database",
    "postgres": "database",
    "postgresql": "database",
    "sql": "database",
    "sqlite": "database",
    "queries": "database",
    "redis": "redis",
    "cache": "redis",
    "caching": "redis",
    "openai": "openai",
    "anthropic": "anthropic",
    "claude": "anthropic",
    "openrouter": "openrouter",
    "llm": LLM,
    "ai": LLM,
    "gpt": LLM,
    "upstream": LLM,
    "provider": LLM,
    "assistant": LLM,
    "model": LLM,
    "disk": "disk",
    "storage": "disk",
    "filesystem": "disk",
    "space": "disk",
    "memory": "memory",
    "ram": "memory",
    "oom": "memory",
    "cpu": "cpu",
    "config": "config",
    "configuration": "config",
    "settings": "config",
    "frontend": "frontend",
    "page": "frontend",
    "website": "frontend",
    "site": "frontend",
    "ui": "frontend",
    "backend": "backend",
    "api": "backend",
}
#: words that never name a route ("why are the things failing" names nothing)
_NOT_ROUTES = frozenset(
    """why is are was were the a an my our some all any what whats what's how does do did
    it its it's this that these those so too very really right now today anything something
    everything system stack service services request requests call calls thing things there
    when where who which getting get got keep keeps kept still again then and or but with
    for from of on in at to by after before last deploy deployment up down ok okay fine
    healthy health well working work works answer answers answering respond responding
    return returns returning error errors fail fails failing failed failure failures broke
    broken slow slower slowly slowness latency lag laggy sluggish long forever take takes
    taking timeout timeouts time out rejected rejecting reject denied throttled limited
    immediately suddenly stop stopped show shows showing unavailable wrong problem problems
    issue issues 500 503 502 401 403 429 be been being have has had not no can can't cannot
    will would should could we us they them i me you your there's is isn't aren't doesn't
    don't didn't go going gone happening happened feature features endpoint endpoints
    more less better worse good bad all fast quick ok feel feels felt seem seems seemed
    look looks looking user users customer customers empty blank missing load loads
    loading show showing display displays appear appears render renders shop store
    banner button list view screen nothing ages""".split()  # noqa: SIM905
)
#: words a user says for "what I see" without naming a part: the frontend when the stack has
#: one running, else the services that serve the users (a stack without a deployed frontend
#: still has a "site")
_VAGUE = frozenset({"page", "website", "site", "ui", "app", "application"})
#: words that put what the user sees in the browser on the symptom's path: the page dev3000
#: watches is part of the stack, in the model or not (a stack with no declared frontend still
#: has the page the browser capture loads)
_PAGE = re.compile(
    r"\b(?:page|pages|website|site|ui|app|frontend|front-end|browser|screen|view|banner|button"
    r"|blank|render\w*|javascript|js|console|shop|store)\b"
)

_REJECTED = re.compile(
    r"\b(?:40[13]|429|reject\w*|denied|deny|unauthori[sz]ed|forbidden|credentials?|api[ -]?key"
    r"|throttl\w*|rate[ -]?limit\w*|quota|refus\w*)\b"
)
_SLOW = re.compile(
    r"\b(?:slow\w*|latency|lag\w*|sluggish|forever|long time|takes? (?:so |too )?long"
    r"|(?:takes?|taking|took) ages|ages to"
    r"|taking (?:so |too )?long|delay\w*|p99|p95|timing out|time ?outs?|hang\w*|crawl\w*)\b"
)
_FAILING = re.compile(
    r"\b(?:fail\w*|errors?|erroring|broken|broke|break\w*|down|crash\w*|5\d\d|unavailable"
    r"|not working|(?:doesn't|does not|don't|do not|didn't|did not) work|stopped working"
    r"|stop working|exceptions?|outage"
    # what people say of a page that does not show what it should
    r"|empty|blank|missing|disappear\w*|white screen|nothing (?:shows|appears|loads)"
    r"|(?:not|n't|won't|will not|can't|cannot|never) (?:load|show|display|appear|render)\w*)\b"
)
_ROUTE = re.compile(r"/[a-z0-9_/{}.-]+")
_WORD = re.compile(r"[a-z][a-z0-9_-]*")


def _kind(text: str) -> SymptomKind:
    if _REJECTED.search(text):
        return "rejected"
    if _SLOW.search(text):
        return "slow"
    if _FAILING.search(text):
        return "failing"
    return "overall"


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") and len(word) > 3 else word


def _named_component(text: str, model: StackModel | None) -> str | None:
    """The component ``text`` names: one of the model's own (by name or component, the
    longest match first), else one of :data:`COMPONENT_WORDS`."""
    words = _WORD.findall(text)
    singles = {_singular(w) for w in words} | set(words)
    if model is not None:
        names: dict[str, str] = {}
        for node in model.nodes:
            for label in (node.name.lower(), node.component.lower()):
                if label and label not in ("dev3000", "errors", "latency", "requests"):
                    names.setdefault(label, node.component)
        for label in sorted(names, key=len, reverse=True):
            if label in singles or (("-" in label or "_" in label) and label in text):
                return names[label]
    for word in words:
        if word in COMPONENT_WORDS:
            named = str(COMPONENT_WORDS[word])
            if word in _VAGUE and model is not None and not _runs(model, named):
                continue
            return named
    return None


def about_the_page(question: str, focus: str | None = None) -> bool:
    """Whether the question is about what the user sees (the watched page is on its path)."""
    return bool(_PAGE.search(f"{question} {focus or ''}".lower()))


def _runs(model: StackModel, component: str) -> bool:
    """Whether ``component`` is a counted node of ``model`` (declared and seen up)."""
    return any(n.component == component and n.counts for n in model.nodes)


def _named_route(text: str) -> str | None:
    path = _ROUTE.search(text)
    if path and path.group(0).count("/") >= 1 and len(path.group(0)) > 1:
        return path.group(0)
    for word in _WORD.findall(text):
        if word not in _NOT_ROUTES and word not in COMPONENT_WORDS and len(word) > 2:
            return str(word)
    return None


def read_symptom(
    question: str, focus: str | None = None, model: StackModel | None = None
) -> SymptomView:
    """The symptom of ``question`` (the focus, when given, names what it is about)."""
    text = question.lower()
    kind = _kind(text)
    source: str = "question"
    what = text
    if focus and focus.strip():
        what, source = focus.strip().lower(), "focus"
    component = _named_component(what, model)
    route = None if component is not None else _named_route(what)
    if source == "focus" and component is None and route is None:
        route = what
    symptom = SymptomView(
        kind=kind,
        component=component,
        route=route,
        source="focus" if source == "focus" else "question",
    )
    if model is not None:
        symptom.entry = entry_nodes(symptom, model)
    return symptom


def entry_nodes(symptom: SymptomView, model: StackModel) -> list[str]:
    """Where the symptom's path starts in ``model``.

    * a named component: its nodes (the counted ones; all of them when none counts, so an
      absent component is still what was checked);
    * a route, or a failing/slow/rejected question that names nothing: the service that
      serves the routes — the critical services, else the ones that report their own
      dependencies, else the ones nothing depends on (never dev3000 itself);
    * an overall question that names nothing: every top-level node (the whole stack)."""
    if symptom.component is not None:
        if symptom.component == LLM:
            nodes = [n for n in model.nodes if n.component in LLM_PROVIDERS]
        else:
            wanted = canonical(symptom.component)
            nodes = [n for n in model.nodes if n.component == wanted]
        counted = [n for n in nodes if n.counts]
        return [n.id for n in counted or nodes]
    top = [n for n in model.nodes if n.parent is None]
    if symptom.route is None and symptom.kind == "overall":
        return [n.id for n in top]
    services = [n for n in top if n.kind == "service" and n.counts and n.source != "builtin"]
    critical = [n for n in services if n.critical]
    reporting = [n for n in services if model.children(n.id)]
    targets = {e.target for e in model.edges}
    chosen = critical or reporting or [n for n in services if n.id not in targets] or services
    return [n.id for n in chosen] or [n.id for n in top]
