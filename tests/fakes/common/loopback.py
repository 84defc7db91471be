"""One loopback lifecycle: an aiohttp app served on 127.0.0.1 at a free port.

    class FakeThing(LoopbackServer):
        def __init__(self) -> None:
            super().__init__(time_scale=0.05)
            self.app.router.add_get("/thing", self._thing)

    async with FakeThing() as fake:   # or: await fake.start() ... await fake.close()
        httpx.get(fake.base_url + "/thing")

Routes are added to ``app`` before start. Closing sets ``closing`` (which wakes every
``sleep``), cancels what ``spawn`` started, then stops the server; a fake with more to close
(websockets, its own sessions, long polls) overrides ``close`` and calls ``super().close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self

from aiohttp import web

HOST = "127.0.0.1"


class LoopbackServer:
    """An aiohttp app on 127.0.0.1:<free port>, used with ``async with`` (or start/close)."""

    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        client_max_size: int = 1024**2,
        shutdown_timeout: float = 1.0,
    ) -> None:
        self.time_scale = time_scale
        self.app = web.Application(client_max_size=client_max_size)
        self.closing = asyncio.Event()
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.app, access_log=None, shutdown_timeout=self._shutdown_timeout
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        self.closing.set()  # wakes every delayed handler and background job
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ where it listens
    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not running; use `async with`")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{HOST}:{self.port}"

    # ------------------------------------------------------------ time and background work
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background until it ends or the server closes."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def scaled(self, nominal_seconds: float) -> float:
        return nominal_seconds * self.time_scale

    async def sleep(self, seconds: float) -> None:
        """Sleep, but return early when the server closes."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)
