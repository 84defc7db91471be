"""A self-hosted ACE-Step 1.5 API server (``uv run acestep-api``), the "engine".

Quirks this class absorbs (``/work/shared/docs/upstreams.md`` §2):

- the server validates no ranges, so :meth:`submit` does (prompt < 512, lyrics < 4096,
  duration 10..600, 1..8 takes) and raises :class:`PermanentBackendError` itself;
- ``batch_size`` defaults to 2 and ``use_random_seed`` to true upstream, so both are always
  sent explicitly (``batch_size`` = the request's takes; the caller's seed unless it is -1,
  though the published server ignores it: the seeds it reports are the ones that count);
- musical controls are request parameters (``bpm``, ``key_scale``, ``time_signature`` as a
  string, ``vocal_language``), sent only when given: the server fills the rest;
- a song from one sentence (``request.describe``) is ``sample_mode`` + ``sample_query``: the
  5 Hz language model writes caption, lyrics, BPM, key, time signature and length
  (``acestep/api/job_llm_preparation.py``; in sample mode the server *replaces* prompt,
  lyrics, bpm, key, time signature and duration with what the model wrote, keeping only
  ``vocal_language``). Style tags given with it join the query; lyrics given with it turn it
  into ``use_format`` on those lyrics instead (the model polishes what the user wrote and
  keeps the duration and controls given). Either needs the language model: see below;
- ``/query_result`` answers many ids in one call, with ``result`` as a JSON *string*; an id
  whose item is missing or unreadable is left out of the answer (transient for that id);
  a success has one entry per take (:mod:`bot.backends.acestep_results`);
- a failure carries no reason (newer servers: an ``error``), and an unknown id (e.g. after a
  restart) reads "queued" for ever: only the caller's own deadline can end such a job.

An edit (``request.edit``) is a multipart submit with the source file; the result is the whole
song. Which edits the server offers is its default model's ``supported_task_types``, read by the
same probe as the language model (:mod:`bot.backends.acestep_edits`).

Whether the server has its language model (``capabilities.describes``) is probed, never
assumed: ``GET /health`` says ``llm_initialized`` on newer servers; where it does not (the
published wheel), ``POST /format_input`` answers 200 with a language model and 500/503
without. The answer is kept for :data:`LM_KNOWN_TTL` (an unknown one, e.g. the server was
down, for :data:`LM_UNKNOWN_TTL`); reading ``capabilities`` when it is stale starts a probe in
the background, :meth:`refresh_capabilities` runs one now (the shell does at start), and a
describe job probes first if nothing is known. A job whose failure says the model is
missing updates the answer at once. A newer server that loads its model lazily reports
``llm_initialized: false`` until its first use: we count that as "no language model" rather
than promise what may fail.

Resubmitting is safe (``resubmit_safe = True``): nothing is billed, and a lost task is simply
run again. Submit errors are still classified honestly (:class:`SubmitUncertain` after a read
timeout or 5xx) so the worker can log what happened.

Poll error policy: the whole call fails with :class:`TransientBackendError` on network errors,
408/429/5xx or an unreadable envelope, and with :class:`PermanentBackendError` on any other 4xx.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from bot.backends._http import (
    envelope_data,
    json_or_none,
    transport_error,
)
from bot.backends.acestep_edits import (
    check_edit,
    edit_fields,
    form_value,
    offered_edits,
    open_upload,
    server_task_types,
)
from bot.backends.acestep_results import status_from
from bot.backends.download import Downloader, normalize_host
from bot.backends.preparing import NothingToPrepare
from bot.domain import Edit, GenerationRequest
from bot.errors import (
    BackendError,
    ConfigError,
    PermanentBackendError,
    SubmitUncertain,
    TransientBackendError,
)
from bot.ports import Capabilities, DownloadedAudio, RemoteStatus, RemoteTask

logger = logging.getLogger(__name__)

SERVICE = "ACE-Step"
PROMPT_LIMIT = 512  # exclusive: the server takes prompts shorter than this
LYRICS_LIMIT = 4096  # exclusive
AUDIO_FORMATS = ("mp3", "wav", "flac")
STATS_TTL = 60.0  # seconds an /v1/stats answer is reused
MAX_BATCH = 8  # the server's documented batch_size ceiling
LM_KNOWN_TTL = 600.0  # seconds a probe's "has / has no language model" is trusted
LM_UNKNOWN_TTL = 30.0  # seconds before a probe that learned nothing is tried again
# Each probe request's limit: `acejam run` waits for the first probe, and a hung server
# must not hold the bot's start for the whole HTTP timeout (twice).
PROBE_TIMEOUT = 10.0
NO_LM_MESSAGE = "the ACE-Step server has no language model to write a song from a description"


class AceStepBackend(NothingToPrepare):
    name = "acestep"
    min_duration = 10
    max_duration = 600
    max_tags_chars = PROMPT_LIMIT - 1
    max_lyrics_chars = LYRICS_LIMIT - 1
    min_poll_interval = 1.0
    resubmit_safe = True
    polls_in_batches = True
    bills_failed_jobs = False  # nothing is billed at all
    accounts_gpu_seconds = True  # our own GPU: its time goes into usage reports
    moderation_error_codes: frozenset[str] = frozenset()
    uses_webhook = False  # polled: /query_result covers every job in one call

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str = "http://127.0.0.1:8001",
        api_key: str | None = None,
        downloads: Downloader,
        max_concurrency: int = 1,
        audio_format: str = "mp3",
        inference_steps: int | None = None,
        thinking: bool = False,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        if audio_format not in AUDIO_FORMATS:
            raise ConfigError(f"ACE-Step audio_format must be one of {', '.join(AUDIO_FORMATS)}")
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._origin = _origin(httpx.URL(self._base_url))
        self._api_key = api_key or None
        self._downloads = downloads
        self._audio_format = audio_format
        self._inference_steps = inference_steps
        self._thinking = thinking
        self.max_concurrency = max_concurrency
        self._stats: tuple[float, float | None] | None = None  # (fetched at, avg seconds)
        # The language model: True/False once a probe or a job showed it, None unknown.
        self._lm: bool | None = None
        self._lm_checked: float | None = None  # monotonic time of the last answer
        self._probe: asyncio.Task[bool | None] | None = None
        # The default model's supported_task_types once the server said; None: not said.
        self._task_types: frozenset[str] | None = None
        self._probe_timeout = httpx.Timeout(probe_timeout)

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    # ------------------------------------------------------------ capabilities
    @property
    def capabilities(self) -> Capabilities:
        """Takes as ``batch_size``, controls as parameters, edits, and a language model once the
        server has shown one (a stale answer starts a probe in the background)."""
        if self._lm_stale():
            self._probe_soon()
        return Capabilities(
            takes_per_task=MAX_BATCH,
            controls_as_parameters=True,
            describes=self._lm is True,
            edits=offered_edits(self._task_types),
        )

    async def refresh_capabilities(self) -> Capabilities:
        """Probe the server's language model now (one probe at a time) and answer."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._probe_language_model())
        await asyncio.shield(self._probe)
        return self.capabilities

    def _lm_stale(self) -> bool:
        if self._lm_checked is None:
            return True
        ttl = LM_UNKNOWN_TTL if self._lm is None else LM_KNOWN_TTL
        return time.monotonic() - self._lm_checked >= ttl

    def _probe_soon(self) -> None:
        if self._probe is not None and not self._probe.done():
            return
        try:
            self._probe = asyncio.get_running_loop().create_task(self._probe_language_model())
        except RuntimeError:  # read outside the event loop (start-up code): next time
            return

    def _learned(self, loaded: bool | None) -> None:
        if loaded is not None or self._lm is None:
            self._lm = loaded
        self._lm_checked = time.monotonic()

    async def _probe_language_model(self) -> bool | None:
        loaded: bool | None = None
        try:
            loaded = await self._lm_from_health()
            if loaded is None:
                loaded = await self._lm_from_format_input()
            asked = {"headers": self._headers, "timeout": self._probe_timeout}
            found = await server_task_types(self._http, self._base_url, asked)
            self._task_types = found or self._task_types  # kept when a probe learns nothing
        except (httpx.HTTPError, RuntimeError) as exc:
            # RuntimeError: the client closed under a background probe (the process is
            # ending, e.g. a short CLI command): nothing learned, nothing to report.
            logger.warning("acestep language model probe failed: %s", type(exc).__name__)
        except Exception:  # a background task: log, never die silently
            logger.exception("acestep language model probe crashed")
        self._learned(loaded)
        said = "unknown" if loaded is None else "loaded" if loaded else "absent"
        logger.info("acestep language model: %s", said)
        return loaded

    async def _lm_from_health(self) -> bool | None:
        """``llm_initialized`` from ``/health`` (newer servers; never authenticated)."""
        response = await self._http.get(f"{self._base_url}/health", timeout=self._probe_timeout)
        payload = json_or_none(response)
        data = payload.get("data") if isinstance(payload, dict) else None
        said = data.get("llm_initialized") if isinstance(data, dict) else None
        return said if response.status_code == 200 and isinstance(said, bool) else None

    async def _lm_from_format_input(self) -> bool | None:
        """Servers that don't say: ``/format_input`` needs the model (500/503 without it).
        A tiny caption, so a server that has one spends a moment on it."""
        body = {"prompt": "piano", "lyrics": "", "param_obj": "{}"}
        response = await self._http.post(
            f"{self._base_url}/format_input",
            json=body,
            headers=self._headers,
            timeout=self._probe_timeout,
        )
        payload = json_or_none(response)
        code = payload.get("code", 200) if isinstance(payload, dict) else None
        if response.status_code == 200 and code == 200 and isinstance(payload, dict):
            return isinstance(payload.get("data"), dict)
        if response.status_code in (500, 503) or (isinstance(code, int) and code in (500, 503)):
            return False
        return None  # 401, 404 (no such route), ...: this probe can't tell

    # ------------------------------------------------------------ submit
    async def submit(self, request: GenerationRequest) -> RemoteTask:
        _validate(request)
        if request.edit is not None:
            return await self._submit_edit(request, request.edit)
        if request.describe:
            if self._lm is None:
                await self.refresh_capabilities()
            if self._lm is not True:
                raise PermanentBackendError(NO_LM_MESSAGE, code="no_language_model")
        body = {
            **self._common(request),
            "audio_duration": request.duration,
            "task_type": "text2music",
            "thinking": self._thinking,
            **_description(request),
        }
        return await self._release(request, json=body)

    async def _submit_edit(self, request: GenerationRequest, edit: Edit) -> RemoteTask:
        """The source streamed as ``src_audio``, every other field a form value."""
        check_edit(request, edit, self._task_types)
        # No thinking: the engine skips its language model for edits but would demand one.
        fields = {name: form_value(value) for name, value in self._common(request).items()}
        fields |= {"thinking": "false", **edit_fields(edit)}
        upload = await open_upload(fields, Path(edit.source_path))
        try:
            headers = {**self._headers, **upload.headers}
            return await self._release(request, content=upload.body(), headers=headers)
        finally:
            upload.close()

    def _common(self, request: GenerationRequest) -> dict[str, Any]:
        """What a song and an edit both send."""
        body: dict[str, Any] = {
            "prompt": request.tags,
            "lyrics": request.lyrics,
            "batch_size": request.takes,  # the server's default is 2 takes
            "audio_format": self._audio_format,
            "use_random_seed": request.seed < 0,
            **_controls(request),
        }
        if request.seed >= 0:
            body["seed"] = request.seed
        if self._inference_steps is not None:
            body["inference_steps"] = self._inference_steps
        return body

    async def _release(self, request: GenerationRequest, **sent: Any) -> RemoteTask:
        sent.setdefault("headers", self._headers)
        try:
            response = await self._http.post(f"{self._base_url}/release_task", **sent)
        except httpx.TransportError as exc:
            raise transport_error(SERVICE, exc, submitting=True) from None
        data = self._data(response, unclear=SubmitUncertain)
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise SubmitUncertain(f"{SERVICE} accepted the submit but sent no task id")
        position = data.get("queue_position")
        logger.info("acestep submitted remote=%s queue_position=%s", task_id, position)
        return RemoteTask(
            remote_id=task_id,
            seed_used=request.seed if request.seed >= 0 else None,
            queue_position=position if isinstance(position, int) else None,
        )

    # ------------------------------------------------------------ poll
    async def poll(self, remote_ids: Sequence[str]) -> Mapping[str, RemoteStatus]:
        ids = list(dict.fromkeys(remote_ids))
        if not ids:
            return {}
        try:
            response = await self._http.post(
                f"{self._base_url}/query_result", json={"task_id_list": ids}, headers=self._headers
            )
        except httpx.TransportError as exc:
            raise transport_error(SERVICE, exc, submitting=False) from None
        items = self._data(response, unclear=TransientBackendError)
        if not isinstance(items, list):
            raise TransientBackendError(f"{SERVICE} sent an unreadable poll answer")
        wanted = set(ids)
        statuses: dict[str, RemoteStatus] = {}
        for item in items:
            if not isinstance(item, dict) or str(item.get("task_id")) not in wanted:
                continue
            status = status_from(item, self._output_url)
            if status is None:
                logger.warning("acestep poll remote=%s: unreadable item", item.get("task_id"))
                continue
            statuses[str(item["task_id"])] = status
            self._learn_from(status)
        return statuses

    def _learn_from(self, status: RemoteStatus) -> None:
        """A job whose failure says the language model is missing: stop offering it now."""
        if status.error_code == "no_language_model":
            self._learned(False)

    def _output_url(self, file: str) -> str:
        if file.startswith(("http://", "https://")):
            return file  # the download policy decides whether we fetch it
        return f"{self._base_url}/{file.lstrip('/')}"

    # ------------------------------------------------------------ download / estimate
    async def download(self, output_url: str, dest: Path, *, max_bytes: int) -> DownloadedAudio:
        try:
            same_origin = _origin(httpx.URL(output_url)) == self._origin
        except httpx.InvalidURL:
            same_origin = False
        # The key is only for our own server; stream_to_file also drops it on redirects.
        headers = self._headers if same_origin else {}
        return await self._downloads.fetch(output_url, dest, max_bytes=max_bytes, headers=headers)

    async def expected_seconds(self, request: GenerationRequest) -> float | None:
        """``avg_job_seconds`` from ``/v1/stats``, reused for a minute; None when unknown."""
        now = time.monotonic()
        if self._stats is not None and now - self._stats[0] < STATS_TTL:
            return self._stats[1]
        value: float | None = None
        try:
            response = await self._http.get(f"{self._base_url}/v1/stats", headers=self._headers)
            response.raise_for_status()
            payload = response.json()
            stats = payload.get("data", payload)
            value = float(stats["avg_job_seconds"])
        except (httpx.HTTPError, ValueError, TypeError, KeyError, AttributeError) as exc:
            logger.debug("acestep stats unavailable: %s", type(exc).__name__)
        if value is not None and not (math.isfinite(value) and value > 0):
            value = None
        self._stats = (now, value)  # failures are cached too: don't hammer a struggling server
        return value

    # ------------------------------------------------------------ envelope
    def _data(self, response: httpx.Response, *, unclear: type[BackendError]) -> Any:
        return envelope_data(response, service=SERVICE, secret=self._api_key, unclear=unclear)


