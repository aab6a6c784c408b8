"""The metrics area: PromQL queries against the stack's Prometheus (``PROMETHEUS_URL``)."""
