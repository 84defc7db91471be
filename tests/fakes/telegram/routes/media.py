"""Media and files: ``sendAudio`` and ``sendDocument`` (uploads, ``attach://``, file_ids, URLs,
``file://`` in local mode), the music-player and thumbnail rules Telegram applies to them, and
``getFile``.

``sendAudio`` accepts MP3/M4A into the music player (probed with mutagen, which also fills in a
missing duration/title/performer); anything else arrives as a document, and a thumbnail that is
not a JPEG <= 200 kB and <= 320 px is silently dropped. Both are noted in ``warnings``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp

from tests.fakes.telegram.protocol import MB, Params, bad
from tests.fakes.telegram.records import RecordedFile, UploadedFile
from tests.fakes.telegram.routes.messages import parse_reply_markup, placed, render_caption
from tests.fakes.telegram.state import World

DOWNLOAD_LIMIT = 20 * MB  # getFile and sending by URL on the cloud Bot API
THUMBNAIL_MAX_BYTES = 200 * 1024
THUMBNAIL_MAX_SIDE = 320

InputFile = tuple[bytes, str | None, str | None, RecordedFile | None]


async def send_audio(world: World, params: Params) -> dict[str, Any]:
    return await _send_media(world, params, "audio")


async def send_document(world: World, params: Params) -> dict[str, Any]:
    return await _send_media(world, params, "document")


def get_file(world: World, params: Params) -> dict[str, Any]:
    file_id = params.get_str("file_id")
    file = world.files.get(file_id or "")
    if file is None:
        raise bad("invalid file_id")
    if file.size > DOWNLOAD_LIMIT and not world.local_mode:
        raise bad("file is too big")
    return {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "file_size": file.size,
        "file_path": file.file_path,
    }


async def _send_media(world: World, params: Params, kind: str) -> dict[str, Any]:
    chat = world.writable_chat(params)
    warnings: list[str] = []
    data, filename, content_type, stored = await input_file(world, params, kind)
    caption, caption_entities = render_caption(world, params, warnings)
    markup = parse_reply_markup(params, inline_only=False)
    reply_to, thread = placed(world, params, chat)
    thumbnail = await thumbnail_file(world, params, warnings)
    if kind == "audio":
        file, as_audio = await audio_file(world, params, data, filename, content_type, stored)
        if not as_audio:
            warnings.append(
                "not MP3/M4A: Telegram delivers it as a document, outside the music player"
            )
    else:
        mime = content_type or (mimetypes.guess_type(filename)[0] if filename else None)
        file, as_audio = stored or world.store_file(data, "document", filename, mime), False
    message = world.add_message(
        chat,
        world.bot_user,
        caption=caption or None,
        caption_entities=caption_entities,
        source_text=params.get_str("caption"),
        parse_mode=params.get_str("parse_mode"),
        audio=file if as_audio else None,
        document=None if as_audio else file,
        thumbnail=thumbnail.data if thumbnail else None,
        keyboard=markup.keyboard,
        reply_to=reply_to,
        thread_id=thread,
        warnings=warnings,
        _thumbnail_file=thumbnail,
    )
    return message.to_api()


async def audio_file(
    world: World,
    params: Params,
    data: bytes,
    filename: str | None,
    content_type: str | None,
    stored: RecordedFile | None,
) -> tuple[RecordedFile, bool]:
    """The file a sendAudio posts, and whether it lands in the music player."""
    probe = await asyncio.to_thread(_probe_audio, data)
    duration = params.get_int("duration")
    if duration is None and probe.duration is not None:
        duration = round(probe.duration)
    title = params.get_str("title") or probe.title
    performer = params.get_str("performer") or probe.performer
    if not probe.music:
        return stored or world.store_file(data, "document", filename, content_type), False
    if stored is not None:  # re-sent by file_id: the same file, this message's tags
        return dataclasses.replace(
            stored, title=title, performer=performer, duration=duration
        ), True
    file = world.store_file(
        data,
        "audio",
        filename,
        probe.mime_type,
        title=title,
        performer=performer,
        duration=duration,
    )
    return file, True


async def input_file(world: World, params: Params, name: str) -> InputFile:
    """(data, filename, content type, already stored file) of an InputFile parameter:
    an upload, ``attach://``, a file_id, an http(s) URL, or ``file://`` in local mode."""
    value = params.get_input(name)
    if isinstance(value, UploadedFile):
        if not value.data:
            raise bad("file must be non-empty")
        return value.data, value.filename, value.content_type, None
    if not isinstance(value, str) or not value:
        raise bad(f"there is no {name} in the request")
    if value in world.files:
        stored = world.files[value]
        return stored.data, stored.filename, stored.mime_type, stored
    if value.startswith(("http://", "https://")):
        return await _fetch_url(value)
    if value.startswith("file://") and world.local_mode:
        path = Path(unquote(urlsplit(value).path))
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError:
            raise bad("wrong file identifier/HTTP URL specified") from None
        return data, path.name, mimetypes.guess_type(path.name)[0], None
    raise bad("wrong file identifier/HTTP URL specified")


