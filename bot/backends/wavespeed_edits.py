"""WaveSpeed's ACE-Step edit models and its media upload (upstreams.md §1, "Edit models and
uploads").

An edit is two requests: the source file goes to ``POST /api/v3/media/upload/binary``, then the
edit model gets its ``download_url`` as ``audio``. The upload bills nothing, so it never raises
:class:`SubmitUncertain`: a failed upload is transient (network, 429, 5xx, no URL in the answer)
or permanent (401/403, a refused file) like any request that created nothing, and the worker may
simply try again. Only the prediction's submit after it is billed, and it keeps the song
submit's never-twice rule (bot/backends/wavespeed.py).

WaveSpeed has no edit model for ACE-Step 1.5; these three run the earlier ACE-Step, so the card
names them (``Capabilities.edit_models``).
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from bot.backends._http import envelope_data, transport_error
from bot.config import Settings
from bot.controls import tags_with_controls
from bot.domain import Edit, GenerationRequest, Task
from bot.errors import PermanentBackendError, TransientBackendError
from bot.pricing import Prices

SERVICE = "WaveSpeed"
OUTPAINT = "wavespeed-ai/ace-step/audio-outpaint"
INPAINT = "wavespeed-ai/ace-step/audio-inpaint"
AUDIO_TO_AUDIO = "wavespeed-ai/ace-step/audio-to-audio"
# The models whose request schema this module writes, and the edit each one makes.
EDIT_MODELS: Mapping[str, Task] = {
    OUTPAINT: Task.EXTEND,
    INPAINT: Task.REPAINT,
    AUDIO_TO_AUDIO: Task.REMIX,
}
UPLOAD_PATH = "/api/v3/media/upload/binary"
# Each of extend_before/after_duration and the inpaint times is documented as 0..240 s.
SIDE_MAX = 240.0
# The formats bot/sources.py keeps, named the same wherever the system's MIME list is thin.
_AUDIO_TYPES = {
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".m4a": "audio/mp4",
}


def models_by_task(models: Iterable[str]) -> dict[Task, str]:
    """Task → model for the edit models named (WAVESPEED_EDIT_MODELS). A name this module has
    no schema for is a configuration error, said once at start rather than at each edit."""
    chosen: dict[Task, str] = {}
    for name in models:
        model = name.strip().strip("/")
        if not model:
            continue
        task = EDIT_MODELS.get(model)
        if task is None:
            raise ValueError(
                f"{model!r} is not an edit model this bot knows; known: {', '.join(EDIT_MODELS)}"
            )
        chosen[task] = model
    return chosen


def check_edit(request: GenerationRequest) -> Edit:
    """The request's edit, if its model's schema can say it; else the reason, before anything
    is uploaded or billed."""
    edit = request.edit
    if edit is None:
        raise ValueError("not an edit")
    if edit.task == Task.EXTEND and not 0 < edit.seconds <= SIDE_MAX:
        raise PermanentBackendError(
            f"{SERVICE}'s outpaint model adds 1 to {SIDE_MAX:.0f} s, not {edit.seconds}",
            code="invalid_request",
        )
    if edit.task == Task.REPAINT:
        _section(edit)  # raises when a bound is out of its reach
    return edit


def edit_body(request: GenerationRequest, audio_url: str) -> dict[str, Any]:
    """The JSON the edit model reads (the model itself is ``models_by_task``'s choice)."""
    edit = check_edit(request)
    tags = tags_with_controls(request.tags, request.controls)
    if edit.task == Task.EXTEND:
        added = float(edit.seconds)
        return {
            "audio": audio_url,
            "tags": tags,
            "extend_before_duration": added if edit.at_start else 0.0,
            "extend_after_duration": 0.0 if edit.at_start else added,
            "lyrics": request.lyrics,
            "seed": request.seed,
        }
    if edit.task == Task.REPAINT:
        (start, start_from), (end, end_from) = _section(edit)
        return {
            "audio": audio_url,
            "tags": tags,
            "start_time": start,
            "start_time_relative_to": start_from,
            "end_time": end,
            "end_time_relative_to": end_from,
            "lyrics": request.lyrics,
            "seed": request.seed,
        }
    # REMIX: the model wants the source's style too. The request's tags are the new style,
    # inherited from the parent when the user named none; our Edit carries no separate copy
    # of the parent's tags, so they stand in for it (the model only reads them as a hint).
    # It has no strength field: Edit.strength is not WaveSpeed's to honour.
    return {
        "audio": audio_url,
        "original_tags": tags,
        "tags": tags,
        "edit_mode": "remix",
        "original_lyrics": "",
        "lyrics": request.lyrics,
        "seed": request.seed,
    }


def _section(edit: Edit) -> tuple[tuple[float, str], tuple[float, str]]:
    """Each bound as (seconds, "start" | "end"): counted from the start where it is within
    240 s of it, else back from the end, as the inpaint model's schema allows."""
    if edit.start is None or edit.end is None or not 0 <= edit.start < edit.end:
        raise PermanentBackendError(
            "a repaint needs a section (start < end)", code="invalid_request"
        )
    bounds = []
    for at in (edit.start, edit.end):
        from_end = max(0.0, edit.source_seconds - at)
        if at <= SIDE_MAX:
            bounds.append((round(at, 3), "start"))
        elif from_end <= SIDE_MAX:
            bounds.append((round(from_end, 3), "end"))
        else:
            raise PermanentBackendError(
                f"{SERVICE}'s inpaint model reaches {SIDE_MAX:.0f} s from either end; "
                f"{at:.0f} s into a {edit.source_seconds:.0f} s track is beyond it",
                code="invalid_request",
            )
    return bounds[0], bounds[1]


async def upload_source(http: httpx.AsyncClient, *, base_url: str, api_key: str, path: Path) -> str:
    """Upload a source file; its URL for the edit model. Never :class:`SubmitUncertain`:
    nothing billed exists until the prediction's submit."""
    try:
        content = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise PermanentBackendError(
            "the edit's source file is gone", code="source_missing"
        ) from None
    # A neutral name: the stored file's own name is ours, not WaveSpeed's business.
    suffix = path.suffix.lower() or ".bin"
    kind = _AUDIO_TYPES.get(suffix) or mimetypes.guess_type(f"source{suffix}")[0]
    try:
        response = await http.post(
            f"{base_url}{UPLOAD_PATH}",
            files={"file": (f"source{suffix}", content, kind or "application/octet-stream")},
            headers={"Authorization": f"Bearer {api_key}"},
        )
    except httpx.TransportError as exc:
        raise transport_error(SERVICE, exc, submitting=False) from None
    data = envelope_data(response, service=SERVICE, secret=api_key, unclear=TransientBackendError)
    # The current docs answer download_url; an older page answers url.
    url = data.get("download_url") or data.get("url") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise TransientBackendError(f"{SERVICE} answered the upload without a file URL")
    return url


def wavespeed_prices(settings: Settings, edit_models: Mapping[Task, str]) -> Prices:
    """The song model's price and each edit's, by the model it runs on (one setting each)."""
    by_model = {
        OUTPAINT: settings.wavespeed_outpaint_price_per_second,
        INPAINT: settings.wavespeed_inpaint_price_per_second,
        AUDIO_TO_AUDIO: settings.wavespeed_audio_to_audio_price_per_second,
    }
    song = settings.wavespeed_price_per_second
    return Prices(song, {task: by_model.get(model, song) for task, model in edit_models.items()})
