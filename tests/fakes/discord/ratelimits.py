"""Per-route rate-limit buckets: ``X-RateLimit-*`` headers on every answer, and 429s shaped like
Discord's (``Via`` header, JSON body with ``retry_after``/``global``)."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.discord.protocol import json_response

# Nominal (limit, window seconds) per route; everything else gets DEFAULT_RATE_LIMIT.
DEFAULT_RATE_LIMITS: dict[str, tuple[int, float]] = {
    "POST /channels/{channel_id}/messages": (5, 5.0),
    "PATCH /channels/{channel_id}/messages/{message_id}": (5, 5.0),
    "DELETE /channels/{channel_id}/messages/{message_id}": (5, 5.0),
    "POST /webhooks/{webhook_id}/{webhook_token}": (5, 2.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original": (5, 2.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": (5, 2.0),
}
DEFAULT_RATE_LIMIT = (50, 1.0)


@dataclass
class Bucket:
    limit: int
    window: float  # nominal seconds
    remaining: int
    reset_at: float  # nominal


class RateLimiter:
    """Buckets keyed by (route, major parameters), as Discord keys them. ``limits`` is read on
    every request, so a test may replace the fake's ``rate_limits`` at any time."""

    def __init__(
        self,
        limits: Callable[[], dict[str, tuple[int, float]]],
        now: Callable[[], float],
        time_scale: float,
    ) -> None:
        self._limits = limits
        self._now = now
        self._time_scale = time_scale
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def take(
        self, route_key: str, params: dict[str, str], headers: dict[str, str]
    ) -> web.Response | None:
        """Count one request: a 429 if the bucket is empty, else None and ``headers`` filled."""
        key = _bucket_key(route_key, params)
        limit, window = self._limits().get(key[0], DEFAULT_RATE_LIMIT)
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset_at:
            bucket = Bucket(limit, window, limit, now + window)
            self._buckets[key] = bucket
        if bucket.remaining <= 0:
            return self.limited(route_key, (bucket.reset_at - now) * self._time_scale)
        bucket.remaining -= 1
        # Rounded up: a client that waits exactly this long must find the bucket refilled.
        reset_after = math.ceil(max(bucket.reset_at - now, 0.0) * self._time_scale * 1000) / 1000
        headers.update(
            {
                "X-RateLimit-Limit": str(bucket.limit),
                "X-RateLimit-Remaining": str(bucket.remaining),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": _bucket_hash(route_key),
            }
        )
        return None

    def limited(
        self,
        route_key: str,
        retry_after: float,
        *,
        global_: bool = False,
        via: bool = True,
        scope: str | None = None,
        body: Any = None,
    ) -> web.Response:
        """A 429 as Discord sends it (``retry_after`` in real seconds)."""
        retry_after = math.ceil(max(retry_after, 0.001) * 1000) / 1000
        headers = {
            "Retry-After": str(max(1, int(retry_after + 0.999))),
            "X-RateLimit-Limit": str(self._limits().get(route_key, DEFAULT_RATE_LIMIT)[0]),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": _bucket_hash(route_key),
            "X-RateLimit-Scope": scope or ("global" if global_ else "user"),
        }
        if global_:
            headers["X-RateLimit-Global"] = "true"
        if via:
            headers["Via"] = "1.1 google"
        payload = (
            body
            if body is not None
            else {
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": global_,
                "code": 0,
            }
        )
        return json_response(429, payload, headers)


def _bucket_key(template: str, params: dict[str, str]) -> tuple[str, str]:
    major = "+".join(
        params[k] for k in ("channel_id", "guild_id", "webhook_id", "webhook_token") if k in params
    )
    return template, major


def _bucket_hash(route_key: str) -> str:
    return hashlib.sha1(route_key.encode()).hexdigest()[:32]
