"""A job's several takes on Telegram: one audio album and the choices under it.

The takes arrive as one audio album (``sendMediaGroup``), each audio titled and captioned with
its take number and seed. An album takes no buttons, so a short message under it carries the
choices (:func:`adapters.telegram.keyboards.takes_keyboard`): ▶ Keep 1 … ▶ Keep N, then 🎲 / 🔁,
which the core applies to the kept take (take 1 until one is kept). The presses of ▶ Keep are
:mod:`adapters.telegram.keeping`'s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dtm
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from telegram import Bot, InputFile, InputMediaAudio, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import TelegramError

from adapters.telegram import keyboards, texts
from adapters.telegram.flood import Priority, sending
from bot import audio
from bot.delivery import FittedTake, take_title
from bot.domain import Job

logger = logging.getLogger(__name__)


def choices_text(takes: int, kept: int | None) -> str:
    """The message under the album that carries the choices."""
    if kept is not None:
        return f"✅ Take {kept} kept. 🎲 New take and 🔁 Same seed start from it."
    return (
        f"🎛 {takes} takes above. ▶ Keep the one you like: 🎲 New take and 🔁 Same seed "
        "start from it (the first take until you choose)."
    )


@dataclasses.dataclass(frozen=True)
class Album:
    """Where a job's album goes, as its delivery reads it from the job."""

    chat_id: int
    reply_to: int | None  # the request message
    thread_id: int | None  # the forum topic
    local_mode: bool  # a local Bot API server reads files by path
    filename: Callable[[str], str]  # a file name from a title
    bytes_per_second: float  # a slow uplink, to size the upload timeout


async def send_takes(
    bot: Bot, job: Job, takes: Sequence[FittedTake], title: str, album: Album
) -> Message:
    """The takes as one audio album replying to the request, each titled and captioned with
    its take number and seed; then the choices message under it. Returns the album's first
    message (the song's). The choices are best effort: the takes are in the chat either way,
    and a failed delivery would post them all again."""
    media = []
    parts: dict[str, object] = {}  # thumbnails sent as parts of their own (local mode)
    for fitted in takes:
        track = fitted.track
        named = take_title(title, fitted.take)
        shown = f"{named} (preview)" if track.is_preview else named
        assert track.thumbnail_jpg is not None  # the delivery's limits ask for one
        picture = InputFile(
            await asyncio.to_thread(track.thumbnail_jpg.read_bytes),
            filename=f"take-{fitted.take}.jpg",
            attach=True,
        )
        upload: Path | bytes = (
            track.path if album.local_mode else await asyncio.to_thread(track.path.read_bytes)
        )
        thumbnail: InputFile | str = picture
        if album.local_mode:
            # A thumbnail must be uploaded (the Bot API reads no file:// for it), and PTB
            # uploads an item's thumbnail only with an uploaded file: with the audio given by
            # path, the picture goes as a part of its own that the item names.
            parts[f"thumbnail_{fitted.take}"] = picture
            thumbnail = picture.attach_uri or ""
        media.append(
            InputMediaAudio(
                upload,
                caption=texts.caption(
                    dataclasses.replace(job, seed_used=fitted.seed),
                    title=shown,
                    seconds=track.duration,
                    full_seconds=track.full_duration,
                    is_preview=track.is_preview,
                ),
                parse_mode=ParseMode.HTML,
                duration=dtm.timedelta(seconds=round(track.duration)),
                performer=audio.ARTIST,
                title=shown,
                thumbnail=thumbnail,
                filename=album.filename(named),
            )
        )
    size = sum(fitted.track.size for fitted in takes)
    with sending(Priority.DELIVERY):
        sent = await bot.send_media_group(
            album.chat_id,
            media,
            reply_parameters=_reply(album.reply_to),
            message_thread_id=album.thread_id,
            write_timeout=max(60.0, size / album.bytes_per_second),
            read_timeout=60.0,
            api_kwargs=parts or None,
        )
    numbers = [fitted.take for fitted in takes]
    try:
        with sending(Priority.DELIVERY):
            await bot.send_message(
                album.chat_id,
                choices_text(len(numbers), job.kept_take),
                reply_parameters=_reply(sent[0].message_id),
                message_thread_id=album.thread_id,
                reply_markup=keyboards.takes_keyboard(job.id, numbers, job.kept_take),
            )
    except TelegramError as error:
        logger.warning("job %s: takes sent, but not the choices under them: %s", job.id, error)
    return sent[0]


def _reply(message_id: int | None) -> ReplyParameters | None:
    if message_id is None:
        return None
    return ReplyParameters(message_id, allow_sending_without_reply=True)
