"""The WaveSpeed fake's edit models and media upload: their request schemas as WaveSpeed
documents them (``/work/shared/docs/upstreams.md`` §1, "Edit models and uploads"), written here
independently of the bot's own code so a misread schema shows as a 400, not as agreement.

- ``POST /api/v3/media/upload/binary`` (Bearer, multipart ``file``): the envelope with
  ``data = {type, download_url, filename, size}``; ``download_url`` is on the CDN host.
- ``POST /api/v3/wavespeed-ai/ace-step/audio-outpaint``: ``audio``, ``tags`` required;
  ``extend_before_duration`` (0–240, default 0), ``extend_after_duration`` (0–240, default 30).
- ``.../audio-inpaint``: ``audio``, ``tags``; ``start_time``/``end_time`` (0–240, defaults 0/30),
  ``start_time_relative_to``/``end_time_relative_to`` ("start" | "end").
- ``.../audio-to-audio``: ``audio``, ``original_tags``, ``tags``; ``edit_mode`` ("remix" |
  "lyrics"), ``original_lyrics``.
All take ``lyrics`` (string) and ``seed`` (-1..2147483647).

The output is as long as the source plus what an outpaint adds (an assumption: WaveSpeed does
not document output lengths).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEED_MAX = 2_147_483_647
OUTPAINT = "wavespeed-ai/ace-step/audio-outpaint"
INPAINT = "wavespeed-ai/ace-step/audio-inpaint"
AUDIO_TO_AUDIO = "wavespeed-ai/ace-step/audio-to-audio"
EDIT_MODELS = (OUTPAINT, INPAINT, AUDIO_TO_AUDIO)
UPLOAD_MAX_BYTES = 50 * 1024 * 1024  # audio, per the upload docs
SIDE_MAX = 240


@dataclass(frozen=True)
class Upload:
    id: str
    filename: str
    content: bytes
    content_type: str  # what the fake serves it back as (from its codec)
    seconds: float  # decoded length
    declared_type: str = ""  # the Content-Type of the multipart part as sent


def validate_edit(model: str, body: Any) -> str | None:
    """The 400 message for an invalid edit submit, or None."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    audio = body.get("audio")
    if not isinstance(audio, str) or not audio.startswith(("http://", "https://")):
        return "audio is required (an HTTPS URL or an uploaded file)"
    required = ("original_tags", "tags") if model == AUDIO_TO_AUDIO else ("tags",)
    for name in required:
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"{name} is required"
    for name in ("lyrics", "original_lyrics"):
        if not isinstance(body.get(name, ""), str):
            return f"{name} must be a string"
    seed = body.get("seed", -1)
    if isinstance(seed, bool) or not isinstance(seed, int) or not -1 <= seed <= SEED_MAX:
        return f"seed must be between -1 and {SEED_MAX}"
    if model == OUTPAINT:
        return _numbers(body, ("extend_before_duration", 0), ("extend_after_duration", 30))
    if model == INPAINT:
        for name in ("start_time_relative_to", "end_time_relative_to"):
            if body.get(name, "start") not in ("start", "end"):
                return f"{name} must be one of: start, end"
        return _numbers(body, ("start_time", 0), ("end_time", 30))
    if body.get("edit_mode", "remix") not in ("remix", "lyrics"):
        return "edit_mode must be one of: remix, lyrics"
    return None


def _numbers(body: dict[str, Any], *fields: tuple[str, float]) -> str | None:
    for name, default in fields:
        value = body.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} must be a number"
        if not 0 <= value <= SIDE_MAX:
            return f"{name} must be between 0 and {SIDE_MAX}"
    return None


def section_problem(body: dict[str, Any], source_seconds: float) -> str | None:
    """An inpaint section that is empty or outside the source (the fake's own assumption of
    what the model refuses; it fails the prediction)."""
    start = _at(body.get("start_time", 0), body.get("start_time_relative_to"), source_seconds)
    end = _at(body.get("end_time", 30), body.get("end_time_relative_to"), source_seconds)
    if not 0 <= start < end <= source_seconds + 0.5:
        return f"invalid inpaint range {start:.1f}-{end:.1f}s for {source_seconds:.1f}s of audio"
    return None


def _at(value: float, relative_to: Any, source_seconds: float) -> float:
    return source_seconds - value if relative_to == "end" else value


def output_seconds(model: str, body: dict[str, Any], source_seconds: float) -> float:
    if model == OUTPAINT:
        before = body.get("extend_before_duration", 0)
        after = body.get("extend_after_duration", 30)
        return source_seconds + float(before) + float(after)
    return source_seconds
