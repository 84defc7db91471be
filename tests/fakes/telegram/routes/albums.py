"""``sendMediaGroup``: audio files (or documents) sent together as one album.

As the Bot API server and TDLib do: ``media`` is a JSON array of InputMedia whose files are
uploads named ``attach://<part>``, file_ids or URLs; at most 10 items; audio files go only
with audio files and documents only with documents; each item carries its own caption, title,
performer, duration and thumbnail; every message replies to the same message; the answer is
the array of Messages, which share a ``media_group_id``. A refused album sends nothing: every
item is read and checked before the first message is stored. The method takes no
``reply_markup`` (the Bot API server reads none): one sent anyway is dropped and noted in the
messages' ``warnings``, as is a one-item "album", which Telegram sends as a lone message
although the Bot API documents 2-10 items. Photos and videos are not modelled by this fake.
"""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.telegram.protocol import Params, bad
from tests.fakes.telegram.records import RecordedFile, UploadedFile
from tests.fakes.telegram.routes.media import audio_file, input_file, thumbnail_file
from tests.fakes.telegram.routes.messages import placed, render_caption
from tests.fakes.telegram.state import World

MAX_ITEMS = 10
_KINDS = ("audio", "document")  # what this fake's albums hold (Telegram's also photo, video)


async def send_media_group(world: World, params: Params) -> list[dict[str, Any]]:
    chat = world.writable_chat(params)
    items = _media_array(params)
    if not items:
        raise bad("there are no messages to send")
    if len(items) > MAX_ITEMS:
        raise bad("too many messages to send as an album")
    kinds = [_kind_of(item) for item in items]
    for kind in _KINDS:
        if kind in kinds and any(other != kind for other in kinds):
            raise bad(f"{kind} can't be mixed with other media types")
    reply_to, thread = placed(world, params, chat)
    shared: list[str] = []
    if params.get("reply_markup") is not None:
        shared.append("reply_markup ignored: sendMediaGroup takes none")
    if len(items) == 1:
        shared.append("a one-item media group: Telegram sends it as a lone message")
    uploads = {k: v for k, v in params.values.items() if isinstance(v, UploadedFile)}
    read = [
        await _read_item(world, uploads, item, kind)
        for item, kind in zip(items, kinds, strict=True)
    ]
    group_id = str(next(world.media_group_ids)) if len(items) > 1 else None
    sent = []
    for item in read:
        message = world.add_message(
            chat,
            world.bot_user,
            reply_to=reply_to,
            thread_id=thread,
            media_group_id=group_id,
            **item,
        )
        message.warnings[:0] = shared
        sent.append(message.to_api())
    return sent


def _media_array(params: Params) -> list[Any]:
    raw = params.get("media")
    if raw is None or raw == "":
        raise bad('parameter "media" is required')
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise bad("can't parse media JSON object") from None
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad("expected an Array of InputMedia")
    return raw


def _kind_of(item: Any) -> str:
    if not isinstance(item, dict):
        raise bad("can't parse InputMedia: expected an Object")
    kind = item.get("type")
    if kind is None:
        raise bad("can't parse InputMedia: Can't find field \"type\"")
    if kind not in _KINDS:
        raise bad(f'can\'t parse InputMedia: type "{kind}" is unsupported by the fake')
    return str(kind)


async def _read_item(
    world: World, uploads: dict[str, UploadedFile], item: dict[str, Any], kind: str
) -> dict[str, Any]:
    """The message an item becomes: its file (from the request's parts), caption and tags."""
    media = item.get("media")
    if isinstance(media, str) and media.startswith("attach://"):
        if media[len("attach://") :] not in uploads:
            raise bad("can't parse InputMedia: media not found")
    # The item's own fields, with its files reachable by attach:// as in a request of its own.
    own = Params({**uploads, **item, kind: media})
    warnings: list[str] = []
    data, filename, content_type, stored = await input_file(world, own, kind)
    caption, caption_entities = render_caption(world, own, warnings)
    thumbnail = await thumbnail_file(world, own, warnings)
    file: RecordedFile
    if kind == "audio":
        file, as_audio = await audio_file(world, own, data, filename, content_type, stored)
        if not as_audio:
            warnings.append("not MP3/M4A: Telegram delivers it as a document")
    else:
        file, as_audio = stored or world.store_file(data, "document", filename, content_type), False
    return {
        "caption": caption or None,
        "caption_entities": caption_entities,
        "source_text": own.get_str("caption"),
        "parse_mode": own.get_str("parse_mode"),
        "audio": file if as_audio else None,
        "document": None if as_audio else file,
        "thumbnail": thumbnail.data if thumbnail else None,
        "warnings": warnings,
        "_thumbnail_file": thumbnail,
    }
