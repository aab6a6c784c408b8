"""HTTP pieces shared by dev3000's API and agent-web.

* :mod:`~guilde_core.http.problems` — RFC 9457 problem details for every error path.
* :mod:`~guilde_core.http.auth` — API keys with scopes, the principal and the one
  authorization decision (REST dependencies, WebSocket/SSE streams, mounted apps).
* :mod:`~guilde_core.http.middleware` — the pure-ASGI request middleware: request ids,
  Prometheus metrics, rate limits, a last-resort 500 problem.
* :mod:`~guilde_core.http.ratelimit` — the per-caller rate limiter the middleware consults.
"""