def _controls(request: GenerationRequest) -> dict[str, Any]:
    """The musical controls given, as the server's parameters (unset ones: its own choice)."""
    controls = request.controls
    params: dict[str, Any] = {}
    if controls.bpm is not None:
        params["bpm"] = controls.bpm
    if controls.key_scale is not None:
        params["key_scale"] = controls.key_scale
    if controls.time_signature is not None:
        params["time_signature"] = str(controls.time_signature)  # a string upstream
    if controls.vocal_language is not None:
        params["vocal_language"] = controls.vocal_language
    return params


def _description(request: GenerationRequest) -> dict[str, Any]:
    """A song from one sentence: the language model writes it (sample mode), or, when the
    user wrote lyrics too, polishes the tags and lyrics given (``use_format``)."""
    if not request.describe:
        return {}
    if request.lyrics.strip():
        # The tags lead (they are the caption to polish); the sentence follows if it fits.
        return {"prompt": _joined(request.tags, ". ", request.describe), "use_format": True}
    # Sample mode drops the prompt, so style tags given with a description go into it.
    return {"sample_mode": True, "sample_query": _query(request)}


def _query(request: GenerationRequest) -> str:
    if not request.tags:
        return request.describe
    return _joined(request.describe, " (style: ", request.tags, ")")


