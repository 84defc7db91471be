"""ACE-Step edits: the multipart ``/release_task`` of an extend, repaint or remix, and which
edits a server's model offers (``/work/shared/docs/upstreams.md`` §2, "Edits").

What the server reads, and what this module therefore sends:

- the source as the multipart file ``src_audio``, streamed from our own copy (never a path on
  the server's disk, never a platform URL), named ``source.<ext>``: the server keeps the
  extension for its temp file, and torchaudio decodes by it;
- every other parameter as a plain form field (a string), parsed like JSON values;
- extend and repaint are both ``task_type`` ``repaint``: a section inside the source is made
  again, and a section past its end (or before its start, a negative start) is silence the
  server pads on and fills: the result is the whole, longer song. ``repainting_end`` 0 reads
  as "the source's end", so a section ending at the start is sent ending at
  :data:`AT_START_END`;
- remix is ``cover`` with ``audio_cover_strength`` (0..1, higher keeps more of the source);
- no ``audio_duration``: the (padded) source sizes the result, and no ``thinking``: the
  engine skips its language model for these tasks but would still demand one.
"""

from __future__ import annotations

import asyncio
import math
import mimetypes
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from bot.backends._http import json_or_none
from bot.domain import Edit, GenerationRequest, Task
from bot.errors import PermanentBackendError

SOURCE_FIELD = "src_audio"
# The server's task for each edit.
TASK_TYPES: Mapping[Task, str] = {
    Task.EXTEND: "repaint",
    Task.REPAINT: "repaint",
    Task.REMIX: "cover",
}
# What a turbo model does (acestep/constants.py TASK_TYPES_TURBO): assumed where the server
# does not say (older servers, or /v1/models unreadable).
TURBO_TASK_TYPES = frozenset({"text2music", "repaint", "cover", "cover-nofsq"})
# An end of 0 means "the source's end" upstream; this is under one 40 ms latent frame.
AT_START_END = 0.01
# A repaint section may end this far past the source (a rounded "1:05" for a 64.8 s track).
END_SLACK = 1.0
MAX_OUTPUT_SECONDS = 600  # the engine's longest song (acestep/constants.py DURATION_MAX)
CHUNK = 1024 * 1024  # bytes read from disk per thread hop


def offered_edits(task_types: frozenset[str] | None) -> frozenset[Task]:
    """The edits a model with these task types makes (None: the turbo default)."""
    known = TURBO_TASK_TYPES if task_types is None else task_types
    return frozenset(task for task, kind in TASK_TYPES.items() if kind in known)


def task_types_from(payload: Any) -> frozenset[str] | None:
    """The default model's ``supported_task_types`` from a ``/v1/models`` (or
    ``/v1/model_inventory``) answer in either shape; None when it does not say.

    The inventory is an envelope, ``data.models[]`` with ``is_default``; the OpenRouter-style
    list has no envelope, ``data[]`` with the primary model first."""
    if not isinstance(payload, Mapping):
        return None
    data = payload.get("data")
    if isinstance(data, Mapping):
        entries = data.get("models")
        default = data.get("default_model")
    else:
        entries, default = data, None
    if not isinstance(entries, list):
        return None
    models = [entry for entry in entries if isinstance(entry, Mapping)]
    chosen = next((m for m in models if m.get("is_default") is True), None)
    if chosen is None:
        chosen = next((m for m in models if default and m.get("name") == default), None)
    if chosen is None and models and not isinstance(data, Mapping):
        chosen = models[0]  # the OpenRouter list: the primary (default) model comes first
    types = chosen.get("supported_task_types") if chosen is not None else None
    if not isinstance(types, list) or not all(isinstance(kind, str) for kind in types):
        return None
    return frozenset(types)


async def server_task_types(
    http: httpx.AsyncClient, base_url: str, asked: Mapping[str, Any]
) -> frozenset[str] | None:
    """The default model's task types: ``/v1/models`` where it says them, else the inventory
    newer servers also serve (their ``/v1/models`` is the OpenRouter list, which does not).
    ``asked``: the GET's headers and timeout."""
    for path in ("/v1/models", "/v1/model_inventory"):
        response = await http.get(f"{base_url}{path}", **asked)
        said = task_types_from(json_or_none(response))
        if response.status_code == 200 and said is not None:
            return said
    return None


