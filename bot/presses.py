"""Button presses that count once: a second tap of the same button by the same person within a
few seconds is the same press (a double tap, a laggy client, Telegram re-sending a callback).

Platform-free; each adapter keeps one :class:`PressGuard` and asks it before acting on a press.
It lives in memory: presses are answered by the one process that runs the adapters, and a few
seconds of memory are all the idempotency a tap needs (what a press *does* is durable already).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

DEFAULT_WINDOW_SECONDS = 5.0


class PressGuard:
    """``guard.first(key)`` is True for the first press of ``key`` within ``window`` seconds.

    A key names the person and the button, e.g. ``("telegram", user_id, "reroll", job_id)``.
    The check and the record are one synchronous step, so two taps handled concurrently on one
    event loop can never both be first.
    """

    def __init__(
        self,
        window: float = DEFAULT_WINDOW_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window
        self._clock = clock
        self._seen: dict[Hashable, float] = {}

    def first(self, key: Hashable) -> bool:
        now = self._clock()
        self._forget_before(now - self._window)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True

    def forget(self, key: Hashable) -> None:
        """The press was refused and changed nothing: pressing again is a new press."""
        self._seen.pop(key, None)

    def _forget_before(self, cutoff: float) -> None:
        # Insertion order is time order, so the stale keys are at the front.
        for key, at in list(self._seen.items()):
            if at > cutoff:
                break
            del self._seen[key]
