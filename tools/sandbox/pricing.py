"""Order pricing — where the ``error-spike`` fault raises its one exception signature."""

from __future__ import annotations

import random
from typing import Any

__all__ = ["price_orders"]

_EXCEPTIONS: dict[str, type[Exception]] = {
    "KeyError": KeyError,
    "ValueError": ValueError,
    "RuntimeError": RuntimeError,
    "ZeroDivisionError": ZeroDivisionError,
}


def price_orders(rows: list[dict[str, Any]], spike: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``rows`` with ``total_cents`` (5% off from 10 items); raises while an error spike is
    active (at its rate, once per call: one call per request)."""
    if spike is not None and random.random() < float(spike["rate"]):
        raise _EXCEPTIONS[str(spike["exception"])](str(spike["message"]))
    priced = []
    for row in rows:
        total = int(row["price_cents"]) * int(row["quantity"])
        discounted = total * 95 // 100 if int(row["quantity"]) >= 10 else total
        priced.append({**row, "total_cents": discounted})
    return priced
