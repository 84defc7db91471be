"""WaveSpeed's hosted ACE-Step 1.5 (``POST /api/v3/wavespeed-ai/ace-step-1.5``).

Billed per song, so a submit whose outcome is unknown is never sent again
(``resubmit_safe = False``): a read timeout, a 5xx or an unreadable answer after the request
left raises :class:`SubmitUncertain`. Only failures where nothing was sent (connect errors) and
429 refusals are :class:`TransientBackendError`.

Polls always use ``{base_url}/api/v3/predictions/{id}/result`` rather than the ``urls.get``
the API hands out: it is the same endpoint, it works for ids recovered after a restart, and it
guarantees the API key only ever goes to ``base_url``.

Edits (extend, repaint, remix) run on WaveSpeed's ACE-Step edit models after an upload of the
source (bot/backends/wavespeed_edits.py); their prediction submit follows the same rule.

Poll error policy: an id whose request failed transiently (network, 429, 5xx, malformed JSON)
is left out of the answer, which the Protocol counts as transient for that id; when *every*
id failed that way the call raises :class:`TransientBackendError` instead, so the worker can
back off as a whole (with ``retry_after`` when given). 401/403 raise
:class:`PermanentBackendError` for the whole call; any other 4xx (404 included) marks that id
FAILED.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from bot.backends._http import (
    envelope_data,
    transport_error,
)
from bot.backends.download import Downloader
from bot.backends.wavespeed_edits import (
    EDIT_MODELS,
    check_edit,
    edit_body,
    models_by_task,
    upload_source,
)
from bot.controls import tags_with_controls
from bot.domain import LYRICS_MAX, TAGS_MAX, Edit, GenerationRequest
from bot.errors import BackendError, PermanentBackendError, SubmitUncertain, TransientBackendError
from bot.ports import Capabilities, DownloadedAudio, RemoteState, RemoteStatus, RemoteTask

logger = logging.getLogger(__name__)

SERVICE = "WaveSpeed"
_FAILED_STATUSES = frozenset({"failed", "cancelled", "canceled", "timeout", "deleted"})
# "... (code 1200)", "code: 5001", "[1200] ..." : 1xxx = fix the request, 5xxx = transient.
_ERROR_CODE = re.compile(r"\bcode\W{0,3}(\d{4})\b|^\s*\[?(\d{4})\]?[\s:\]-]", re.IGNORECASE)


class WaveSpeedBackend:
    name = "wavespeed"
    min_duration = 5
    max_duration = 240
    # WaveSpeed documents no length limits for tags and lyrics: ours (bot/domain.py) apply.
    max_tags_chars = TAGS_MAX
    max_lyrics_chars = LYRICS_MAX
    min_poll_interval = 2.0
    resubmit_safe = False
    polls_in_batches = False
    bills_failed_jobs = False  # WaveSpeed refunds failed generations
    accounts_gpu_seconds = False  # its GPUs, its bill
    moderation_error_codes = frozenset({"1200"})

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str = "https://api.wavespeed.ai",
        model: str = "wavespeed-ai/ace-step-1.5",
        downloads: Downloader,
        max_concurrency: int = 2,
        webhook_url: str | None = None,
        edit_models: Iterable[str] = tuple(EDIT_MODELS),
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        self._model = model.strip("/")
        self._webhook_url = webhook_url
        self._webhook_verifiable = False  # set once webhook_secret() succeeded
        self._downloads = downloads
        self.max_concurrency = max_concurrency
        self._edit_models = models_by_task(edit_models)
        # One take per prediction (the worker submits each take of a request on its own,
        # with its own seed); no control fields, so controls go into the tags as words, and
        # they count against max_tags_chars (bot.controls.read_request); no language model.
        # Edits: those whose model is switched on (WAVESPEED_EDIT_MODELS), named on the card.
        self.capabilities = Capabilities(
            edits=frozenset(self._edit_models), edit_models=dict(self._edit_models)
        )

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    async def refresh_capabilities(self) -> Capabilities:
        return self.capabilities  # fixed: nothing to ask

    # ------------------------------------------------------------ submit
    async def submit(self, request: GenerationRequest) -> RemoteTask:
        """One prediction, whatever ``request.takes`` says (takes are separate submits)."""
        if request.describe:
            raise PermanentBackendError(
                f"{SERVICE}'s model has no language model to write a song from a description",
                code="no_language_model",
            )
        if request.edit is not None:
            return await self._submit_edit(request)
        body = {
            "tags": tags_with_controls(request.tags, request.controls),
            "lyrics": request.lyrics,
            "duration": request.duration,
            "seed": request.seed,
        }
        return await self._predict(self._model, body, request.seed)

    # ------------------------------------------------------------ edits
    def needs_preparing(self, request: GenerationRequest) -> bool:
        """An edit's source must be uploaded before its (billed) prediction is sent."""
        return request.edit is not None and request.edit.uploaded_url is None

    async def prepare(self, request: GenerationRequest) -> GenerationRequest:
        """Upload an edit's source (not billed: a failure here is an ordinary transient or
        permanent error); the request then carries the URL the edit model is sent."""
        if not self.needs_preparing(request):
            return request
        edit = check_edit(request)
        self._edit_model(edit)  # nothing uploaded for an edit that can't be sent
        url = await upload_source(
            self._http, base_url=self._base_url, api_key=self._api_key, path=Path(edit.source_path)
        )
        return replace(request, edit=replace(edit, uploaded_url=url))

    def _edit_model(self, edit: Edit) -> str:
        model = self._edit_models.get(edit.task)
        if model is None:
            raise PermanentBackendError(
                f"{SERVICE} has no {edit.task} model switched on (WAVESPEED_EDIT_MODELS)",
                code="edit_unsupported",
            )
        return model

    async def _submit_edit(self, request: GenerationRequest) -> RemoteTask:
        model = self._edit_model(check_edit(request))
        request = await self.prepare(request)  # the worker has done it already
        assert request.edit is not None and request.edit.uploaded_url is not None
        body = edit_body(request, request.edit.uploaded_url)
        return await self._predict(model, body, request.seed)

    async def _predict(self, model: str, body: Mapping[str, Any], seed: int) -> RemoteTask:
        """Create one (billed) prediction: never sent twice when its outcome is unclear."""
        params = {"webhook": self._webhook_url} if self._webhook_url else None
        try:
            response = await self._http.post(
                f"{self._base_url}/api/v3/{model}",
                json=body,
                params=params,
                headers=self._headers,
            )
        except httpx.TransportError as exc:
            raise transport_error(SERVICE, exc, submitting=True) from None
        data = self._data(response, unclear=SubmitUncertain)
        remote_id = data.get("id")
        if not isinstance(remote_id, str) or not remote_id:
            raise SubmitUncertain(f"{SERVICE} accepted the submit but sent no prediction id")
        logger.info("wavespeed submitted remote=%s model=%s", remote_id, model)
        return RemoteTask(remote_id=remote_id, seed_used=seed if seed >= 0 else None)

    # ------------------------------------------------------------ poll
    async def poll(self, remote_ids: Sequence[str]) -> Mapping[str, RemoteStatus]:
        ids = list(dict.fromkeys(remote_ids))
        outcomes = await asyncio.gather(*(self._poll_one(i) for i in ids), return_exceptions=True)
        statuses: dict[str, RemoteStatus] = {}
        transient: list[TransientBackendError] = []
        for remote_id, outcome in zip(ids, outcomes, strict=True):
            if isinstance(outcome, RemoteStatus):
                statuses[remote_id] = outcome
            elif isinstance(outcome, TransientBackendError):
                logger.warning("wavespeed poll remote=%s: %s", remote_id, outcome.detail)
                transient.append(outcome)
            else:
                raise outcome  # PermanentBackendError (auth) or a bug
        if transient and not statuses:
            raise transient[0]
        return statuses

    async def _poll_one(self, remote_id: str) -> RemoteStatus:
        url = f"{self._base_url}/api/v3/predictions/{remote_id}/result"
        try:
            response = await self._http.get(url, headers=self._headers)
        except httpx.TransportError as exc:
            raise transport_error(SERVICE, exc, submitting=False) from None
        try:
            data = self._data(response, unclear=TransientBackendError)
        except PermanentBackendError as exc:
            if exc.code in ("auth_failed", "forbidden"):
                raise
            # Anything else about this one id (404 above all) won't get better by asking again.
            code = "not_found" if response.status_code == 404 else exc.code
            message = "unknown prediction" if code == "not_found" else exc.detail
            return RemoteStatus(RemoteState.FAILED, error_code=code, error_message=message)
        return _status_from(data)

    # ------------------------------------------------------------ download / estimate
    async def download(self, output_url: str, dest: Path, *, max_bytes: int) -> DownloadedAudio:
        # No Authorization header: output URLs are public CDN links, and the key stays with us.
        return await self._downloads.fetch(output_url, dest, max_bytes=max_bytes)

    async def expected_seconds(self, request: GenerationRequest) -> float | None:
        return None

    # ------------------------------------------------------------ webhooks
    @property
    def uses_webhook(self) -> bool:
        """Are finished jobs pushed to us? Only once the signing secret is known: until then
        no delivery can be verified, and polls at the usual pace carry the jobs."""
        return self._webhook_url is not None and self._webhook_verifiable

    async def webhook_secret(self) -> str:
        """The signing secret for webhook deliveries (without its ``whsec_`` prefix)."""
        try:
            response = await self._http.get(
                f"{self._base_url}/api/v3/webhook/secret", headers=self._headers
            )
        except httpx.TransportError as exc:
            raise transport_error(SERVICE, exc, submitting=False) from None
        secret = self._data(response, unclear=TransientBackendError).get("secret")
        if not isinstance(secret, str) or not secret:
            raise TransientBackendError(f"{SERVICE} sent no webhook secret")
        self._webhook_verifiable = True
        return secret.removeprefix("whsec_")

    @staticmethod
    def parse_webhook(body: Mapping[str, Any]) -> tuple[str, RemoteStatus] | None:
        """(prediction id, status) from a webhook's bare prediction object."""
        remote_id = body.get("id")
        if not isinstance(remote_id, str) or not remote_id:
            return None
        return remote_id, _status_from(body)

    # ------------------------------------------------------------ envelope
    def _data(self, response: httpx.Response, *, unclear: type[BackendError]) -> dict[str, Any]:
        data = envelope_data(response, service=SERVICE, secret=self._api_key, unclear=unclear)
        if not isinstance(data, dict):
            raise unclear(f"{SERVICE} sent an unreadable answer (HTTP {response.status_code})")
        return data


