"""``/jam``, a plain reply to the jam message, and the 🗳 vote buttons: Telegram's side of a
community jam (issue #16).

A jam lives in the chat, or the forum topic, where ``/jam start`` was typed: its place key
is ``"<chat>"`` or ``"<chat>:<topic>"`` (:func:`~adapters.telegram.places.place_key`), and
every other command acts on the jam open there (``service.jams.jam_at``). The core decides
everything (who may, what fits, when) and says it in its own sentences
(:mod:`bot.jams.texts`); this module reads what was typed (:mod:`.jam_parse`), answers in
the place, posts the jam message at the start and has :class:`~.jam_messages.JamMessages`
keep it up to date.

The jam's context holds what Telegram needs later, also after a restart: ``message_id`` (the
jam message), ``thread_id`` (the topic) and ``job``, the context of its takes' jobs (the
topic, the chat's title, and the jam message, which the takes reply to).

A vote button carries ``jv:<jam>:<round>:<take>``: the press needs nothing else, and the
core counts a member's vote once per round however often it is pressed.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Chat, Message, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from adapters.telegram import jam_texts, keyboards, texts
from adapters.telegram.delivery import PLATFORM
from adapters.telegram.flood import answer_turn
from adapters.telegram.jam_messages import JamAnnouncer, JamMessages
from adapters.telegram.jam_parse import JamAdd, JamDo, JamRemove, JamStart, JamUsage, read_jam
from adapters.telegram.permissions import ChatAdmins, Sender, person, sender_of
from adapters.telegram.places import from_bot, place_key, send, thread_of
from bot.domain import Destination, Invalid
from bot.jams import texts as jam_words
from bot.jams.model import Jam, JamChanged, JamNewsKind, Part
from bot.service import GenerationService, Refused

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
NO_SENDER = "I can't tell who sent that, so it can't join a jam."


class JamCommands:
    """service: the core (``service.jams``). admins: who administers each chat. messages,
    announcer: the jam messages and announcements (shared with the core's listener)."""

    def __init__(
        self,
        service: GenerationService,
        admins: ChatAdmins,
        messages: JamMessages,
        announcer: JamAnnouncer,
    ) -> None:
        self._service = service
        self._admins = admins
        self._messages = messages
        self._announcer = announcer

    def register(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        only_new = filters.UpdateType.MESSAGE
        application.add_handler(CommandHandler("jam", self.command, filters=only_new))
        # A reply to the jam message is a line. Groups only (a private chat's free text has
        # its own answer), and never a command (those have theirs).
        reply = only_new & filters.REPLY & filters.TEXT & ~filters.COMMAND & filters.ChatType.GROUPS
        application.add_handler(MessageHandler(reply, self.reply_line))
        application.add_handler(CallbackQueryHandler(self.vote, pattern=keyboards.VOTE_PATTERN))

    # ------------------------------------------------------------ /jam
    async def command(self, update: Update, context: Context) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        sender = sender_of(message)
        if sender is None:
            await self._answer(message, texts.problem(NO_SENDER))
            return
        typed = read_jam(message.text)
        if isinstance(typed, Invalid):
            await self._answer(message, texts.problem(typed.message))
            return
        if isinstance(typed, JamUsage):
            await self._answer(message, jam_texts.usage(typed.unknown))
            return
        if isinstance(typed, JamStart):
            await self._start(message, chat, sender, typed)
            return
        if isinstance(typed, JamDo) and typed.action == "stats":
            stats = await self._service.jams.stats(PLATFORM, str(chat.id))
            await self._answer(message, jam_texts.stats_text(stats, chat.title))
            return
        jam = await self._service.jams.jam_at(PLATFORM, place_key(chat.id, thread_of(message)))
        if jam is None:
            await self._answer(message, texts.problem(jam_words.NO_JAM))
            return
        requester = await self._admins.requester(message.get_bot(), sender, chat)
        if isinstance(typed, JamAdd):
            await self._add(message, jam, sender, typed.kind, typed.text)
            return
        if isinstance(typed, JamRemove):
            removed = await self._service.jams.remove(requester, jam.id, typed.number)
            await self._changed(message, removed)
            return
        match typed.action:
            case "render":
                rendered = await self._service.jams.render(requester, jam.id)
                await self._changed(message, rendered, announce=JamNewsKind.RENDERING)
            case "close":
                closed = await self._service.jams.close(requester, jam.id)
                announce = None
                if isinstance(closed, JamChanged) and closed.jam.current.winner_take is not None:
                    announce = JamNewsKind.CLOSED
                await self._changed(message, closed, announce=announce)
            case "next":
                started = await self._service.jams.next_round(requester, jam.id)
                await self._changed(message, started, announce=JamNewsKind.NEXT_ROUND)
            case "board":
                url = await self._service.jams.board_url(requester, jam.id)
                if isinstance(url, Refused):
                    await self._answer(message, texts.problem(url.message))
                else:
                    await self._answer(message, texts.esc(jam_words.board(url)))
            case "revoke":
                revoked = await self._service.jams.revoke_board(requester, jam.id)
                await self._changed(message, revoked)

    async def _start(self, message: Message, chat: Chat, sender: Sender, typed: JamStart) -> None:
        bot = message.get_bot()
        thread_id = thread_of(message)
        # What the takes' jobs keep (the core copies it onto each): the topic and the title.
        job: dict[str, Any] = {}
        if thread_id is not None:
            job["thread_id"] = thread_id
        if chat.title:
            job["chat_title"] = chat.title
        where = Destination(
            PLATFORM,
            place_key(chat.id, thread_id),
            str(sender.id),
            context={"thread_id": thread_id, "job": job} if thread_id else {"job": job},
            scope_id=str(chat.id),
        )
        requester = await self._admins.requester(bot, sender, chat)
        outcome = await self._service.jams.start(
            requester,
            where,
            typed.theme,
            takes=typed.takes,
            minutes=typed.minutes,
            vote_minutes=typed.vote_minutes,
        )
        if isinstance(outcome, Refused):
            await self._answer(message, texts.problem(outcome.message))
            return
        jam = outcome.jam
        text = jam_texts.jam_message(jam)
        async with answer_turn(bot, chat.id):
            sent = await send(bot, chat.id, text, message.message_id, thread_id)
        self._messages.posted(jam.id, sent.message_id, text)
        # The takes reply to the jam message: the chat's song, asked for by everyone.
        job["request_message_id"] = sent.message_id
        stored = await self._service.jams.set_context(jam.id, message_id=sent.message_id, job=job)
        # A line added while the message was on its way shows in the next edit.
        self._messages.update(stored or jam)

    async def _add(self, message: Message, jam: Jam, sender: Sender, kind: str, text: str) -> None:
        requester = await self._admins.requester(message.get_bot(), sender, message.chat)
        added = await self._service.jams.add(requester, jam.id, Part(kind), text)
        if isinstance(added, Refused):
            await self._answer(message, texts.problem(added.message))
            return
        self._messages.update(added.jam)
        await self._answer(message, f"✍️ {jam_texts.sentence(added.message)}")

    async def _changed(
        self,
        message: Message,
        outcome: JamChanged | Refused,
        *,
        announce: JamNewsKind | None = None,
    ) -> None:
        """The answer to a command that changed the jam: the core's sentence, said once when
        it is news the core may also tell (rendering, the winner, the next round)."""
        if isinstance(outcome, Refused):
            await self._answer(message, texts.problem(outcome.message))
            return
        self._messages.update(outcome.jam)
        if announce is None:
            await self._answer(message, jam_texts.sentence(outcome.message))
            return
        bot = message.get_bot()
        async with answer_turn(bot, message.chat.id):
            await self._announcer.announce(
                bot, outcome.jam, announce, outcome.message, reply_to=message.message_id
            )

    # ------------------------------------------------------------ a reply is a line
    async def reply_line(self, update: Update, context: Context) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        replied = message.reply_to_message
        if replied is None or not from_bot(replied, context.bot):
            return
        jam = await self._service.jams.jam_at(PLATFORM, place_key(chat.id, thread_of(message)))
        if jam is None or self._messages.message_id(jam) != replied.message_id:
            return  # a reply to another message of ours: not for the jam
        sender = sender_of(message)
        if sender is None:
            await self._answer(message, texts.problem(NO_SENDER))
            return
        await self._add(message, jam, sender, "line", message.text)

    # ------------------------------------------------------------ 🗳
    async def vote(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None:
            return
        press = keyboards.parse_vote(query.data)
        if press is None:
            await query.answer("That button no longer works; try /jam.")
            return
        source = query.message
        chat = source.chat if source is not None else None
        # A vote is the person's own, even an anonymous admin's.
        requester = await self._admins.requester(context.bot, person(query.from_user), chat)
        voted = await self._service.jams.vote(requester, press.jam_id, press.round, press.take)
        await query.answer(texts.plain_answer(voted.message))
        if not isinstance(voted, Refused):
            self._messages.update(voted.jam)

    async def _answer(self, message: Message, text: str) -> None:
        """A reply to the command, in its chat's answer turn and its topic."""
        bot = message.get_bot()
        async with answer_turn(bot, message.chat.id):
            await send(bot, message.chat.id, text, message.message_id, thread_of(message))