def check_edit(request: GenerationRequest, edit: Edit, task_types: frozenset[str] | None) -> None:
    """Raise :class:`PermanentBackendError` for an edit the server would not (or could not
    sensibly) make; ``task_types`` are the server's, None when unknown."""
    kind = TASK_TYPES.get(edit.task)
    if kind is None:
        raise PermanentBackendError(f"{edit.task} is not an edit", code="invalid_request")
    if kind not in (TURBO_TASK_TYPES if task_types is None else task_types):
        raise PermanentBackendError(
            f"the ACE-Step server's model does not do {kind}, needed to {edit.task}",
            code="edit_unsupported",
        )
    problems = []
    if request.describe:
        problems.append("an edit is not written from a description")
    if request.takes != 1:
        problems.append("an edit makes one take")
    source = edit.source_seconds
    if not (math.isfinite(source) and 0 < source <= MAX_OUTPUT_SECONDS):
        problems.append(f"the source must be 0..{MAX_OUTPUT_SECONDS} s long")
    elif edit.task == Task.EXTEND:
        if edit.seconds < 1:
            problems.append("an extend adds at least 1 s")
        elif edit.output_seconds > MAX_OUTPUT_SECONDS:
            problems.append(f"the extended song must be at most {MAX_OUTPUT_SECONDS} s")
    elif edit.task == Task.REPAINT:
        start, end = edit.start, edit.end
        if start is None or end is None or not (0 <= start < end <= source + END_SLACK):
            problems.append(f"the section must lie within the source's {source:.0f} s")
    elif not 0.0 <= edit.strength <= 1.0:
        problems.append("the remix strength must be 0..1")
    if problems:
        raise PermanentBackendError("; ".join(problems), code="invalid_request")


def edit_fields(edit: Edit) -> dict[str, str]:
    """The task's own form fields."""
    fields = {"task_type": TASK_TYPES[edit.task]}
    if edit.task == Task.REMIX:
        fields["audio_cover_strength"] = _number(edit.strength)
    elif edit.task == Task.EXTEND and edit.at_start:
        fields["repainting_start"] = _number(-edit.seconds)
        fields["repainting_end"] = _number(AT_START_END)
    elif edit.task == Task.EXTEND:
        fields["repainting_start"] = _number(edit.source_seconds)
        fields["repainting_end"] = _number(edit.source_seconds + edit.seconds)
    else:
        assert edit.start is not None and edit.end is not None  # check_edit saw to it
        fields["repainting_start"] = _number(edit.start)
        # The source's end as "-1", so rounding never pads on a few silent milliseconds.
        at_end = edit.end >= edit.source_seconds
        fields["repainting_end"] = "-1" if at_end else _number(edit.end)
    return fields


def form_value(value: Any) -> str:
    """A JSON-style value as the form field the server's parser reads back the same."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _number(value: float) -> str:
    return format(round(value, 3), "g")


@dataclass
class MultipartUpload:
    """A ``multipart/form-data`` body whose file part is streamed from disk (each read in a
    thread), with its length known up front so no chunked encoding is needed."""

    headers: dict[str, str]
    _fields: bytes
    _file: IO[bytes]
    _closing: bytes

    async def body(self) -> AsyncIterator[bytes]:
        yield self._fields
        while chunk := await asyncio.to_thread(self._file.read, CHUNK):
            yield chunk
        yield self._closing

    def close(self) -> None:
        self._file.close()


async def open_upload(fields: Mapping[str, str], source: Path) -> MultipartUpload:
    """The form: ``fields`` then the source as ``src_audio``. Raises
    :class:`PermanentBackendError` ``source_missing`` when the file is gone."""
    try:
        file = await asyncio.to_thread(source.open, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise PermanentBackendError(
            "the edit's source file is gone", code="source_missing"
        ) from None
    boundary = os.urandom(16).hex()
    dash = f"--{boundary}\r\n".encode()
    parts = [
        dash
        + f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value.encode()
        + b"\r\n"
        for name, value in fields.items()
    ]
    # A neutral name: the stored file's own name is ours, not the server's business.
    suffix = source.suffix.lower() or ".bin"
    kind = mimetypes.guess_type(f"source{suffix}")[0] or "application/octet-stream"
    parts.append(
        dash
        + f'Content-Disposition: form-data; name="{SOURCE_FIELD}"; filename="source{suffix}"'
        f"\r\nContent-Type: {kind}\r\n\r\n".encode()
    )
    head = b"".join(parts)
    closing = f"\r\n--{boundary}--\r\n".encode()
    size = os.fstat(file.fileno()).st_size
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + size + len(closing)),
    }
    return MultipartUpload(headers, head, file, closing)