def _status_from(data: Mapping[str, Any]) -> RemoteStatus:
    status = str(data.get("status") or "").strip().lower()
    nsfw = _any_true(data.get("has_nsfw_contents"))
    if status == "completed":
        url = _first_output(data.get("outputs"))
        if url is None:
            return RemoteStatus(
                RemoteState.FAILED,
                error_code="no_output",
                error_message="completed without an output URL",
                nsfw=nsfw,
            )
        return RemoteStatus(RemoteState.SUCCEEDED, output_url=url, nsfw=nsfw, progress=1.0)
    if status in _FAILED_STATUSES:
        message = str(data.get("error") or f"prediction {status}")
        return RemoteStatus(
            RemoteState.FAILED,
            error_code=_error_code(data, message) or status,
            error_message=message,
            nsfw=nsfw,
        )
    if status == "processing":
        return RemoteStatus(RemoteState.RUNNING, stage="processing")
    return RemoteStatus(RemoteState.PENDING)  # "created", and anything new: keep polling


def _first_output(outputs: Any) -> str | None:
    if not isinstance(outputs, list) or not outputs:
        return None
    first = outputs[0]
    if isinstance(first, dict):
        first = first.get("url")
    return first if isinstance(first, str) and first else None


def _any_true(value: Any) -> bool:
    if isinstance(value, list):
        return any(item is True for item in value)
    return value is True


def _error_code(data: Mapping[str, Any], message: str) -> str | None:
    for key in ("error_code", "code"):
        value = data.get(key)
        if isinstance(value, int | str) and str(value).isdigit() and len(str(value)) == 4:
            return str(value)
    match = _ERROR_CODE.search(message)
    if match:
        return match.group(1) or match.group(2)
    return None
