"""A loopback WaveSpeed API (``wavespeed-ai/ace-step-1.5``) speaking the real wire format.

    async with FakeWaveSpeed(time_scale=0.05, api_key="ws-test-key") as fake:
        async with Downloader(DownloadPolicy(fake.base_url)) as downloads:
            backend = WaveSpeedBackend(
                http, api_key="ws-test-key", base_url=fake.base_url, downloads=downloads
            )

Routes (``/work/shared/docs/upstreams.md`` §1):

- ``POST /api/v3/wavespeed-ai/ace-step-1.5`` (Bearer): validates ``tags`` (required, non-empty),
  ``duration`` (5..240, default 60), ``seed`` (-1..2147483647), ``lyrics`` (string); answers the
  envelope ``{"code": 200, "message": "success", "data": <prediction>}``. ``?webhook=<url>``: the
  bare prediction is POSTed there, signed, when the job ends.
- ``GET /api/v3/predictions/{id}/result`` (Bearer): the prediction; 404 envelope if unknown.
  A failed job is still HTTP 200 / code 200 with ``status: "failed"`` and ``error``.
- ``GET /predictions/{id}/1.{ext}`` on the *CDN host* (no auth): real audio of the asked
  duration. The real service answers from ``api.wavespeed.ai`` and points ``outputs[0]`` at
  ``https://<dist>.cloudfront.net/predictions/<id>/1.mp3``, another host name; so the fake's
  outputs say ``localhost`` where its API says ``127.0.0.1`` (``cdn_url``), and asking for a file
  under the API's host name gets the 404 an API would give.
- ``GET /api/v3/webhook/secret`` → ``data.secret``; ``GET /api/v3/balance`` → ``data.balance``.
- Edits (:mod:`tests.fakes.wavespeed_edits`): ``POST /api/v3/media/upload/binary`` (multipart
  ``file``; not audio: 400, over 50 MB: 413) answers ``data.download_url`` on the CDN host, where
  ``GET /media/{id}/{filename}`` serves the file back (the API host gives a 404); the three edit
  models ``POST /api/v3/wavespeed-ai/ace-step/audio-{outpaint,inpaint,to-audio}`` check their
  fields (400 with the reason) and make audio as long as the source (plus what an outpaint
  adds). An ``audio`` URL that is not one of the fake's uploads, or an inpaint section outside
  the source, makes a prediction that fails, as a fetch or run would upstream.

A job is ``created`` for one nominal second (or half its runtime if shorter), then
``processing``, then ``completed``/``failed`` after ``runtime`` nominal seconds, all times
``time_scale``.

Knobs (attributes, change them any time): ``runtime`` (seconds or ``f(body) -> seconds``;
default ``2 + duration / 10``), ``output_format`` ("mp3" | "wav" | "flac", read when a job
completes), ``balance``. Fault routes: ``"submit"`` (songs and edits), ``"poll"``, ``"download"``,
``"secret"``, ``"balance"``, ``"upload"``, ``"media"``; job faults: ``fail``, ``error_code``, ``fail_status``, ``nsfw``, ``hang``,
``output_url``, ``output_as_object``, ``runtime`` (see :mod:`tests.fakes.backend_common`).

Records: ``submits`` (every song JSON body received, faulted ones included),
``edit_submits`` ((model, body) per edit submit, likewise), ``uploads`` (id → :class:`Upload`,
each file accepted), ``upload_requests`` (count, faulted ones included), ``predictions``
(id → :class:`Prediction`), ``polls`` ((id, monotonic time) per poll request), ``completed_at``
(id → monotonic time the job ended, failed ones too), ``downloads`` (id per output request),
``webhook_deliveries``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import av
from aiohttp import web

from tests.fakes.audio import make_audio, probe_audio
from tests.fakes.backend_common import AUDIO_CONTENT_TYPES, BackendFaults, JobFault, Runtime
from tests.fakes.common import Fault, LoopbackServer, answer
from tests.fakes.wavespeed_edits import (
    EDIT_MODELS,
    INPAINT,
    UPLOAD_MAX_BYTES,
    Upload,
    output_seconds,
    section_problem,
    validate_edit,
)

SEED_MAX = 2_147_483_647
CDN_HOST = "localhost"  # resolves to the loopback address the API listens on
TERMINAL = frozenset({"completed", "failed", "cancelled", "timeout", "deleted"})


def sign_webhook(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` header value WaveSpeed sends (``v3,<hex>``)."""
    key = secret.removeprefix("whsec_").encode()
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v3," + hmac.new(key, signed, hashlib.sha256).hexdigest()


@dataclass
class WebhookDelivery:
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None  # None: the POST itself failed


