"""``TelegramDelivery``: the core's :class:`~bot.ports.Delivery` port for Telegram.

Job events become status-card edits (through the :class:`StatusBoard`, so they give way to
people's answers, are paced per chat and never repeat), and a finished job becomes an MP3 sent
with ``sendAudio`` as a reply to the request, with a thumbnail, title, performer, duration, a
caption and the 🎲 / 🔁 buttons; the card then goes (one song, one message). A failed song
gets a new message, not an edit (edits notify nobody): a reply to the request that mentions
the requester in a group, with 🔁 Try again where trying again can help.

The track is fitted to the upload limit (and its thumbnail made to sendAudio's size) by the
core's :class:`~bot.delivery.DeliveryPipeline`, from the :class:`~bot.delivery.UploadLimits`
this adapter declares; the adapter only posts it (``post_track``) and retires the card
(``posted``).

Everything ``deliver`` needs is read from the job: the chat from its destination, and from the
destination context the request message (``request_message_id``), the status message
(``status_message_id``), the forum topic (``thread_id``) and the chat's title
(``chat_title``, used as the album). So a job that finished while the bot was down is
delivered the same way once it is back.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from telegram import Bot, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden

from adapters.telegram import edit_texts, keyboards, texts
from adapters.telegram.flood import Priority, sending
from adapters.telegram.places import place_of
from adapters.telegram.status import StatusBoard
from adapters.telegram.takes import Album, send_takes
from bot import audio, messages
from bot.delivery import DeliveryPipeline, FittedTake, UploadLimits
from bot.domain import Job, JobId, Task
from bot.errors import DeliveryRefused, DeliveryUnavailable
from bot.jams.model import JamTakeRef
from bot.ports import Capabilities, DeliveryReceipt, EventKind, JobEvent, TrackFile

logger = logging.getLogger(__name__)

PLATFORM = "telegram"
# sendAudio limits: 50 MB on Telegram's servers, 2000 MB through a local Bot API server.
# Decimal megabytes, so we stay under whichever way a server counts them.
CLOUD_UPLOAD_LIMIT = 50_000_000
LOCAL_UPLOAD_LIMIT = 2_000_000_000
# sendAudio's thumbnail: a JPEG of at most 320×320 and 200 kB.
THUMBNAIL = audio.Thumbnail(side=320, max_bytes=200_000)
_UPLOAD_BYTES_PER_SECOND = 250_000  # a slow uplink, to size the upload timeout
_NOTICES_REMEMBERED = 1000  # failed jobs told about, so a repeated event isn't told twice


class TelegramDelivery:
    """bot: an initialized PTB bot. board: the status messages. local_mode: the Bot API
    server is a local ``telegram-bot-api --local`` that reads files by path. upload_limit:
    bytes an audio upload may have (default: the server's limit for the mode).
    capabilities: the engine's, as they stand (➕ under a track where it can extend, and
    an edit's model on its card); none known: no ➕. jam_take: which jam take a job is
    (``service.jams.take_of``): such a track gets a 🗳 vote button instead of the song's."""

    platform = PLATFORM

    def __init__(
        self,
        bot: Bot,
        board: StatusBoard,
        *,
        local_mode: bool = False,
        upload_limit: int | None = None,
        capabilities: Callable[[], Capabilities] | None = None,
        jam_take: Callable[[JobId], Awaitable[JamTakeRef | None]] | None = None,
    ) -> None:
        self._bot = bot
        self._capabilities = capabilities or Capabilities
        self._jam_take = jam_take
        self.board = board
        self._local_mode = local_mode
        default_limit = LOCAL_UPLOAD_LIMIT if local_mode else CLOUD_UPLOAD_LIMIT
        self._upload_limit = upload_limit or default_limit
        self._closed = False
        self._uploads = 0  # deliver() calls in progress
        self._idle = asyncio.Event()
        self._idle.set()
        self._notices: set[asyncio.Task[None]] = set()  # failure notices being sent
        self._noticed: OrderedDict[int, None] = OrderedDict()
        self._pipeline = DeliveryPipeline(self)

    async def close(self, grace: float = 10.0) -> None:
        """Take no new tracks; let uploads in progress finish (up to ``grace`` seconds) so a
        track that reached the chat is also recorded as delivered; then stop the edits."""
        self._closed = True
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            logger.warning("Telegram: stopping with %d upload(s) unfinished", self._uploads)
        if self._notices:
            _, late = await asyncio.wait(self._notices, timeout=grace)
            for task in late:
                task.cancel()
        await self.board.close()

    # ------------------------------------------------------------ progress
    async def on_event(self, event: JobEvent) -> None:
        try:
            self._show(event)
        except Exception:  # the port promises never to raise; a missed edit is harmless
            logger.exception("job %s: could not show %s", event.job.id, event.kind)

    def _show(self, event: JobEvent) -> None:
        job = event.job
        chat_id = _chat_of(job)
        card = _context_int(job, "status_message_id")
        cancel = keyboards.cancel_keyboard(job.id)
        match event.kind:
            case EventKind.QUEUED:
                position, eta = event.position or 0, event.eta

                def queued() -> str:  # rendered when the edit goes out
                    return texts.status("🎶", texts.queued_line(position, eta), job)

                self.board.show(job.id, chat_id, queued, cancel, message_id=card, eta=eta)
            case EventKind.STARTED | EventKind.PROGRESS:
                progress, eta = event.progress, event.eta

                def running() -> str:
                    return texts.status("🎛", texts.running_line(progress, eta), job)

                self.board.show(job.id, chat_id, running, cancel, message_id=card, eta=eta)
            case EventKind.SUCCEEDED:
                self.board.freeze(job.id)  # the track follows; the card goes with it
            case EventKind.FAILED:
                self.board.freeze(job.id)
                if job.id not in self._noticed and not self._closed:
                    self._noticed[job.id] = None
                    while len(self._noticed) > _NOTICES_REMEMBERED:
                        self._noticed.popitem(last=False)
                    sentence = event.message or messages.failure_message(job.error_code)
                    task = asyncio.create_task(self._tell_failure(job, sentence))
                    self._notices.add(task)
                    task.add_done_callback(self._notices.discard)
            case EventKind.CANCELLED:
                # An admin's cancel is marked on the job (ChatAdmins.cancel), so a relayed
                # copy of the event tells the owner the same as the first one did.
                if job.destination.context.get("cancelled_by_admin"):
                    line = messages.ADMIN_CANCELLED
                else:
                    line = event.message or "Cancelled."
                text = texts.status("✖", line, job)
                self.board.show(job.id, chat_id, lambda: text, None, final=True, message_id=card)

    async def _tell_failure(self, job: Job, sentence: str) -> None:
        """A new message for a failed song (an edit notifies nobody), then the card goes."""
        chat_id = _chat_of(job)
        request_id = _context_int(job, "request_message_id")
        seed = job.seed_used if job.seed_used is not None else job.request.seed
        markup = (
            keyboards.try_again_keyboard(job.id, seed_known=seed is not None and seed >= 0)
            if messages.worth_trying_again(job.error_code)
            else None
        )
        try:
            if markup is not None and self._jam_take is not None and await self._jam_take(job.id):
                markup = None  # a jam's take is tried again with /jam render, by its host
            with sending(Priority.DELIVERY):
                await self._bot.send_message(
                    chat_id,
                    texts.failure_text(job, sentence, mention=chat_id < 0, in_group=chat_id < 0),
                    reply_parameters=(
                        ReplyParameters(request_id, allow_sending_without_reply=True)
                        if request_id is not None
                        else None
                    ),
                    message_thread_id=_thread_of(job),
                    reply_markup=markup,
                )
        except Exception as error:  # best effort, like every event; the card stays then
            logger.warning("job %s: could not tell the chat it failed: %s", job.id, error)
            return
        self.board.retire(job.id, chat_id, _context_int(job, "status_message_id"))

    # ------------------------------------------------------------ the track
    async def deliver(self, job: Job, tracks: Sequence[TrackFile]) -> DeliveryReceipt:
        """The core's pipeline fits the track to ``upload_limits`` and calls ``post_track``."""
        if self._closed:  # the worker keeps the job and it is delivered after the restart
            raise DeliveryUnavailable("the Telegram adapter has stopped")
        self._uploads += 1
        self._idle.clear()
        try:
            return await self._pipeline.deliver(job, tracks)
        except Forbidden as exc:
            # Blocked by the user, or removed from the group: no retry will get through.
            code = "bot_blocked" if "blocked by the user" in exc.message else "chat_gone"
            raise DeliveryRefused(exc.message, code=code) from exc
        except BadRequest as exc:
            if "chat not found" not in exc.message.lower():
                raise
            raise DeliveryRefused(exc.message, code="chat_gone") from exc
        finally:
            self._uploads -= 1
            if not self._uploads:
                self._idle.set()

    # ------------------------------------------------------------ TrackPoster
    def upload_limits(self, job: Job) -> UploadLimits:
        return UploadLimits(self._upload_limit, thumbnail=THUMBNAIL)

    def track_tags(self, job: Job) -> audio.TrackTags:
        seed = job.seed_used if job.seed_used is not None else job.request.seed
        seconds = job.audio_duration or float(job.request.duration)
        album = job.destination.context.get("chat_title")
        return audio.tags_for(job.request.tags, seed, seconds, album=album)

    def too_large(self, error: Exception) -> bool:
        return False  # the limit is the server's own, known for sure: no second try

    async def post_track(self, job: Job, track: audio.PreparedTrack, limit: int) -> DeliveryReceipt:
        chat_id = _chat_of(job)
        tags = self.track_tags(job)
        title = f"{tags.title} (preview)" if track.is_preview else tags.title
        assert track.thumbnail_jpg is not None  # upload_limits asks for one
        thumbnail = await asyncio.to_thread(track.thumbnail_jpg.read_bytes)
        # A local Bot API server reads the file by path; Telegram's needs the bytes.
        upload: Path | bytes = (
            track.path if self._local_mode else await asyncio.to_thread(track.path.read_bytes)
        )
        request_id = _context_int(job, "request_message_id")
        engine = self._capabilities()
        markup = keyboards.track_keyboard(job.id, extend=Task.EXTEND in engine.edits)
        jam_take = await self._jam_take(job.id) if self._jam_take is not None else None
        if jam_take is not None:  # the chat's song, not the host's: a vote, not a re-roll
            markup = keyboards.vote_keyboard(jam_take.jam_id, jam_take.round, jam_take.take)
        with sending(Priority.DELIVERY):
            message = await self._bot.send_audio(
                chat_id,
                upload,
                filename=_filename(job, tags.title),
                duration=dtm.timedelta(seconds=round(track.duration)),
                performer=audio.ARTIST,
                title=title,
                caption=texts.caption(
                    job,
                    title=title,
                    seconds=track.duration,
                    full_seconds=track.full_duration,
                    is_preview=track.is_preview,
                    made_from=edit_texts.made_from(job, engine.edit_models),
                ),
                parse_mode=ParseMode.HTML,
                thumbnail=thumbnail,
                reply_parameters=(
                    ReplyParameters(request_id, allow_sending_without_reply=True)
                    if request_id is not None
                    else None
                ),
                message_thread_id=_thread_of(job),
                reply_markup=markup,
                write_timeout=max(60.0, track.size / _UPLOAD_BYTES_PER_SECOND),
                read_timeout=60.0,
            )
        return DeliveryReceipt(message_id=str(message.message_id))

    async def post_takes(
        self, job: Job, takes: Sequence[FittedTake], limit: int
    ) -> DeliveryReceipt:
        """Several takes: one audio album, and the choices in a message under it."""
        album = Album(
            chat_id=_chat_of(job),
            reply_to=_context_int(job, "request_message_id"),
            thread_id=_thread_of(job),
            local_mode=self._local_mode,
            filename=lambda title: _filename(job, title),
            bytes_per_second=_UPLOAD_BYTES_PER_SECOND,
        )
        first = await send_takes(self._bot, job, takes, self.track_tags(job).title, album)
        return DeliveryReceipt(message_id=str(first.message_id))

    async def posted(self, job: Job, receipt: DeliveryReceipt) -> None:
        chat_id = _chat_of(job)
        logger.info("job %s: sent to chat %s as message %s", job.id, chat_id, receipt.message_id)
        # The track is the song's message now: its card goes.
        self.board.retire(job.id, chat_id, _context_int(job, "status_message_id"))


def _chat_of(job: Job) -> int:
    """The chat a job's messages go to (a jam take's destination may name a forum topic
    too: ``"<chat>:<topic>"``)."""
    return place_of(job.destination.chat_id)[0]


def _thread_of(job: Job) -> int | None:
    """The forum topic a job's messages go to."""
    return _context_int(job, "thread_id") or place_of(job.destination.chat_id)[1]


def _context_int(job: Job, key: str) -> int | None:
    value: Any = job.destination.context.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _filename(job: Job, title: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:48].rstrip("-")
    return f"acejam-{job.id}-{slug}.mp3" if slug else f"acejam-{job.id}.mp3"
