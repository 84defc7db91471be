"""The fake ACE-Step server's edits: a multipart ``/release_task`` read like the real server
reads it, and ``/v1/models`` in its two shapes (``/work/shared/docs/upstreams.md`` §2, "Edits").

Stricter than the real server on purpose: it silently ignores a field it does not know and
turns an unreadable number into its default, so a client with a typo would never notice; this
fake answers 400 naming the field instead, so such a client fails its tests.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.audio import probe_audio

# The task types the server knows (acestep/constants.py TASK_TYPES); turbo models do these.
ALL_TASK_TYPES = frozenset(
    {"text2music", "repaint", "cover", "cover-nofsq", "extract", "lego", "complete"}
)
TURBO_TASK_TYPES = ("text2music", "repaint", "cover", "cover-nofsq")
SOURCE_TASKS = frozenset(ALL_TASK_TYPES - {"text2music"})
SOURCE_PARTS = ("src_audio", "ctx_audio")  # the source file; ref_audio is something else
REFERENCE_PARTS = ("reference_audio", "ref_audio")
AUDIO_SUFFIXES = (".mp3", ".wav", ".flac", ".ogg", ".m4a", ".opus", ".aac")
# Field names the server reads (acestep/api/http/release_task_request_builder.py), by type.
FLOAT_FIELDS = frozenset(
    {
        "audio_duration",
        "guidance_scale",
        "repainting_start",
        "repainting_end",
        "audio_cover_strength",
        "cover_noise_strength",
        "repaint_wav_crossfade_sec",
        "repaint_strength",
        "cfg_interval_start",
        "cfg_interval_end",
        "shift",
        "lm_temperature",
        "lm_cfg_scale",
        "lm_top_p",
        "lm_repetition_penalty",
    }
)
INT_FIELDS = frozenset(
    {"bpm", "inference_steps", "batch_size", "repaint_latent_crossfade_frames", "lm_top_k"}
)
BOOL_FIELDS = frozenset(
    {
        "thinking",
        "analysis_only",
        "full_analysis_only",
        "extract_codes_only",
        "sample_mode",
        "use_format",
        "use_random_seed",
        "use_adg",
        "use_tiled_decode",
        "constrained_decoding",
        "constrained_decoding_debug",
        "use_cot_caption",
        "use_cot_language",
        "is_format_caption",
        "allow_lm_batch",
    }
)
TEXT_FIELDS = frozenset(
    {
        "prompt",
        "global_caption",
        "lyrics",
        "sample_query",
        "model",
        "key_scale",
        "time_signature",
        "vocal_language",
        "seed",  # an int, or "1,2" (one per take)
        "instruction",
        "audio_code_string",
        "task_type",
        "chunk_mask_mode",
        "repaint_mode",
        "guidance_variant",
        "guidance_params",
        "infer_method",
        "timesteps",
        "audio_format",
        "lm_model_path",
        "lm_backend",
        "lm_negative_prompt",
        "track_name",
        "track_classes",
        "src_audio_path",
        "reference_audio_path",
        "ai_token",
        "param_obj",
        "metas",
    }
)
KNOWN_FIELDS = FLOAT_FIELDS | INT_FIELDS | BOOL_FIELDS | TEXT_FIELDS


@dataclass
class EditReceived:
    """What one multipart submit carried, as the server read it."""

    task_type: str
    fields: dict[str, str]
    source_bytes: int  # the uploaded file's length (0: none)
    source_name: str | None  # the part's filename
    source_type: str | None  # the part's Content-Type
    source_seconds: float | None  # decoded length; None: not audio the engine could read
    repainting_start: float | None
    repainting_end: float | None
    audio_cover_strength: float | None
    output_seconds: float | None  # how long the result is (None: the job fails)
    at: float = field(default_factory=time.monotonic)


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    return float(text)


async def read_form(request: web.Request) -> EditReceived | web.Response:
    """The multipart form, checked and measured, or a 400 naming the problem."""
    fields: dict[str, str] = {}
    source = b""
    name: str | None = None
    kind: str | None = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or not part.name:
            return _bad("a nested or nameless multipart part")
        if part.name in fields or (part.name in SOURCE_PARTS and name is not None):
            return _bad(f"the field {part.name!r} came twice")
        if part.filename is not None:
            if part.name not in SOURCE_PARTS + REFERENCE_PARTS:
                return _bad(f"no file field is called {part.name!r}")
            data = await part.read(decode=False)
            if part.name in SOURCE_PARTS:
                source, name = bytes(data), part.filename
                kind = part.headers.get("Content-Type")
            continue
        if part.name not in KNOWN_FIELDS:
            return _bad(f"the server reads no field called {part.name!r}")
        fields[part.name] = await part.text()
    problem = _problem(fields, source, name)
    if problem is not None:
        return _bad(problem)
    task_type = fields.get("task_type", "text2music")
    seconds = await asyncio.to_thread(_seconds_of, source) if source else None
    start = _float(fields.get("repainting_start"))
    end = _float(fields.get("repainting_end"))
    return EditReceived(
        task_type=task_type,
        fields=fields,
        source_bytes=len(source),
        source_name=name,
        source_type=kind,
        source_seconds=seconds,
        repainting_start=start,
        repainting_end=end,
        audio_cover_strength=_float(fields.get("audio_cover_strength")),
        output_seconds=output_seconds(task_type, seconds, start, end),
    )


def _problem(fields: dict[str, str], source: bytes, name: str | None) -> str | None:
    for key, value in fields.items():
        try:
            if key in FLOAT_FIELDS:
                float(value)
            elif key in INT_FIELDS:
                int(value)
        except ValueError:
            return f"{key}={value!r} is not a number"
        if key in BOOL_FIELDS and value.strip().lower() not in {"true", "false", "1", "0"}:
            return f"{key}={value!r} is not a boolean"
    task_type = fields.get("task_type", "text2music")
    if task_type not in ALL_TASK_TYPES:
        return f"no task_type {task_type!r}"
    if task_type in SOURCE_TASKS and not source:
        return f"a {task_type} needs the source uploaded as src_audio"
    if source and not (name or "").lower().endswith(AUDIO_SUFFIXES):
        return f"the upload's filename {name!r} has no audio extension (the server keeps it)"
    return None


def _seconds_of(data: bytes) -> float | None:
    try:
        return probe_audio(data)[0]
    except Exception:  # the engine's torchaudio could not read it either
        return None


def output_seconds(
    task_type: str, source: float | None, start: float | None, end: float | None
) -> float | None:
    """The result's length as the engine makes it: a repaint pads the source with what lies
    before 0 or past its end (``prepare_padding_info``), a cover keeps its length."""
    if source is None:
        return None
    if task_type != "repaint":
        return source
    start = start or 0.0
    # `repainting_end if req.repainting_end else -1`: None and 0 both mean the end.
    actual_end = source if not end or end < 0 else end
    return source + max(0.0, -start) + max(0.0, actual_end - source)


def _bad(message: str) -> web.Response:
    return web.json_response({"detail": message}, status=400)


def inventory(
    models: tuple[str, ...], lm_model: str | None, task_types: tuple[str, ...] | None
) -> dict[str, Any]:
    """The model inventory's ``data`` (newer servers' ``/v1/models`` and
    ``/v1/model_inventory``); without task types, the documented entries' shape."""
    default = models[0] if models else None
    entries: list[dict[str, Any]] = []
    for name in models:
        entry: dict[str, Any] = {"name": name, "is_default": name == default}
        if task_types is not None:
            entry |= {"is_loaded": True, "supported_task_types": list(task_types)}
        entries.append(entry)
    data: dict[str, Any] = {"models": entries, "default_model": default}
    if task_types is not None:
        data |= {
            "lm_models": [{"name": lm_model, "is_loaded": True}] if lm_model else [],
            "loaded_lm_model": lm_model,
            "llm_initialized": lm_model is not None,
        }
    return data


def openrouter_list(models: tuple[str, ...]) -> dict[str, Any]:
    """The OpenRouter-style ``/v1/models`` (no envelope; the primary model first)."""
    created = int(time.time()) - 86400 * 30
    return {
        "object": "list",
        "data": [
            {
                "id": f"acemusic/{name}",
                "name": f"ACE-Step {name}",
                "created": created,
                "input_modalities": ["text", "audio"],
                "output_modalities": ["audio", "text"],
                "context_length": 4096,
                "max_output_length": 300,
                "pricing": {"prompt": "0", "completion": "0", "request": "0", "image": "0"},
                "description": "AI music generation model",
                "architecture": None,
            }
            for name in models
        ],
    }
