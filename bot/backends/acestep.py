"""A self-hosted ACE-Step 1.5 API server (``uv run acestep-api``), the "engine".

Quirks this class absorbs (``/work/shared/docs/upstreams.md`` §2):

- the server validates no ranges, so :meth:`submit` does (prompt < 512, lyrics < 4096,
  duration 10..600) and raises :class:`PermanentBackendError` itself;
- ``batch_size`` defaults to 2 and ``use_random_seed`` to true upstream, so both are always
  sent explicitly (one take; the caller's seed unless it is -1);
- ``/query_result`` answers many ids in one call, with ``result`` as a JSON *string*; an id
  whose item is missing or unreadable is left out of the answer (transient for that id);
- a failure carries no reason, and an unknown id (e.g. after a restart) reads "queued" for
  ever: only the caller's own deadline can end such a job.

Resubmitting is safe (``resubmit_safe = True``): nothing is billed, and a lost task is simply
run again. Submit errors are still classified honestly (:class:`SubmitUncertain` after a read
timeout or 5xx) so the worker can log what happened.

Poll error policy: the whole call fails with :class:`TransientBackendError` on network errors,
408/429/5xx or an unreadable envelope, and with :class:`PermanentBackendError` on any other 4xx.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from bot.backends._http import (
    envelope_data,
    transport_error,
)
from bot.backends.download import Downloader, normalize_host
from bot.domain import GenerationRequest
from bot.errors import (
    BackendError,
    ConfigError,
    PermanentBackendError,
    SubmitUncertain,
    TransientBackendError,
)
from bot.ports import Capabilities, DownloadedAudio, RemoteState, RemoteStatus, RemoteTask

logger = logging.getLogger(__name__)

SERVICE = "ACE-Step"
PROMPT_LIMIT = 512  # exclusive: the server takes prompts shorter than this
LYRICS_LIMIT = 4096  # exclusive
AUDIO_FORMATS = ("mp3", "wav", "flac")
STATS_TTL = 60.0  # seconds an /v1/stats answer is reused
FAILURE_MESSAGE = "the engine reported a failure"


class AceStepBackend:
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
    # Takes as batch_size, controls as parameters; whether its language model is loaded
    # is not probed yet, so /describe is not offered.
    capabilities = Capabilities(takes_per_task=8, controls_as_parameters=True)
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

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    # ------------------------------------------------------------ submit
    async def submit(self, request: GenerationRequest) -> RemoteTask:
        _validate(request)
        body: dict[str, Any] = {
            "prompt": request.tags,
            "lyrics": request.lyrics,
            "audio_duration": request.duration,
            "batch_size": 1,  # the server's default is 2 takes
            "audio_format": self._audio_format,
            "task_type": "text2music",
            "thinking": self._thinking,
            "use_random_seed": request.seed < 0,
        }
        if request.seed >= 0:
            body["seed"] = request.seed
        if self._inference_steps is not None:
            body["inference_steps"] = self._inference_steps
        try:
            response = await self._http.post(
                f"{self._base_url}/release_task", json=body, headers=self._headers
            )
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
            status = self._status_from(item)
            if status is None:
                logger.warning("acestep poll remote=%s: unreadable item", item.get("task_id"))
                continue
            statuses[str(item["task_id"])] = status
        return statuses

    def _status_from(self, item: Mapping[str, Any]) -> RemoteStatus | None:
        """The item's status, or None when it can't be read (transient for that id)."""
        entries = _entries(item.get("result"))
        try:
            code = int(item.get("status"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        if entries is None:
            return None
        if code == 0:
            running = next((e for e in entries if "progress" in e or "stage" in e), None)
            if running is None or str(running.get("stage", "")).lower() == "queued":
                return RemoteStatus(RemoteState.PENDING)
            return RemoteStatus(
                RemoteState.RUNNING,
                progress=_fraction(running.get("progress")),
                stage=str(running["stage"]) if running.get("stage") else None,
            )
        if code == 1:
            take = next((e for e in entries if isinstance(e.get("file"), str) and e["file"]), None)
            if take is None:
                return RemoteStatus(
                    RemoteState.FAILED,
                    error_code="no_output",
                    error_message="succeeded without an output file",
                )
            return RemoteStatus(
                RemoteState.SUCCEEDED,
                progress=1.0,
                output_url=self._output_url(take["file"]),
                seed_used=_seed(take.get("seed_value")),
            )
        if code == 2:
            return RemoteStatus(
                RemoteState.FAILED, error_code="failed", error_message=FAILURE_MESSAGE
            )
        return None

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


def _validate(request: GenerationRequest) -> None:
    problems = []
    if not request.tags.strip():
        problems.append("the prompt is empty")
    if len(request.tags) >= PROMPT_LIMIT:
        problems.append(f"the prompt must be shorter than {PROMPT_LIMIT} characters")
    if len(request.lyrics) >= LYRICS_LIMIT:
        problems.append(f"the lyrics must be shorter than {LYRICS_LIMIT} characters")
    if not AceStepBackend.min_duration <= request.duration <= AceStepBackend.max_duration:
        problems.append(
            f"the duration must be {AceStepBackend.min_duration}..{AceStepBackend.max_duration} s"
        )
    if request.seed > 2_147_483_647:
        problems.append("the seed is too large")
    if problems:
        raise PermanentBackendError("; ".join(problems), code="invalid_request")


def _entries(result: Any) -> list[dict[str, Any]] | None:
    """``result`` (a JSON string holding a list) as a list of dicts; None if unreadable."""
    if result is None or result == "":
        return []
    if isinstance(result, str):
        try:
            result = json.loads(result)
        except ValueError:
            return None
    if isinstance(result, dict):
        result = [result]
    if not isinstance(result, list):
        return None
    return [entry for entry in result if isinstance(entry, dict)]


def _fraction(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return min(1.0, max(0.0, number)) if math.isfinite(number) else None


def _seed(value: Any) -> int | None:
    """``seed_value`` comes as an int, a string, or "123,456" (one per take)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        first = value.split(",")[0].strip()
        if first.isdigit():
            return int(first)
    return None


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, normalize_host(url.host), port)
