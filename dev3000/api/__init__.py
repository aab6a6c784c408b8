"""dev3000's HTTP API: the routers and the state they share.

API keys, rate limits, problem details and the request middleware are
:mod:`guilde_core.http`'s, shared with agent-web.
"""