async def _fetch_url(url: str) -> InputFile:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            if response.status != 200:
                raise bad("failed to get HTTP URL content")
            data = await response.content.read(DOWNLOAD_LIMIT + 1)
            content_type = response.headers.get("Content-Type")
    except aiohttp.ClientError:
        raise bad("failed to get HTTP URL content") from None
    if len(data) > DOWNLOAD_LIMIT or not data:
        raise bad("failed to get HTTP URL content")
    return data, Path(urlsplit(url).path).name or None, content_type, None


async def thumbnail_file(world: World, params: Params, warnings: list[str]) -> RecordedFile | None:
    value = params.get_input("thumbnail")
    if value is None:
        return None
    if not isinstance(value, UploadedFile):
        warnings.append("thumbnail ignored: it can only be uploaded as a new file")
        return None
    problem, width, height = await asyncio.to_thread(_thumbnail_problem, value.data)
    if problem:
        warnings.append(f"thumbnail ignored: {problem}")
        return None
    return world.store_file(
        value.data, "thumbnail", value.filename, "image/jpeg", width=width, height=height
    )


@dataclass
class _AudioProbe:
    music: bool  # MP3 or M4A: what Telegram puts in the music player
    mime_type: str | None
    duration: float | None
    title: str | None
    performer: str | None


def _probe_audio(data: bytes) -> _AudioProbe:
    import mutagen  # deferred: only sendAudio needs it

    try:
        audio = mutagen.File(io.BytesIO(data), easy=True)
    except Exception:  # mutagen raises many types on garbage; garbage just isn't audio
        audio = None
    if audio is None:
        return _AudioProbe(False, None, None, None, None)
    kind = type(audio).__name__
    tags = audio.tags or {}

    def tag(name: str) -> str | None:
        values = tags.get(name) if hasattr(tags, "get") else None
        return str(values[0]) if values else None

    mime = {"EasyMP3": "audio/mpeg", "MP3": "audio/mpeg", "EasyMP4": "audio/mp4"}.get(kind)
    length = getattr(audio.info, "length", None)
    return _AudioProbe(mime is not None, mime, length, tag("title"), tag("artist"))


def _thumbnail_problem(data: bytes) -> tuple[str | None, int, int]:
    """Why Telegram would ignore this thumbnail (None if fine), and its size."""
    from PIL import Image  # deferred: only uploads with thumbnails need it

    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt, (width, height) = image.format, image.size
    except Exception:
        return "not an image", 0, 0
    if fmt != "JPEG":
        return f"not a JPEG ({fmt})", width, height
    if len(data) > THUMBNAIL_MAX_BYTES:
        return f"larger than 200 kB ({len(data)} bytes)", width, height
    if width > THUMBNAIL_MAX_SIDE or height > THUMBNAIL_MAX_SIDE:
        return f"larger than 320 px ({width}x{height})", width, height
    return None, width, height