def _joined(lead: str, separator: str, extra: str, end: str = "") -> str:
    """``lead`` whole, then as much of ``extra`` as the prompt limit leaves (cut at a comma or
    space): both are limited to the prompt's length on their own, not together, and the
    extra part is a hint the language model can do without."""
    if not lead:
        return extra
    room = PROMPT_LIMIT - 1 - len(lead) - len(separator) - len(end)
    if len(extra) > room:
        cut = extra[: max(room, 0)]
        extra = cut[: max(cut.rfind(","), cut.rfind(" "), 0)].rstrip(" ,")
    return f"{lead}{separator}{extra}{end}" if extra else lead


def _validate(request: GenerationRequest) -> None:
    problems = []  # an edit's own: check_edit (its prompt may be empty, its source sizes it)
    song = request.edit is None
    if song and not request.tags.strip() and not request.describe.strip():
        problems.append("the prompt is empty")
    if len(request.tags) >= PROMPT_LIMIT:
        problems.append(f"the prompt must be shorter than {PROMPT_LIMIT} characters")
    if len(request.describe) >= PROMPT_LIMIT:
        problems.append(f"the description must be shorter than {PROMPT_LIMIT} characters")
    if not 1 <= request.takes <= MAX_BATCH:
        problems.append(f"takes must be 1..{MAX_BATCH}")
    if len(request.lyrics) >= LYRICS_LIMIT:
        problems.append(f"the lyrics must be shorter than {LYRICS_LIMIT} characters")
    if song and not AceStepBackend.min_duration <= request.duration <= AceStepBackend.max_duration:
        problems.append(
            f"the duration must be {AceStepBackend.min_duration}..{AceStepBackend.max_duration} s"
        )
    if request.seed > 2_147_483_647:
        problems.append("the seed is too large")
    if problems:
        raise PermanentBackendError("; ".join(problems), code="invalid_request")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, normalize_host(url.host), port)
