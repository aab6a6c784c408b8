"""The timeline: one event bus, the live stream (WebSocket + SSE), sources and files."""

from __future__ import annotations

from .bus import EventBus, Gap, Subscription, TimelinePage
from .filters import EventFilter, parse_filter

__all__ = ["EventBus", "EventFilter", "Gap", "Subscription", "TimelinePage", "parse_filter"]
