"""The sandbox service guilde-diag is pointed at in the demo and the live scenarios.

``create_app(SandboxConfig(...))`` → a FastAPI app (orders, checkout through the resilience
layer, health, ``/metrics``, JSON-lines logs, the ``/_chaos`` control endpoint).
"""

from tools.sandbox.app import create_app
from tools.sandbox.config import RuntimeConfig, SandboxConfig

__all__ = ["RuntimeConfig", "SandboxConfig", "create_app"]
