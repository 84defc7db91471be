"""One fault model for every loopback fake: what to script, how often it fires, how it answers.

A fake owns a :class:`FaultPlan`; a test adds faults to it, the fake asks it for the fault of each
request it serves (``take``) and lets :func:`answer` run the request under that fault::

    fake.faults.add("poll", status=503, times=2)      # the next 2 poll requests answer 503
    fake.faults.add("poll", status=500, about=job_id) # only a request about that id
    fake.faults.add("*", delay=2.0, times=None)       # every request, for ever, 2 s late

**Counting.** ``times=N`` means *the next N requests that match* (route, and ``about`` when
given); ``times=None`` means every matching request for ever. Each match is one ``hit``; after
``times`` hits the fault leaves the plan (``len(plan)`` and iteration show pending faults only),
and the object ``add`` returned keeps ``hits`` for assertions. Faults are consulted in the order
they were added; the first that matches fires, so a later fault waits its turn.

**Routes** are names each fake defines (``"submit"``, ``"sendMessage"``,
``"POST /channels/{id}/messages"``); ``"*"`` matches any. A plan built with ``routes=`` refuses
unknown names, and ``match=`` replaces plain equality (e.g. case-insensitive, or a path pattern).

**The answer** (:func:`answer`), in this order:

1. ``delay``: real seconds before anything happens;
2. unless ``processed``: ``status`` answers the fault's error, ``drop`` closes the connection;
   the request is *not* carried out;
3. the request is carried out (``handle``);
4. ``delay_response``: real seconds before answering;
5. with ``processed``: ``status`` / ``drop`` now (the work is done, its answer lost);
6. ``malformed`` (a 200 whose body the client can't parse), ``redirect_to`` (a 302),
   ``truncate`` (``Content-Length`` announces more bytes than are sent).

Delays are real seconds (they exist to beat client timeouts), not scaled by a fake's time scale.
A status answer is rendered by the fake in its own wire format from ``status``, ``message``,
``body`` and ``retry_after``; ``headers`` are added to it.

A fake with knobs of its own subclasses :class:`Fault` (keyword-only dataclass fields) and builds
``FaultPlan(ItsFault, ...)``; something that is not an HTTP answer (e.g. how a backend job ends)
subclasses :class:`Scripted` to get the same counting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiohttp import web

ANY_ROUTE = "*"


@dataclass(kw_only=True, eq=False)
class Scripted:
    """Something a test scripts for the next ``times`` matching requests (None: for ever)."""

    route: str = ANY_ROUTE
    about: object | None = None  # only requests about this id (job id, chat id...)
    times: int | None = 1
    hits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be None or at least 1, not {self.times}")

    @property
    def remaining(self) -> int | None:
        """How many more matching requests it affects; None: for ever."""
        return None if self.times is None else self.times - self.hits

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


@dataclass(kw_only=True, eq=False)
class Fault(Scripted):
    """How one request is answered instead of normally; see the module docstring for the order."""

    status: int | None = None
    message: str | None = None  # the error text of a ``status`` answer
    body: Any = None  # replaces the whole error body of a ``status`` answer
    headers: Mapping[str, str] = field(default_factory=dict)  # added to a ``status`` answer
    retry_after: float | None = None  # 429: what the client is told to wait
    delay: float = 0.0
    delay_response: float = 0.0
    processed: bool = False
    drop: bool = False
    malformed: bool = False
    redirect_to: str | None = None
    truncate: bool = False


F = TypeVar("F", bound=Scripted)
RouteMatch = Callable[[str, str], bool]  # (the fault's route, the request's route) -> match


def same_route(pattern: str, route: str) -> bool:
    return pattern == ANY_ROUTE or pattern == route


class FaultPlan(Generic[F]):
    """The scripted faults of one fake, consulted in the order they were added."""

    def __init__(
        self,
        fault_type: type[F],
        routes: Iterable[str] | None = None,
        *,
        match: RouteMatch = same_route,
    ) -> None:
        self._fault_type = fault_type
        self._routes = None if routes is None else frozenset(routes)
        self._match = match
        self._faults: list[F] = []

    def add(self, route: str = ANY_ROUTE, *, times: int | None = 1, **fields: Any) -> F:
        """Script a fault for the next ``times`` requests on ``route``; returns it."""
        return self.put(self._fault_type(route=route, times=times, **fields))

    def put(self, fault: F) -> F:
        """Add an already built fault (e.g. one shared between two plans)."""
        known = self._routes
        if known is not None and fault.route != ANY_ROUTE and fault.route not in known:
            raise ValueError(f"unknown route {fault.route!r}; this fake has {sorted(known)}")
        self._faults.append(fault)
        return fault

    def take(self, route: str, about: Iterable[object] = ()) -> F | None:
        """The fault for one request on ``route`` concerning the ids ``about``, counted as a hit."""
        ids = set(about)
        for fault in self._faults:
            if self._match(fault.route, route) and (fault.about is None or fault.about in ids):
                fault.hits += 1
                if fault.exhausted:
                    self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._faults.clear()

    def __iter__(self) -> Iterator[F]:
        return iter(list(self._faults))

    def __len__(self) -> int:
        return len(self._faults)


Handle = Callable[[], Awaitable[web.StreamResponse]]
Sleep = Callable[[float], Awaitable[None]]


async def answer(
    request: web.Request,
    fault: Fault | None,
    handle: Handle,
    *,
    error: Callable[[Fault], web.StreamResponse],
    malformed: Callable[[], web.StreamResponse] | None = None,
    sleep: Sleep = asyncio.sleep,
) -> web.StreamResponse:
    """Serve ``request`` with ``handle`` under ``fault`` (the module docstring gives the order).

    ``error`` renders a status fault in the fake's wire format, ``malformed`` its unparsable 200;
    ``sleep`` lets a fake cut delays short when it closes (``LoopbackServer.sleep``).
    """
    if fault is None:
        return await handle()
    await sleep(fault.delay)
    if not fault.processed and (lost := _lost(request, fault, error)) is not None:
        return lost
    response = await handle()
    await sleep(fault.delay_response)
    if fault.processed and (lost := _lost(request, fault, error)) is not None:
        return lost
    if fault.malformed:
        if malformed is None:
            raise ValueError("this fake has no malformed answer for this route")
        return malformed()
    if fault.redirect_to is not None:
        return web.Response(status=302, headers={"Location": fault.redirect_to})
    if fault.truncate and isinstance(response, web.Response) and response.body:
        body = response.body
        assert isinstance(body, bytes)
        return await truncated_response(request, body, response.content_type)
    return response


def _lost(
    request: web.Request, fault: Fault, error: Callable[[Fault], web.StreamResponse]
) -> web.StreamResponse | None:
    if fault.drop:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never reaches the client
    if fault.status is not None:
        response = error(fault)
        response.headers.update(fault.headers)
        return response
    return None


async def truncated_response(
    request: web.Request, body: bytes, content_type: str
) -> web.StreamResponse:
    """Announce the whole body, send a third of it, then close the connection."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: max(1, len(body) // 3)])
    if request.transport is not None:
        request.transport.close()
    return response
