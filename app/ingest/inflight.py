"""The decoded request bytes one worker holds: a budget (``ERRGATE_MAX_INFLIGHT_BYTES``) shared by all requests."""

from __future__ import annotations

from typing import Callable


class DecodeBudgetExhausted(Exception):
    """Admitting more decoded bytes would pass the budget: the request is answered 429 with ``Retry-After``."""


class DecodeBudget:
    """Decoded bytes in flight across the requests of one worker, at most ``limit``.

    Each request takes a :class:`Reservation`, reserves bytes as it decodes them and gives all
    of them back when it ends; ``on_release`` hears of every request that gave bytes back.
    """

    def __init__(self, limit: int, on_release: Callable[[int], None] | None = None) -> None:
        self.limit = limit
        self.in_flight = 0
        self._on_release = on_release

    def reservation(self) -> Reservation:
        return Reservation(self)

    def _release(self, size: int) -> None:
        self.in_flight -= size
        if self._on_release is not None:
            self._on_release(size)


class Reservation:
    """The decoded bytes of one request: reserved as they are decoded, given back by :meth:`close`."""

    __slots__ = ("_budget", "held")

    def __init__(self, budget: DecodeBudget) -> None:
        self._budget = budget
        self.held = 0

    def reserve(self, size: int) -> None:
        """Count ``size`` more bytes, or raise :class:`DecodeBudgetExhausted` (counting nothing)."""
        budget = self._budget
        if budget.in_flight + size > budget.limit:
            raise DecodeBudgetExhausted(f"{budget.in_flight} of {budget.limit} decoded bytes in flight")
        budget.in_flight += size
        self.held += size

    def close(self) -> None:
        """Give back every byte reserved so far (once; later calls give back nothing)."""
        held, self.held = self.held, 0
        if held:
            self._budget._release(held)
