"""The board's request-rate limit: a token bucket per address, held by the board instance.

Each address may make ``burst`` requests at once and ``per_second`` more every second after
(a page view is the page, its two files and the polls of its JSON every few seconds, plus
the players' range requests). Past that the board answers 429 with Retry-After.

Behind a reverse proxy every request comes from the proxy; the proxy's address is loopback,
and only then is the last address of ``X-Forwarded-For`` (the one the proxy appended) the
client's (docs/jamboard.md)."""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_TRACKED = 10_000  # addresses held before the idle ones (full buckets) are let go


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimit:
    burst: int = 120
    per_second: float = 4.0
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict, init=False)

    def take(self, address: str) -> float | None:
        """Spend one request of ``address``: None when allowed, else the seconds until the
        next one is."""
        now = self.clock()
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._forget_idle(now)
            bucket = self._buckets[address] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.per_second)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.per_second

    @property
    def tracked(self) -> int:
        """How many addresses it holds a bucket for (bounded near MAX_TRACKED)."""
        return len(self._buckets)

    def _forget_idle(self, now: float) -> None:
        refill = self.burst / self.per_second
        for address, bucket in list(self._buckets.items()):
            if now - bucket.at >= refill:
                del self._buckets[address]


def retry_after(wait: float) -> str:
    """Retry-After's value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))


def client_address(peer: str | None, forwarded_for: str | None) -> str:
    """Whom to count a request against: the peer, or behind a proxy on this machine the
    address it says it forwarded for."""
    if peer is None:
        return "unknown"
    try:
        loopback = ipaddress.ip_address(peer).is_loopback
    except ValueError:  # a Unix socket's peer
        loopback = True
    if loopback and forwarded_for:
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last
    return peer
