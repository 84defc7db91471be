"""A loopback self-hosted ACE-Step 1.5 API server (``uv run acestep-api``), quirks included.

    async with FakeAceStep(time_scale=0.05) as fake:            # auth off
    async with FakeAceStep(api_key="ace-test-key") as fake:     # Bearer (or body ai_token)

Routes (``/work/shared/docs/upstreams.md`` §2), answers in the envelope
``{"data", "code", "error", "timestamp", "extra"}``, HTTP errors as ``{"detail": "..."}``:

- ``POST /release_task``: takes every documented parameter with the server's defaults
  (``batch_size`` 2 → two files, ``use_random_seed`` true → the sent ``seed`` is ignored,
  ``audio_duration`` 30, ``audio_format`` mp3, ...). No range validation, like the real
  server. The language model's part (``sample_mode``/``sample_query``, ``use_format``,
  ``thinking``) is :mod:`tests.fakes.acestep_lm`. ``data = {task_id, status: "queued", queue_position}``; 429
  ``{"detail": "Server busy: queue is full"}`` when ``max_queue`` jobs already wait.
  As ``multipart/form-data`` it is an edit (:mod:`tests.fakes.acestep_edits`): the source in
  ``src_audio``, every field a string the server's parser reads back; checked strictly (an
  unknown field, task type or unreadable number is a 400 naming it), measured (the decoded
  source), recorded in ``edits``, and answered with audio as long as the engine makes it
  (a repaint past either end: the source plus that much). A JSON repaint or cover is a 400:
  our client never names a file on the server's disk.
- ``POST /query_result`` ``{"task_id_list": [...]}`` → one item per id, in order:
  ``{task_id, status: 0|1|2, result: <JSON string>, progress_text}``. Queued: ``result`` is
  ``"[]"``; running: ``[{"progress": x, "stage": s}]``; succeeded: one entry per take with
  ``file`` (``/v1/audio?path=...``), ``seed_value`` (a string), ``metas``, ``prompt``,
  ``lyrics``; every take's ``seed_value`` lists the whole batch's seeds ("1,2"), ``metas``
  says ``"N/A"`` for what nobody chose, ``prompt``/``lyrics`` are what the language model
  wrote in sample or format mode; failed: status 2 with an entry whose ``error`` says why
  (``old_server``: ``"[]"``, no reason). **Unknown ids answer status 0 forever.**
- ``POST /format_input`` (``prompt``, ``lyrics``, ``param_obj``): the caption and lyrics
  polished and the metadata filled; without a language model 503 (``old_server``: 500).
- ``GET /v1/audio?path=...`` (Bearer header only): real audio in the task's ``audio_format``.
- ``GET /health`` (no auth), ``GET /v1/stats`` (``queue_size``, ``avg_job_seconds``: the mean
  real run time of finished jobs, or ``5 × time_scale`` before the first).
- ``GET /v1/models`` (Bearer header only): the newer servers' inventory, ``models`` (name,
  ``is_default``, ``is_loaded``, ``supported_task_types``), ``default_model``, ``lm_models``,
  ``loaded_lm_model`` and ``llm_initialized``; ``/health`` says the last two as well. With
  ``models_shape="openrouter"`` it is the OpenRouter-style list instead (no envelope, no auth,
  no task types), as on real servers whose OpenRouter route shadows it; the inventory is then
  at ``GET /v1/model_inventory`` (served either way). ``task_types=None``: a server that does
  not say (the documented ``name``/``is_default`` entries, no ``/v1/model_inventory``).

One job runs at a time; the rest wait in FIFO order. ``fake.restart()`` forgets every task and
the queue (files already written stay downloadable, as on a real disk); ``await fake.crash()``
does too and refuses connections until ``await fake.come_back()`` (same port: one server of a
pool dying and coming back).

Knobs: ``task_types`` (the default model's; turbo's by default), ``models_shape``, ``runtime`` (nominal seconds or ``f(body) -> seconds``; default ``2 + duration / 30``),
``max_queue``, ``avg_job_seconds`` (None = measured), ``models`` (DiT names, the first is the
default), ``lm_model`` (the loaded 5 Hz LM; None: started without one: jobs that need it
fail), ``lm_writes`` (what it writes), ``old_server`` (the published wheel: ``/health``
without model fields, failures without a reason, every job failing without a language
model). Fault routes:
``"submit"``, ``"poll"``, ``"download"``, ``"stats"``, ``"health"``; job faults: ``fail``
(True), ``hang``, ``bad_result`` (``result`` not JSON), ``output_url`` (the ``file`` value),
``runtime`` (see :mod:`tests.fakes.backend_common`).

Records: ``submits`` (every JSON body received; a multipart form's fields), ``edits`` (each
multipart submit read: :class:`tests.fakes.acestep_edits.EditReceived`), ``format_calls`` (bodies), ``tasks`` (id → :class:`AceTask`, cleared
by ``restart``), ``query_calls`` ((task_id_list, monotonic time) per call), ``completed_at``
(id → monotonic time the job ended, failed ones too), ``downloads`` (``path`` per request).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.fakes.acestep_edits import (
    SOURCE_TASKS,
    TURBO_TASK_TYPES,
    EditReceived,
    inventory,
    openrouter_list,
    read_form,
)
from tests.fakes.acestep_lm import NO_LM_ERROR, Written, format_answer, needs_lm, written_for
from tests.fakes.audio import make_audio
from tests.fakes.backend_common import AUDIO_CONTENT_TYPES, BackendFaults, JobFault, Runtime
from tests.fakes.common import Fault, LoopbackServer, answer

OUTPUT_DIR = "/app/outputs/api_audio"


@dataclass
class AceTask:
    id: str
    body: dict[str, Any]
    fault: JobFault
    seeds: list[int]
    audio_format: str
    duration: float
    state: str = "queued"  # queued | running | succeeded | failed
    started: float | None = None
    total: float = 0.0  # real seconds it runs
    files: list[str] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    written: Written | None = None  # what the language model wrote for it
    error: str | None = None  # why it will fail (no language model)


def _envelope(data: Any) -> dict[str, Any]:
    return {
        "data": data,
        "code": 200,
        "error": None,
        "timestamp": int(time.time() * 1000),
        "extra": None,
    }


def _detail(status: int, message: str | None = None) -> web.Response:
    text = message or {
        400: "Bad request",
        401: "Invalid or missing API key",
        404: "Not found",
        415: "Unsupported Media Type",
        429: "Server busy: queue is full",
        503: "Service unavailable",
    }.get(status, "Internal Server Error")
    return web.json_response({"detail": text}, status=status)


def _fault_error(fault: Fault) -> web.Response:
    return _detail(fault.status or 500, fault.message)


def _malformed() -> web.Response:
    return web.Response(status=200, body=b'{"data": [{"task_id": ', content_type="application/json")


def _html_page() -> web.Response:
    return web.Response(
        status=200, text="<html><body>Not audio</body></html>", content_type="text/html"
    )


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


class FakeAceStep(LoopbackServer):
    def __init__(
        self,
        time_scale: float = 0.05,
        api_key: str | None = None,
        *,
        max_queue: int = 200,
        runtime: Runtime | None = None,
        avg_job_seconds: float | None = None,
        models: tuple[str, ...] = ("acestep-v15-turbo",),
        lm_model: str | None = "acestep-5Hz-lm-1.7B",
        old_server: bool = False,
        task_types: tuple[str, ...] | None = TURBO_TASK_TYPES,
        models_shape: str = "inventory",
    ) -> None:
        # The real server sets no body limit; a source upload may be 20 MB (bot/sources.py).
        super().__init__(time_scale, client_max_size=64 * 1024**2)
        self.task_types = task_types
        self.models_shape = models_shape  # "inventory" | "openrouter"
        self.edits: list[EditReceived] = []
        self.models = models
        self.lm_model = lm_model
        self.lm_writes = Written()
        self.old_server = old_server
        self.format_calls: list[Any] = []
        self.api_key = api_key
        self.max_queue = max_queue
        self.runtime: Runtime = runtime if runtime is not None else _default_runtime
        self.avg_job_seconds = avg_job_seconds
        self.faults = BackendFaults(("submit", "poll", "download", "stats", "health"))
        self.submits: list[Any] = []
        self.tasks: dict[str, AceTask] = {}
        self.query_calls: list[tuple[list[str], float]] = []
        self.completed_at: dict[str, float] = {}
        self.downloads: list[str] = []
        self._files: dict[str, tuple[float, str]] = {}  # path -> (duration, format)
        self._run_times: list[float] = []
        self._queue: asyncio.Queue[AceTask] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        router = self.app.router
        router.add_post("/release_task", self._release_task)
        router.add_post("/query_result", self._query_result)
        router.add_get("/v1/audio", self._audio)
        router.add_get("/health", self._health)
        router.add_get("/v1/stats", self._stats)
        router.add_get("/v1/models", self._models)
        router.add_get("/v1/model_inventory", self._model_inventory)
        router.add_post("/format_input", self._format_input)

    async def start(self) -> None:
        await super().start()
        self._worker = self.spawn(self._work())

    # ------------------------------------------------------------ helpers for tests
    def restart(self) -> None:
        """Like restarting the real server: every queued and running task is forgotten."""
        if self._worker is not None:
            self._worker.cancel()
        self.tasks.clear()
        self._queue = asyncio.Queue()
        self._worker = self.spawn(self._work())

    async def crash(self) -> None:
        """The server process dies: connections are refused and, like :meth:`restart`,
        every queued and running task is forgotten. :meth:`come_back` starts it again."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.restart()

    async def come_back(self) -> None:
        """Listen again on the same port after :meth:`crash` (a fresh, empty server)."""
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def wait_finished(self, task_id: str, within: float = 5.0) -> AceTask:
        """Wait until the task succeeded or failed."""
        task = self.tasks[task_id]
        await asyncio.wait_for(task.finished.wait(), within)
        return task

    @property
    def queue_size(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------ the single GPU worker
    async def _work(self) -> None:
        while True:
            task = await self._queue.get()
            if self.tasks.get(task.id) is not task:  # forgotten by a restart
                continue
            task.state = "running"
            task.started = time.monotonic()
            if task.fault.hang:
                await self.closing.wait()
                return
            await self.sleep(task.total)
            if self.closing.is_set():
                return
            if task.fault.fail or task.error is not None:
                task.state = "failed"
            else:
                # The real server writes its files before reporting success.
                await asyncio.to_thread(make_audio, task.duration, task.audio_format)
                task.files = [
                    f"{OUTPUT_DIR}/{task.id}_{i}.{task.audio_format}"
                    for i in range(len(task.seeds))
                ]
                for path in task.files:
                    self._files[path] = (task.duration, task.audio_format)
                task.state = "succeeded"
            self._run_times.append(time.monotonic() - task.started)
            self.completed_at[task.id] = time.monotonic()
            task.finished.set()

    # ------------------------------------------------------------ routes
    async def _answer(
        self,
        request: web.Request,
        fault: Fault | None,
        handle: Callable[[], Awaitable[web.StreamResponse]],
        malformed: Callable[[], web.StreamResponse],
    ) -> web.StreamResponse:
        return await answer(
            request, fault, handle, error=_fault_error, malformed=malformed, sleep=self.sleep
        )

    def _bearer_ok(self, request: web.Request) -> bool:
        return (
            self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}"
        )

    def _post_auth_ok(self, request: web.Request, body: Any) -> bool:
        token_ok = isinstance(body, dict) and body.get("ai_token") == self.api_key
        return self._bearer_ok(request) or token_ok

    async def _json_body(self, request: web.Request) -> tuple[Any, web.Response | None]:
        raw = await request.read()
        if "json" not in request.content_type:
            return raw.decode(errors="replace"), _detail(415)
        try:
            return json.loads(raw), None
        except ValueError:
            return raw.decode(errors="replace"), _detail(400, "Invalid JSON body")

    async def _release_task(self, request: web.Request) -> web.StreamResponse:
        received: EditReceived | None = None
        if request.content_type == "multipart/form-data":
            form = await read_form(request)
            if isinstance(form, web.Response):
                body, problem = {}, form
            else:
                received, body, problem = form, form.fields, None
                self.edits.append(form)
        else:
            body, problem = await self._json_body(request)
            if problem is None and isinstance(body, dict) and body.get("task_type") in SOURCE_TASKS:
                problem = _detail(400, "the fake takes a source only as an upload (src_audio)")
        self.submits.append(body)

        async def handle() -> web.StreamResponse:
            if problem is not None:
                return problem
            if not self._post_auth_ok(request, body):
                return _detail(401)
            if not isinstance(body, dict):
                return _detail(400, "Body must be a JSON object")
            if self._queue.qsize() >= self.max_queue:
                return _detail(429, "Server busy: queue is full")
            task = self._create(body, received)
            data = {"task_id": task.id, "status": "queued", "queue_position": self._queue.qsize()}
            return web.json_response(_envelope(data))

        fault = self.faults.take("submit")
        return await self._answer(request, fault, handle, _malformed)

    def _create(self, body: dict[str, Any], edit: EditReceived | None = None) -> AceTask:
        fault = self.faults.take_job() or JobFault(times=None)
        batch = max(1, int(_number(body.get("batch_size"), 2)))
        if _flag(body.get("use_random_seed"), True):
            seeds = [random.randint(0, 2**31 - 1) for _ in range(batch)]
        else:
            seed = int(_number(body.get("seed"), -1))
            seeds = [seed + i if seed >= 0 else random.randint(0, 2**31 - 1) for i in range(batch)]
        fmt = str(body.get("audio_format") or "mp3")
        duration = _number(body.get("audio_duration"), 30.0)
        written = written_for(body, self.lm_writes) if self.lm_model is not None else None
        if written is not None:  # sample mode: the model chose the length too
            duration = _number(written.duration, duration)
        error = None
        if self.lm_model is None and (needs_lm(body) or self.old_server):
            error = NO_LM_ERROR
        if edit is not None:  # the (padded) source sizes the result, not audio_duration
            duration = edit.output_seconds or duration
            if edit.task_type in SOURCE_TASKS and edit.output_seconds is None:
                error = "the source audio could not be read"
        nominal = fault.runtime if fault.runtime is not None else _runtime_of(self.runtime, body)
        task = AceTask(
            id=str(uuid.uuid4()),
            body=body,
            fault=fault,
            seeds=seeds,
            audio_format=fmt if fmt in AUDIO_CONTENT_TYPES else "mp3",
            # Unvalidated like the real server, but keep the fake's own encoder sane.
            duration=min(max(duration, 1.0), 600.0),
            total=self.scaled(nominal),
            written=written,
            error=error,
        )
        self.tasks[task.id] = task
        self._queue.put_nowait(task)
        return task

    async def _query_result(self, request: web.Request) -> web.StreamResponse:
        body, problem = await self._json_body(request)
        ids = body.get("task_id_list") if isinstance(body, dict) else None
        if isinstance(ids, str):  # some clients send the list JSON-encoded
            try:
                ids = json.loads(ids)
            except ValueError:
                ids = [ids]
        id_list = [str(i) for i in ids] if isinstance(ids, list) else []
        self.query_calls.append((id_list, time.monotonic()))

        async def handle() -> web.StreamResponse:
            if problem is not None:
                return problem
            if not self._post_auth_ok(request, body):
                return _detail(401)
            return web.json_response(_envelope([self._item(task_id) for task_id in id_list]))

        fault = self.faults.take("poll", id_list)
        return await self._answer(request, fault, handle, _malformed)

    def _item(self, task_id: str) -> dict[str, Any]:
        task = self.tasks.get(task_id)
        status, entries, text = 0, [], ""
        if task is None:
            pass  # the real server's quirk: unknown means "still queued", for ever
        elif task.state == "queued":
            text = "Queued"
        elif task.state == "running":
            assert task.started is not None
            progress = min(0.99, (time.monotonic() - task.started) / max(task.total, 1e-6))
            stage = (
                "preparing" if progress < 0.15 else "diffusion" if progress < 0.85 else "decoding"
            )
            entries = [{"progress": round(progress, 3), "stage": stage}]
            text = f"{stage} {progress:.0%}"
        elif task.state == "failed":
            status = 2
            if task.error is not None and not self.old_server:
                entries = [{"file": "", "status": 2, "stage": "failed", "error": task.error}]
        else:
            status, text = 1, "Succeeded"
            entries = [self._take(task, path) for path in task.files]
        result = "{not json" if task is not None and task.fault.bad_result else json.dumps(entries)
        return {"task_id": task_id, "status": status, "result": result, "progress_text": text}

    def _take(self, task: AceTask, path: str) -> dict[str, Any]:
        body, written = task.body, task.written
        # What nobody chose reads "N/A"; with a language model its reasoning fills it.
        guess = self.lm_writes if self.lm_model is not None else None

        def meta(given: Any, name: str) -> Any:
            if written is not None:
                return getattr(written, name)
            if given not in (None, ""):
                return given
            return getattr(guess, name) if guess is not None else "N/A"

        return {
            "file": task.fault.output_url or f"/v1/audio?path={quote(path, safe='')}",
            "wave": "",
            "status": 1,
            "create_time": int(time.time()),
            "prompt": written.caption if written else body.get("prompt", ""),
            "lyrics": written.lyrics if written else body.get("lyrics", ""),
            "metas": {
                "bpm": meta(body.get("bpm"), "bpm"),
                "duration": task.duration,
                "genres": "",
                "keyscale": meta(body.get("key_scale"), "keyscale"),
                "timesignature": meta(body.get("time_signature"), "timesignature"),
                "prompt": body.get("prompt", ""),
                "lyrics": body.get("lyrics", ""),
            },
            "seed_value": ",".join(str(seed) for seed in task.seeds),
            "lm_model": self.lm_model or "",
        }

    async def _audio(self, request: web.Request) -> web.StreamResponse:
        path = request.query.get("path", "")
        self.downloads.append(path)
        task_id = path.rsplit("/", 1)[-1].rsplit("_", 1)[0]

        async def handle() -> web.StreamResponse:
            if not self._bearer_ok(request):  # GET /v1/audio takes the header only
                return _detail(401)
            found = self._files.get(path)
            if found is None:
                return _detail(404, "File not found")
            duration, fmt = found
            audio = await asyncio.to_thread(make_audio, duration, fmt)
            return web.Response(body=audio, content_type=AUDIO_CONTENT_TYPES[fmt])

        fault = self.faults.take("download", [task_id])
        return await self._answer(request, fault, handle, _html_page)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        async def handle() -> web.StreamResponse:
            data: dict[str, Any] = {"status": "ok", "service": "ACE-Step API", "version": "1.0"}
            if self.old_server:  # the published wheel says no more
                return web.json_response(_envelope(data))
            data |= {
                "models_initialized": bool(self.models),
                "llm_initialized": self.lm_model is not None,
                "loaded_model": self.models[0] if self.models else None,
                "loaded_lm_model": self.lm_model,
            }
            return web.json_response(_envelope(data))

        return await self._answer(request, self.faults.take("health"), handle, _malformed)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        if self.models_shape == "openrouter":  # the real OpenRouter route asks for no key
            return web.json_response(openrouter_list(self.models))
        if not self._bearer_ok(request):
            return _detail(401)
        data = inventory(self.models, self.lm_model, self.task_types)
        return web.json_response(_envelope(data))

    async def _model_inventory(self, request: web.Request) -> web.StreamResponse:
        if self.task_types is None:  # a server from before the route
            return _detail(404, "Not Found")
        if not self._bearer_ok(request):
            return _detail(401)
        data = inventory(self.models, self.lm_model, self.task_types)
        return web.json_response(_envelope(data))

    async def _format_input(self, request: web.Request) -> web.StreamResponse:
        body, problem = await self._json_body(request)
        self.format_calls.append(body)
        if problem is not None:
            return problem
        if not self._post_auth_ok(request, body):
            return _detail(401)
        if not isinstance(body, dict):
            return _detail(400, "Body must be a JSON object")
        if self.lm_model is None:
            if self.old_server:
                return _detail(500, "LLM not initialized")
            return _detail(503, "LLM not initialized and lazy loading is disabled")
        return web.json_response(_envelope(format_answer(body, self.lm_writes)))

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        async def handle() -> web.StreamResponse:
            if not self._bearer_ok(request):
                return _detail(401)
            states = [t.state for t in self.tasks.values()]
            data = {
                "jobs": {s: states.count(s) for s in ("queued", "running", "succeeded", "failed")}
                | {"total": len(states)},
                "queue_size": self._queue.qsize(),
                "queue_maxsize": self.max_queue,
                "avg_job_seconds": self._avg_job_seconds(),
            }
            return web.json_response(_envelope(data))

        return await self._answer(request, self.faults.take("stats"), handle, _malformed)

    def _avg_job_seconds(self) -> float:
        if self.avg_job_seconds is not None:
            return self.avg_job_seconds
        if self._run_times:
            return statistics.fmean(self._run_times)
        return self.scaled(5.0)


def _default_runtime(body: dict[str, Any]) -> float:
    return 2.0 + _number(body.get("audio_duration"), 30.0) / 30


def _runtime_of(runtime: Runtime, body: dict[str, Any]) -> float:
    return runtime(body) if callable(runtime) else float(runtime)
