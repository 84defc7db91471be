"""Fault injection: ``dc.faults.add(route, status=..., ...)`` changes the answers to matching
requests (429s with Discord's body and headers, 5xx, delays, dropped connections, or a failure
after the request was carried out)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.discord.protocol import json_response
from tests.fakes.discord.ratelimits import RateLimiter
from tests.fakes.discord.records import RecordedRequest


@dataclass
class Fault:
    route: str  # "METHOD /path/{any}": {x} matches one segment, * the rest; or just "*"
    status: int | None = None
    retry_after: float = 1.0  # 429: seconds the client is told to wait (real seconds)
    global_: bool = False  # 429: a global rate limit
    via: bool = True  # 429: send the Via header (False → discord.py will not retry it)
    scope: str | None = None  # 429: X-RateLimit-Scope (user/global/shared)
    delay: float = 0.0  # real seconds to wait before answering
    drop: bool = False  # close the connection without answering
    body: Any = None  # replaces the error body
    times: int | None = 1  # None: for ever
    # Carry the request out first (the message really is made), then fail the answer: a
    # client that retries, or restarts, can't tell it already happened.
    processed: bool = False
    hits: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pattern = route_regex(self.route)

    def matches(self, method: str, path: str) -> bool:
        return bool(self._pattern.match(f"{method} {path}"))


def route_regex(route: str) -> re.Pattern[str]:
    if route.strip() == "*":
        return re.compile(r"^\S+ .*$")
    method, _, path = route.strip().partition(" ")
    if path == "*":
        return re.compile(rf"^{re.escape(method.upper())} .*$")
    parts = []
    for seg in path.strip("/").split("/"):
        if seg == "*":
            parts.append(".*")  # the rest of the path
        elif seg.startswith("{") and seg.endswith("}"):
            parts.append("[^/]+")
        else:
            parts.append(re.escape(seg))
    return re.compile(rf"^{re.escape(method.upper())} /" + "/".join(parts) + "$")


class Faults:
    """``dc.faults.add(route=..., status=429, retry_after=0.05, times=1)`` etc."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        route: str = "*",
        *,
        status: int | None = None,
        retry_after: float = 1.0,
        global_: bool = False,
        via: bool = True,
        scope: str | None = None,
        delay: float = 0.0,
        drop: bool = False,
        body: Any = None,
        times: int | None = 1,
        processed: bool = False,
    ) -> Fault:
        fault = Fault(
            route, status, retry_after, global_, via, scope, delay, drop, body, times, processed
        )
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def __len__(self) -> int:
        return len(self._faults)

    def __iter__(self) -> Iterator[Fault]:
        return iter(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None


# --------------------------------------------------------------------------------------------
# World model


async def apply_fault(
    fault: Fault, rec: RecordedRequest, request: web.Request, route_key: str, limiter: RateLimiter
) -> web.Response | None:
    """The answer ``fault`` makes instead of the real one (None: answer normally)."""
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.drop:
        if request.transport is not None:
            request.transport.abort()
        rec.status = -1  # no answer: the client sees a dropped connection
        return web.Response(status=500)
    if fault.status is None:
        return None
    if fault.status == 429:
        return limiter.limited(
            route_key,
            fault.retry_after,
            global_=fault.global_,
            via=fault.via,
            scope=fault.scope,
            body=fault.body,
        )
    if fault.body is not None:
        body = fault.body
    elif fault.status in (502, 503, 504):
        # Cloudflare-style HTML; discord.py sees a str
        text = f"<html><body>{fault.status} Bad Gateway</body></html>"
        return web.Response(status=fault.status, text=text, content_type="text/html")
    else:
        body = {"message": f"{fault.status}: Fault injected", "code": 0}
    return json_response(fault.status, body)
