"""``/extend``, ``/remix``, ``/repaint`` and the ➕ button: Telegram's side of editing a track.

The commands read what was typed (:mod:`adapters.telegram.edit_parse`) and what the message
replies to: one of our tracks names the song; someone's audio, voice note or document is
their own audio to start from. The core decides everything else (``service.edit``: which song
"your latest" is, who may see it, the times, the quota, whether the engine can), and its
refusals are shown as they come.

Own audio is fetched through the Bot API, never by passing its URL on: a Telegram file URL
holds the bot's token. Before anything is downloaded the chat must allow it
(``service.may_use_own_audio``) and the size Telegram reports must fit
(:data:`bot.sources.MAX_UPLOAD_BYTES`); the file then goes to ``service.sources.incoming``
and is checked and kept by ``service.sources.take_in`` (decoded fully, or a sentence), so a
bad upload costs nothing.

Idempotency keys: a command is ``telegram:<chat id>:<message id>``, as ``/song``; a ➕ press
is ``telegram:ex:<presser id>:<job id>``, so a track is extended once per person however
often, or however late, its ➕ is pressed (a failed extend's 🔁 Try again is the way to go
again, and ``/extend`` makes another).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Audio, Bot, Document, Message, Update, Voice
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from adapters.telegram import edit_texts, keyboards, texts
from adapters.telegram.delivery import PLATFORM
from adapters.telegram.edit_parse import EditText, read_edit
from adapters.telegram.flood import answer_turn
from adapters.telegram.parse import ShowHelp
from adapters.telegram.permissions import ChatAdmins, Sender
from adapters.telegram.places import from_bot, owner_name, place, send, thread_of, track_job
from bot import messages
from bot.domain import Destination, Invalid, Task
from bot.edits import EditAsk
from bot.presses import PressGuard
from bot.service import Accepted, GenerationService, Refused
from bot.sources import MAX_UPLOAD_BYTES, SourceAudio, not_received, too_big

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
Asked = Callable[[Update], Awaitable[tuple[Message | None, Any, Sender | None]]]
Queued = Callable[[Bot, Accepted | Refused, int, int, int | None], Awaitable[None]]
Attachment = Audio | Voice | Document

COMMANDS = {"extend": Task.EXTEND, "remix": Task.REMIX, "repaint": Task.REPAINT}
OWN_AUDIO_TASKS = frozenset({Task.EXTEND, Task.REMIX})


def attachment_of(message: Message) -> Attachment | None:
    """The audio a user's message carries: a music file, a voice note, or a document (any
    file: whether it is audio is found out by decoding it)."""
    return message.audio or message.voice or message.document


def replied_to(message: Message) -> Message | None:
    """The message this one answers; in a forum topic, not the topic's opening message."""
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        return None
    return replied


