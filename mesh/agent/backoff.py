"""Exponential backoff with full jitter, so a hub restart does not bring every node back at once."""

from __future__ import annotations

import random


class Backoff:
    """Delay n is uniform in [0, min(cap, initial * factor**n)] ("full jitter")."""

    def __init__(
        self,
        *,
        initial: float = 1.0,
        factor: float = 1.6,
        cap: float = 120.0,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or factor < 1 or cap < initial:
            raise ValueError("backoff needs initial > 0, factor >= 1 and cap >= initial")
        self.initial = initial
        self.factor = factor
        self.cap = cap
        self.attempt = 0
        self.rng = rng or random.Random()

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.cap, self.initial * self.factor**self.attempt)

    def next(self) -> float:
        """The next delay (and count the attempt)."""
        ceiling = self.ceiling()
        self.attempt = min(self.attempt + 1, 64)
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        """A connection succeeded: start again from the initial delay."""
        self.attempt = 0