@dataclass
class Prediction:
    id: str
    body: dict[str, Any]
    model: str
    base_url: str
    fault: JobFault | None
    webhook: str | None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "created"
    error: str = ""
    outputs: list[Any] = field(default_factory=list)
    nsfw: list[bool] = field(default_factory=list)
    inference_ms: int | None = None
    output_format: str = "mp3"
    seconds: float | None = None  # an edit's output length (a song's is its duration)
    problem: str | None = None  # an edit that will fail: why

    @property
    def duration(self) -> float:
        return self.seconds if self.seconds is not None else float(self.body.get("duration", 60))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "outputs": self.outputs,
            "urls": {"get": f"{self.base_url}/api/v3/predictions/{self.id}/result"},
            "has_nsfw_contents": self.nsfw,
            "error": self.error,
            "timings": {"inference": self.inference_ms} if self.inference_ms is not None else {},
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
        }


def _envelope(data: Any, code: int = 200, message: str = "success") -> dict[str, Any]:
    return {"code": code, "message": message, "data": data}


def _error(status: int, message: str | None = None) -> web.Response:
    text = message or {
        400: "invalid request",
        401: "Unauthorized: invalid or inactive API key",
        403: "Forbidden: account suspended",
        404: "not found",
        429: "Too many requests: rate limit exceeded",
    }.get(status, "internal server error")
    return web.json_response(_envelope(None, status, text), status=status)


def _cdn_denied() -> web.Response:
    # CloudFront in front of a private S3 bucket: a missing object is a 403 with S3's XML.
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        "<Message>Access Denied</Message></Error>"
    )
    return web.Response(status=403, text=body, content_type="application/xml")


def _fault_error(fault: Fault) -> web.Response:
    return _error(fault.status or 500, fault.message)


def _malformed() -> web.Response:
    return web.Response(
        status=200,
        body=b'{"code": 200, "message": "success", "data": {"id": ',
        content_type="application/json",
    )


def _html_page() -> web.Response:
    return web.Response(
        status=200, text="<html><body>Gateway page</body></html>", content_type="text/html"
    )


