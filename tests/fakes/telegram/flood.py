"""Flood control: a token bucket per chat plus sliding windows per group and overall, in
*nominal* seconds (divided by ``time_scale`` in real time), answering 429 with ``retry_after``."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

# Methods that count against flood limits: everything that makes a message appear or change.
FLOOD_METHODS = frozenset(
    {
        "sendmessage",
        "sendaudio",
        "senddocument",
        "sendmediagroup",  # counted as one send here; Telegram may count each item
        "editmessagetext",
        "editmessagecaption",
        "editmessagereplymarkup",
    }
)


@dataclass(frozen=True)
class FloodLimits:
    """Flood control, in nominal seconds (divided by ``time_scale`` in real time).

    Telegram documents about one message per second per chat (short bursts pass), 20 per
    minute per group and 30 per second overall; editing counts like sending.
    """

    chat_burst: int = 3
    chat_per_second: float = 1.0
    group_per_minute: int = 20
    global_per_second: int = 30
    enabled: bool = True

    @classmethod
    def off(cls) -> FloodLimits:
        return cls(enabled=False)


class FloodControl:
    """Token bucket per chat plus sliding windows per group and overall, in nominal seconds."""

    def __init__(self, limits: FloodLimits, time_scale: float, clock: Callable[[], float]):
        self.limits = limits
        self._time_scale = time_scale
        self._clock = clock
        self._t0 = clock()
        self._buckets: dict[int, tuple[float, float]] = {}  # chat -> (tokens, at)
        self._group_sends: defaultdict[int, deque[float]] = defaultdict(deque)
        self._global_sends: deque[float] = deque()

    def _now(self) -> float:
        return (self._clock() - self._t0) / self._time_scale

    def admit(self, chat_id: int) -> tuple[str, int] | None:
        """Consume one send for ``chat_id``; or (scope, retry_after) when over a limit."""
        limits = self.limits
        if not limits.enabled:
            return None
        now = self._now()
        waits: list[tuple[float, str]] = []
        tokens, at = self._buckets.get(chat_id, (float(limits.chat_burst), now))
        tokens = min(float(limits.chat_burst), tokens + (now - at) * limits.chat_per_second)
        if tokens < 1.0:
            waits.append(((1.0 - tokens) / limits.chat_per_second, "chat"))
        group = self._group_sends[chat_id] if chat_id < 0 else None
        if group is not None:
            while group and group[0] <= now - 60.0:
                group.popleft()
            if len(group) >= limits.group_per_minute:
                waits.append((group[0] + 60.0 - now, "group"))
        glob = self._global_sends
        while glob and glob[0] <= now - 1.0:
            glob.popleft()
        if len(glob) >= limits.global_per_second:
            waits.append((glob[0] + 1.0 - now, "global"))
        if waits:
            self._buckets[chat_id] = (tokens, now)
            wait, scope = max(waits)
            return scope, max(1, math.ceil(wait))
        self._buckets[chat_id] = (tokens - 1.0, now)
        if group is not None:
            group.append(now)
        glob.append(now)
        return None

    def refund(self, chat_id: int) -> None:
        """Give back the send ``admit`` took: the request failed before anything was sent."""
        tokens, at = self._buckets.get(chat_id, (0.0, self._now()))
        self._buckets[chat_id] = (min(float(self.limits.chat_burst), tokens + 1.0), at)
        if chat_id < 0 and self._group_sends[chat_id]:
            self._group_sends[chat_id].pop()
        if self._global_sends:
            self._global_sends.pop()