class EditCommands:
    """service: the core. admins: who administers each chat. presses: the handlers' double-tap
    guard. asked/queued: the command handlers' reading of a message (who sent it) and their
    answer to a submit (the refusal, or the status card that follows the job)."""

    def __init__(
        self,
        service: GenerationService,
        admins: ChatAdmins,
        presses: PressGuard,
        *,
        asked: Asked,
        queued: Queued,
    ) -> None:
        self._service = service
        self._admins = admins
        self._presses = presses
        self._asked = asked
        self._queued = queued

    def register(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        only_new = filters.UpdateType.MESSAGE
        # Not in the chat's answer turn: the answer is about the job, once it is queued
        # (and a download held in the turn would hold up the chat).
        for name in COMMANDS:
            application.add_handler(CommandHandler(name, self.command, filters=only_new))
        application.add_handler(
            CallbackQueryHandler(self.extend_button, pattern=keyboards.EXTEND_PATTERN)
        )

    # ------------------------------------------------------------ the commands
    async def command(self, update: Update, context: Context) -> None:
        message, chat, sender = await self._asked(update)
        if message is None or chat is None or sender is None or not message.text:
            return
        task = COMMANDS[_command_name(message.text)]
        bot = context.bot
        replied = replied_to(message)
        track = track_job(replied, bot) if replied is not None else None
        attachment = None
        if replied is not None and track is None and not from_bot(replied, bot):
            attachment = attachment_of(replied)
        typed = read_edit(
            message.text, task, source_named=track is not None or attachment is not None
        )
        if isinstance(typed, ShowHelp):
            async with answer_turn(bot, chat.id):
                await message.reply_text(edit_texts.usage(task))
            return
        if isinstance(typed, Invalid):
            await self._refuse(message, typed.message)
            return
        thread_id = thread_of(message)
        destination = Destination(
            PLATFORM,
            str(chat.id),
            str(sender.id),
            context=place(chat, message.message_id, thread_id, sender.name),
        )
        requester = await self._admins.requester(bot, sender, chat)
        key = f"telegram:{chat.id}:{message.message_id}"
        own: SourceAudio | None = None
        # A song named by number wins over the message replied to, as for /cancel.
        if attachment is not None and typed.of_job is None:
            if task not in OWN_AUDIO_TASKS:
                await self._refuse(message, edit_texts.REPAINT_OWN_AUDIO)
                return
            if task in self._service.edits_offered:  # else the core says what is missing
                if not await self._service.may_use_own_audio(requester, destination):
                    await self._refuse(message, edit_texts.OWN_AUDIO_OFF)
                    return
                taken = await self._take_in(bot, attachment, key)
                if isinstance(taken, Invalid):
                    await self._refuse(message, taken.message)
                    return
                own = taken
        ask = _ask(task, typed, of_job=typed.of_job or (None if own else track), own=own)
        outcome = await self._service.edit(requester, destination, ask, idempotency_key=key)
        await self._queued(bot, outcome, chat.id, message.message_id, thread_id)

    async def _take_in(self, bot: Bot, attachment: Attachment, key: str) -> SourceAudio | Invalid:
        """The user's file, fetched through the Bot API and checked by the core."""
        size = attachment.file_size
        if size is not None and size > MAX_UPLOAD_BYTES:  # before a byte is fetched
            return Invalid(too_big(size))
        path = self._service.sources.incoming(key)
        try:
            # get_file's answer holds the file's URL, and the URL the bot's token: it goes
            # no further than this download (never logged, never passed upstream).
            file = await bot.get_file(attachment.file_id)
            if file.file_size is not None and file.file_size > MAX_UPLOAD_BYTES:
                return Invalid(too_big(file.file_size))
            await file.download_to_drive(path)
        except BadRequest as error:
            self._service.sources.remove(path)  # a partial download
            if "too big" in error.message.lower():  # Telegram's own 20 MB limit
                return Invalid(too_big(size or MAX_UPLOAD_BYTES + 1))
            logger.warning("could not fetch a user's file for %s: %s", key, error.message)
            return Invalid(not_received())
        except TelegramError as error:  # network trouble: nothing was taken, nothing paid
            self._service.sources.remove(path)  # a partial download
            logger.warning("could not fetch a user's file for %s: %s", key, type(error).__name__)
            return Invalid(not_received())
        return await self._service.sources.take_in(path, key=key)

    async def _refuse(self, message: Message, sentence: str) -> None:
        async with answer_turn(message.get_bot(), message.chat.id):
            await send(
                message.get_bot(),
                message.chat.id,
                texts.problem(sentence),
                message.message_id,
                thread_of(message),
            )

    # ------------------------------------------------------------ ➕
    async def extend_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None:
            return
        job_id = keyboards.parse_extend(query.data)
        if job_id is None:
            await query.answer("That button no longer works; try /help.")
            return
        guard = (PLATFORM, query.from_user.id, keyboards.EXTEND, job_id)
        if not self._presses.first(guard):  # a double tap is one press
            await query.answer(messages.ALREADY_PRESSED)
            return
        source = query.message
        if not isinstance(source, Message):
            await query.answer(edit_texts.OLD_BUTTON)
            return
        bot, chat = context.bot, source.chat
        presser = await self._admins.acting_for(bot, query.from_user, chat, job_id)
        requester = await self._admins.requester(bot, presser, chat)
        thread_id = thread_of(source)
        stored = place(chat, source.message_id, thread_id, presser.name)
        original = await self._service.get_job(job_id)
        if original is not None and original.destination.user_id != str(presser.id):
            stored["take_of"] = owner_name(original) or "someone else"  # whose track it was
        outcome = await self._service.edit(
            requester,
            Destination(PLATFORM, str(chat.id), requester.user_id, context=stored),
            EditAsk(task=Task.EXTEND, of_job=job_id),
            idempotency_key=f"telegram:ex:{presser.id}:{job_id}",
        )
        if isinstance(outcome, Refused):
            self._presses.forget(guard)  # nothing happened: a retry is a new press
            await query.answer(texts.plain_answer(outcome.message), show_alert=True)
            return
        if outcome.duplicate:
            await query.answer(messages.ALREADY_PRESSED)
            return
        await query.answer(edit_texts.EXTEND_QUEUED)
        await self._queued(bot, outcome, chat.id, source.message_id, thread_id)
        async with answer_turn(bot, chat.id):
            await _mark_used(bot, source, query.data or "")


def _ask(task: Task, typed: EditText, *, of_job: int | None, own: SourceAudio | None) -> EditAsk:
    return EditAsk(
        task=task,
        of_job=of_job,
        own_audio=own,
        seconds=typed.seconds,
        at=typed.at,
        start=typed.start,
        end=typed.end,
        strength=typed.strength,
        tags=typed.tags,
        lyrics=typed.lyrics,
    )


def _command_name(text: str) -> str:
    """ "/extend@AceJamBot 12" → "extend" (the handler only routes our three commands)."""
    return text.split(maxsplit=1)[0].lstrip("/").split("@", 1)[0].lower()


async def _mark_used(bot: Bot, source: Message, data: str) -> None:
    """The ➕ pressed now says it was used (the new card is right below)."""
    marked = keyboards.marked_used(source.reply_markup, data)
    if marked is None:
        return
    try:
        await bot.edit_message_reply_markup(source.chat.id, source.message_id, reply_markup=marked)
    except TelegramError as error:  # cosmetic: the press itself worked
        logger.info("could not mark button %s as used: %s", data, error)