class FakeWaveSpeed(LoopbackServer):
    def __init__(
        self,
        time_scale: float = 0.05,
        api_key: str = "ws-test-key",
        *,
        model: str = "wavespeed-ai/ace-step-1.5",
        runtime: Runtime | None = None,
        output_format: str = "mp3",
        webhook_secret: str = "whsec_fake-webhook-secret",
        balance: float = 10.0,
    ) -> None:
        # Room for an upload over the documented limit, so the fake itself answers its 413.
        super().__init__(time_scale, client_max_size=2 * UPLOAD_MAX_BYTES)
        self.api_key = api_key
        self.model = model
        self.runtime: Runtime = runtime if runtime is not None else _default_runtime
        self.output_format = output_format
        self.webhook_secret = webhook_secret
        self.balance = balance
        self.faults = BackendFaults(
            ("submit", "poll", "download", "secret", "balance", "upload", "media")
        )
        self.submits: list[Any] = []
        self.edit_submits: list[tuple[str, Any]] = []
        self.uploads: dict[str, Upload] = {}
        self.upload_requests = 0
        self.predictions: dict[str, Prediction] = {}
        self.polls: list[tuple[str, float]] = []
        self.completed_at: dict[str, float] = {}
        self.downloads: list[str] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._finished: dict[str, asyncio.Event] = {}
        self._session: aiohttp.ClientSession | None = None
        router = self.app.router
        router.add_post(f"/api/v3/{model}", self._submit)
        router.add_get("/api/v3/predictions/{id}/result", self._poll)
        router.add_get("/predictions/{id}/{name}", self._download)
        router.add_get("/api/v3/webhook/secret", self._secret)
        router.add_get("/api/v3/balance", self._balance)
        router.add_post("/api/v3/media/upload/binary", self._upload)
        router.add_get("/media/{id}/{name}", self._media)
        for edit_model in EDIT_MODELS:
            router.add_post(f"/api/v3/{edit_model}", self._edit_route(edit_model))

    async def close(self) -> None:
        await super().close()
        if self._session is not None:
            await self._session.close()

    # ------------------------------------------------------------ helpers for tests
    async def wait_finished(self, prediction_id: str, within: float = 5.0) -> Prediction:
        """Wait until the job ended upstream (completed or failed)."""
        await asyncio.wait_for(self._finished[prediction_id].wait(), within)
        return self.predictions[prediction_id]

    @property
    def cdn_url(self) -> str:
        """Where outputs live: the same loopback server under another host name."""
        return self.base_url.replace("://127.0.0.1:", f"://{CDN_HOST}:")

    def output_url(self, prediction_id: str, fmt: str | None = None) -> str:
        return f"{self.cdn_url}/predictions/{prediction_id}/1.{fmt or self.output_format}"

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

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.api_key}"

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        self.submits.append(body)

        async def handle() -> web.StreamResponse:
            if not self._authorized(request):
                return _error(401)
            problem = _validate(body)
            if problem:
                return _error(400, problem)
            prediction = self._create(body, request.query.get("webhook"))
            return web.json_response(_envelope(prediction.to_json()))

        fault = self.faults.take("submit")
        return await self._answer(request, fault, handle, _malformed)

    def _create(
        self,
        body: dict[str, Any],
        webhook: str | None,
        *,
        model: str | None = None,
        seconds: float | None = None,
        problem: str | None = None,
    ) -> Prediction:
        prediction = Prediction(
            id=uuid.uuid4().hex,
            body=body,
            model=model or self.model,
            base_url=self.base_url,
            fault=self.faults.take_job(),
            webhook=webhook,
            seconds=seconds,
            problem=problem,
        )
        self.predictions[prediction.id] = prediction
        self._finished[prediction.id] = asyncio.Event()
        self.spawn(self._run(prediction))
        return prediction

    async def _run(self, p: Prediction) -> None:
        fault = p.fault or JobFault(times=None)
        nominal = fault.runtime if fault.runtime is not None else _runtime_of(self.runtime, p.body)
        total = self.scaled(nominal)
        started = time.monotonic()
        # Render the output while the job "runs", as the real service has its file ready
        # at completion: a slow encode on a busy machine must not stall the download.
        rendering = asyncio.ensure_future(
            asyncio.to_thread(make_audio, max(p.duration, 1.0), self.output_format)
        )
        await self.sleep(min(self.scaled(1.0), total / 2))
        p.status = "processing"
        if fault.hang:
            await self.closing.wait()
            return
        await self.sleep(total - (time.monotonic() - started))
        if self.closing.is_set():
            return
        p.inference_ms = round((time.monotonic() - started) * 1000)
        if p.problem:
            p.status, p.error = "failed", p.problem
        elif fault.fail:
            p.status = fault.fail_status
            message = fault.fail if isinstance(fault.fail, str) else "generation failed"
            p.error = f"{message} (code {fault.error_code})" if fault.error_code else message
        else:
            await rendering
            p.status = "completed"
            p.output_format = self.output_format
            url = fault.output_url or self.output_url(p.id, p.output_format)
            p.outputs = [{"url": url}] if fault.output_as_object else [url]
            p.nsfw = [fault.nsfw]
        self.completed_at[p.id] = time.monotonic()
        self._finished[p.id].set()
        if p.webhook:
            await self._send_webhook(p)

    async def _send_webhook(self, p: Prediction) -> None:
        assert p.webhook is not None
        body = json.dumps(p.to_json()).encode()
        webhook_id = f"msg_{uuid.uuid4().hex}"
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": sign_webhook(self.webhook_secret, webhook_id, timestamp, body),
        }
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        status: int | None = None
        try:
            async with self._session.post(p.webhook, data=body, headers=headers) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = None
        self.webhook_deliveries.append(WebhookDelivery(p.webhook, headers, body, status))

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        prediction_id = request.match_info["id"]
        self.polls.append((prediction_id, time.monotonic()))

        async def handle() -> web.StreamResponse:
            if not self._authorized(request):
                return _error(401)
            prediction = self.predictions.get(prediction_id)
            if prediction is None:
                return _error(404, "prediction not found")
            return web.json_response(_envelope(prediction.to_json()))

        fault = self.faults.take("poll", [prediction_id])
        return await self._answer(request, fault, handle, _malformed)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        prediction_id = request.match_info["id"]
        number, _, ext = request.match_info["name"].partition(".")
        if request.host.partition(":")[0] != CDN_HOST:
            return _error(404, "not found")  # the API host serves no files
        self.downloads.append(prediction_id)

        async def handle() -> web.StreamResponse:
            prediction = self.predictions.get(prediction_id)
            if (
                number != "1"
                or prediction is None
                or prediction.status != "completed"
                or ext not in AUDIO_CONTENT_TYPES
            ):
                return _cdn_denied()
            audio = await asyncio.to_thread(make_audio, prediction.duration, ext)
            return web.Response(body=audio, content_type=AUDIO_CONTENT_TYPES[ext])

        fault = self.faults.take("download", [prediction_id])
        return await self._answer(request, fault, handle, _html_page)

    async def _secret(self, request: web.Request) -> web.StreamResponse:
        async def handle() -> web.StreamResponse:
            if not self._authorized(request):
                return _error(401)
            return web.json_response(_envelope({"secret": self.webhook_secret}))

        return await self._answer(request, self.faults.take("secret"), handle, _malformed)

    async def _balance(self, request: web.Request) -> web.StreamResponse:
        async def handle() -> web.StreamResponse:
            if not self._authorized(request):
                return _error(401)
            return web.json_response(_envelope({"balance": self.balance}))

        return await self._answer(request, self.faults.take("balance"), handle, _malformed)

    # ------------------------------------------------------------ edits
    def _edit_route(self, model: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def route(request: web.Request) -> web.StreamResponse:
            return await self._submit_edit(request, model)

        return route

    async def _submit_edit(self, request: web.Request, model: str) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        self.edit_submits.append((model, body))

        async def handle() -> web.StreamResponse:
            if not self._authorized(request):
                return _error(401)
            problem = validate_edit(model, body)
            if problem:
                return _error(400, problem)
            upload = self._upload_at(body["audio"])
            failure: str | None
            if upload is None:
                seconds, failure = 0.0, "failed to download the audio from its URL"
            else:
                seconds = output_seconds(model, body, upload.seconds)
                failure = section_problem(body, upload.seconds) if model == INPAINT else None
            prediction = self._create(
                body, request.query.get("webhook"), model=model, seconds=seconds, problem=failure
            )
            return web.json_response(_envelope(prediction.to_json()))

        return await self._answer(request, self.faults.take("submit"), handle, _malformed)

    def _upload_at(self, url: str) -> Upload | None:
        prefix = f"{self.cdn_url}/media/"
        if not url.startswith(prefix):
            return None
        upload_id, _, name = url.removeprefix(prefix).partition("/")
        upload = self.uploads.get(upload_id)
        return upload if upload is not None and upload.filename == name else None

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        self.upload_requests += 1

        async def handle() -> web.StreamResponse:
            if not self._authorized(request):
                return _error(401)
            if (request.content_length or 0) > UPLOAD_MAX_BYTES:
                return _error(413, "File too large")
            if not request.content_type.startswith("multipart/"):
                return _error(400, "file is required")
            reader = await request.multipart()
            async for part in reader:
                if isinstance(part, aiohttp.BodyPartReader) and part.name == "file":
                    content = await part.read(decode=False)
                    declared = part.headers.get("Content-Type", "")
                    return await self._accept(bytes(content), part.filename or "file", declared)
            return _error(400, "file is required")

        return await self._answer(request, self.faults.take("upload"), handle, _malformed)

    async def _accept(self, content: bytes, filename: str, declared: str) -> web.StreamResponse:
        if len(content) > UPLOAD_MAX_BYTES:
            return _error(413, "File too large")
        try:
            seconds, _rate, codec = await asyncio.to_thread(probe_audio, content)
        except (av.FFmpegError, IndexError, ZeroDivisionError):
            return _error(400, "Invalid file or format not supported")
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename) or "file"
        kind = {"mp3": "audio/mpeg", "flac": "audio/flac"}.get(codec, "audio/wav")
        upload = Upload(uuid.uuid4().hex, name, content, kind, seconds, declared)
        self.uploads[upload.id] = upload
        data = {
            "type": "audio",
            "download_url": f"{self.cdn_url}/media/{upload.id}/{name}",
            "filename": name,
            "size": len(content),
        }
        return web.json_response(_envelope(data))

    async def _media(self, request: web.Request) -> web.StreamResponse:
        if request.host.partition(":")[0] != CDN_HOST:
            return _error(404, "not found")  # the API host serves no files

        async def handle() -> web.StreamResponse:
            upload = self.uploads.get(request.match_info["id"])
            if upload is None or upload.filename != request.match_info["name"]:
                return _cdn_denied()
            return web.Response(body=upload.content, content_type=upload.content_type)

        fault = self.faults.take("media", [request.match_info["id"]])
        return await self._answer(request, fault, handle, _html_page)


def _default_runtime(body: dict[str, Any]) -> float:
    return 2.0 + float(body.get("duration", 60)) / 10


def _runtime_of(runtime: Runtime, body: dict[str, Any]) -> float:
    return runtime(body) if callable(runtime) else float(runtime)


def _validate(body: Any) -> str | None:
    """The 400 message for an invalid submit body, or None."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    tags = body.get("tags")
    if not isinstance(tags, str) or not tags.strip():
        return "tags is required"
    if not isinstance(body.get("lyrics", ""), str):
        return "lyrics must be a string"
    duration = body.get("duration", 60)
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not 5 <= duration <= 240
    ):
        return "duration must be between 5 and 240"
    seed = body.get("seed", -1)
    if isinstance(seed, bool) or not isinstance(seed, int) or not -1 <= seed <= SEED_MAX:
        return f"seed must be between -1 and {SEED_MAX}"
    return None
