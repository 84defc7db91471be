"""What the two backend fakes share: the fault API and the loopback server plumbing.

Faults are queued on ``fake.faults`` and each is consumed ``times`` times (``times=None``: for
ever). Two kinds:

**HTTP faults** change one answer of one route (``"submit"``, ``"poll"``, ``"download"``, and
per fake a few more, e.g. ``"stats"``)::

    fake.faults.add("submit", status=503, times=2)        # refused, nothing created
    fake.faults.add("submit", status=502, process=True)   # created upstream, then a 502
    fake.faults.add("submit", delay_response=2.0)         # created at once, answer 2 s late
    fake.faults.add("poll", delay=2.0)                    # wait 2 s, then handle normally
    fake.faults.add("poll", malformed=True)               # 200 with a body that is not JSON
    fake.faults.add("poll", drop=True)                    # connection closed, no answer
    fake.faults.add("poll", status=500, task_id=some_id)  # only requests about that id
    fake.faults.add("download", status=404)               # expired output URL
    fake.faults.add("download", truncate=True)            # Content-Length > bytes sent
    fake.faults.add("download", malformed=True)           # 200 with an HTML page, not audio
    fake.faults.add("download", redirect_to="http://169.254.169.254/latest/meta-data")

Order inside one fault: ``delay`` → ``status`` (the request is *not* processed unless
``process=True``) → the request is processed → ``delay_response`` → ``malformed`` / ``drop`` /
``truncate`` / ``redirect_to`` replace the answer. Delays are real seconds (they exist to beat
client timeouts), not scaled by ``time_scale``; closing the fake cuts them short.

**Job faults** shape the outcome of the next submitted jobs (consumed at submit time)::

    fake.faults.add_job(fail="Content flagged", error_code=1200)  # ends failed
    fake.faults.add_job(hang=True)                                # never finishes
    fake.faults.add_job(nsfw=True)                                # WaveSpeed: has_nsfw_contents
    fake.faults.add_job(output_url="http://127.0.0.2:9/x.mp3")    # output points elsewhere
    fake.faults.add_job(runtime=30.0)                             # nominal seconds for this job
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web

# A nominal runtime in seconds, or a function of the submitted JSON body giving one.
Runtime = float | Callable[[dict[str, Any]], float]


@dataclass
class HttpFault:
    route: str
    status: int | None = None
    message: str | None = None  # error text for ``status`` answers
    delay: float = 0.0
    delay_response: float = 0.0
    process: bool = False
    malformed: bool = False
    drop: bool = False
    truncate: bool = False
    redirect_to: str | None = None
    task_id: str | None = None
    times: int | None = 1


@dataclass
class JobFault:
    fail: str | bool | None = None  # failure message (WaveSpeed) / True (ACE-Step: no reason)
    error_code: int | str | None = None  # WaveSpeed: appended to the error text as "(code N)"
    fail_status: str = "failed"  # WaveSpeed terminal status: failed|cancelled|timeout|deleted
    hang: bool = False
    nsfw: bool = False
    output_url: str | None = None  # WaveSpeed: outputs[0]; ACE-Step: the ``file`` value
    output_as_object: bool = False  # WaveSpeed: outputs[0] = {"url": ...}
    bad_result: bool = False  # ACE-Step: ``result`` is not JSON
    runtime: float | None = None
    times: int | None = 1


class Faults:
    """Queued faults of one fake; see the module docstring."""

    def __init__(self, routes: Iterable[str]) -> None:
        self._routes = frozenset(routes)
        self._http: list[HttpFault] = []
        self._jobs: list[JobFault] = []

    def add(self, route: str, *, times: int | None = 1, **fields: Any) -> HttpFault:
        if route not in self._routes:
            raise ValueError(f"unknown route {route!r}; this fake has {sorted(self._routes)}")
        fault = HttpFault(route=route, times=times, **fields)
        self._http.append(fault)
        return fault

    def add_job(self, *, times: int | None = 1, **fields: Any) -> JobFault:
        fault = JobFault(times=times, **fields)
        self._jobs.append(fault)
        return fault

    def clear(self) -> None:
        self._http.clear()
        self._jobs.clear()

    def take(self, route: str, task_ids: Iterable[str] = ()) -> HttpFault | None:
        ids = set(task_ids)
        for fault in self._http:
            if fault.route == route and (fault.task_id is None or fault.task_id in ids):
                self._consume(self._http, fault)
                return fault
        return None

    def take_job(self) -> JobFault | None:
        if not self._jobs:
            return None
        fault = self._jobs[0]
        self._consume(self._jobs, fault)
        return fault

    @staticmethod
    def _consume(queue: list[Any], fault: HttpFault | JobFault) -> None:
        if fault.times is None:
            return
        fault.times -= 1
        if fault.times <= 0:
            queue.remove(fault)


Handler = Callable[[], Any]  # an async callable returning a web.StreamResponse


class LoopbackServer:
    """An aiohttp app on 127.0.0.1:<free port>, used with ``async with``."""

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self.base_url = ""
        self._app = web.Application()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    async def __aenter__(self) -> Self:
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()  # wakes every delayed handler and background job
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def scaled(self, nominal_seconds: float) -> float:
        return nominal_seconds * self.time_scale

    async def sleep(self, seconds: float) -> None:
        """Sleep, but return early when the fake closes."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def with_fault(
        self,
        request: web.Request,
        fault: HttpFault | None,
        handle: Handler,
        error: Callable[[int, str | None], web.StreamResponse],
        malformed: Callable[[], web.StreamResponse],
    ) -> web.StreamResponse:
        """Run ``handle`` under ``fault`` (see the module docstring for the order)."""
        if fault is None:
            return await handle()
        await self.sleep(fault.delay)
        if fault.status is not None:
            if fault.process:
                await handle()
            return error(fault.status, fault.message)
        response = await handle()
        await self.sleep(fault.delay_response)
        if fault.drop:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the client
        if fault.malformed:
            return malformed()
        if fault.redirect_to is not None:
            return web.Response(status=302, headers={"Location": fault.redirect_to})
        if fault.truncate and isinstance(response, web.Response) and response.body:
            body = response.body
            assert isinstance(body, bytes)
            return await truncated_response(request, body, response.content_type)
        return response


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


AUDIO_CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac"}
