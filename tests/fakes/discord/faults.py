"""Fault injection for the Discord fake, in the fault model every fake shares
(``tests/fakes/common/faults.py``: counting, ``times``, and the order a fault is applied in)::

    dc.faults.add("POST /channels/{channel_id}/messages", status=429, retry_after=0.05)
    dc.faults.add("POST /channels/*", status=502)                  # Cloudflare's HTML page
    dc.faults.add("PATCH /webhooks/{id}/*", status=404, body={...}, times=None)
    dc.faults.add(CHANNEL_POSTS, processed=True, drop=True)        # made, answer lost

Routes are ``"METHOD /path"`` patterns: ``{x}`` matches one segment, ``*`` the rest of the
path, and ``"*"`` alone any request. A 429 is Discord's (``Via`` header, ``retry_after`` in the
JSON body, ``X-RateLimit-*`` headers); ``global_``, ``via`` and ``scope`` shape it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from tests.fakes.common.faults import Fault, FaultPlan
from tests.fakes.discord.protocol import json_response
from tests.fakes.discord.ratelimits import RateLimiter

DEFAULT_RETRY_AFTER = 1.0  # real seconds a 429 fault tells the client to wait


@dataclass(kw_only=True, eq=False)
class DiscordFault(Fault):
    global_: bool = False  # 429: a global rate limit
    via: bool = True  # 429: send the Via header (False → discord.py will not retry it)
    scope: str | None = None  # 429: X-RateLimit-Scope (user/global/shared)


def fault_plan() -> FaultPlan[DiscordFault]:
    return FaultPlan(DiscordFault, match=route_matches)


def route_matches(pattern: str, request: str) -> bool:
    """Whether ``request`` (``"METHOD /path"``) fits the fault's route ``pattern``."""
    return bool(route_regex(pattern).match(request))


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


def render_error(fault: Fault, route_key: str, limiter: RateLimiter) -> web.Response:
    """A status fault's answer, as Discord (or Cloudflare in front of it) would send it."""
    assert isinstance(fault, DiscordFault) and fault.status is not None
    if fault.status == 429:
        return limiter.limited(
            route_key,
            DEFAULT_RETRY_AFTER if fault.retry_after is None else fault.retry_after,
            global_=fault.global_,
            via=fault.via,
            scope=fault.scope,
            body=fault.body,
        )
    if fault.body is not None:
        return json_response(fault.status, fault.body)
    if fault.status in (502, 503, 504) and fault.message is None:
        # Cloudflare-style HTML; discord.py sees a str
        text = f"<html><body>{fault.status} Bad Gateway</body></html>"
        return web.Response(status=fault.status, text=text, content_type="text/html")
    message = fault.message or f"{fault.status}: Fault injected"
    return json_response(fault.status, {"message": message, "code": 0})
