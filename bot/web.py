"""The bot's HTTP listener (``WEB_LISTEN``): ``/healthz`` and ``/readyz`` for uptime monitors
and orchestrators, ``/metrics`` for Prometheus, and any routes the shell adds (WaveSpeed's
webhooks).

- ``GET /healthz``: 200 while the process answers at all (its event loop is not stuck).
- ``GET /readyz``: 200 when every readiness check passes, else 503; the body names each
  check and why it fails, e.g. ``{"ready": false, "checks": {"database": "ok", ...}}``.

The checks are handed in by the shell (this module knows no database, chat or backend):
each is a coroutine that returns None when fine, else a short reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[str | None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The exposition's body and content type (bot/metrics.py's Metrics.render).
Exposition = Callable[[], Awaitable[tuple[bytes, str]]]
CHECK_TIMEOUT = 5.0  # seconds one readiness check may take before it counts as failed


@dataclass
class Recently:
    """A check that passes while ``probe`` succeeded within ``fresh`` seconds, asking it at
    most every ``every`` seconds however often readiness is asked (a backend is not hammered
    by a monitor, and one failed answer in a good run does not flap the bot's readiness)."""

    probe: Callable[[], Awaitable[bool]]
    fresh: float = 300.0
    every: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _asked: float | None = field(default=None, init=False)
    _answered: float | None = field(default=None, init=False)

    async def __call__(self) -> str | None:
        now = self.clock()
        if self._asked is None or now - self._asked >= self.every:
            self._asked = now
            try:
                async with asyncio.timeout(CHECK_TIMEOUT):
                    answered = await self.probe()
            except TimeoutError:
                answered = False
            if answered:
                self._answered = now
        if self._answered is not None and now - self._answered < self.fresh:
            return None
        return f"no answer in the last {self.fresh:.0f} s"


class WebListener:
    """An aiohttp server on ``listen`` (host:port) with the health routes and ``routes``."""

    def __init__(
        self,
        listen: str,
        checks: Mapping[str, Check],
        routes: tuple[tuple[str, str, Handler], ...] = (),
        *,
        max_body: int = 1024 * 1024,
        metrics: Exposition | None = None,
    ) -> None:
        host, _, port = listen.rpartition(":")
        self._host = host or "0.0.0.0"
        self._port = int(port)
        self._checks = dict(checks)
        self._app = web.Application(client_max_size=max_body)
        self._app.router.add_get("/healthz", self._alive)
        self._app.router.add_get("/readyz", self._ready)
        self._metrics = metrics
        if metrics is not None:
            self._app.router.add_get("/metrics", self._exposition)
        for method, path, handler in routes:
            self._app.router.add_route(method, path, handler)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        logger.info("listening on %s:%s (/healthz, /readyz, /metrics)", self._host, self._port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def readiness(self) -> dict[str, str]:
        """Each check's ``"ok"`` or reason; the checks run at once, each within its time."""

        async def run(check: Check) -> str:
            try:
                async with asyncio.timeout(CHECK_TIMEOUT):
                    return await check() or "ok"
            except TimeoutError:
                return f"no answer within {CHECK_TIMEOUT:.0f} s"
            except Exception as exc:  # a check that breaks is a failed check, never a 500
                return type(exc).__name__

        results = await asyncio.gather(*(run(check) for check in self._checks.values()))
        return dict(zip(self._checks, results, strict=True))

    async def _alive(self, _request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def _ready(self, _request: web.Request) -> web.Response:
        checks = await self.readiness()
        ready = all(result == "ok" for result in checks.values())
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    async def _exposition(self, _request: web.Request) -> web.Response:
        assert self._metrics is not None  # the route exists only with it
        body, content_type = await self._metrics()
        return web.Response(body=body, headers={"Content-Type": content_type})
