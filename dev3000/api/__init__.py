"""dev3000's HTTP API: routers, auth, rate limiting, problem details, request ids."""
