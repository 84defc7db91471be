"""Telegram updates → service calls → replies. One method per command and one for the buttons.

No rules live here: the service decides (validation, quotas, who owns what) and these methods
render its answers. Who asked is the message's :class:`~adapters.telegram.permissions.Sender`
(the chat in ``sender_chat`` when a chat speaks), never Telegram's shared stand-in users.
Idempotency keys name the chat event, so an update Telegram delivers twice (after a crash
before its offset was confirmed) never queues a second song:
``telegram:<chat id>:<message id>`` for ``/song`` and ``telegram:cb:<callback query id>`` for
a button press.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Bot, Chat, Message, Update
from telegram.error import Forbidden, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from adapters.telegram import keyboards, texts
from adapters.telegram.delivery import PLATFORM, TelegramDelivery
from adapters.telegram.edits import EditCommands
from adapters.telegram.flood import answer_turn, answering
from adapters.telegram.keeping import TakeChoices
from adapters.telegram.library import LibraryCommands
from adapters.telegram.parse import FirstPart, ShowHelp, read_song
from adapters.telegram.permissions import (
    ChatAdmins,
    Sender,
    as_requester,
    sender_of,
)
from adapters.telegram.places import (
    from_bot,
    job_number,
    owner_name,
    parts,
    place,
    send,
    thread_of,
    track_job,
    track_seed,
)
from bot import messages
from bot.domain import ChatRules, Destination, Invalid
from bot.presses import PressGuard
from bot.service import Accepted, Done, GenerationService, Refused

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
SORRY = "Sorry — something went wrong on my side. Please try again in a moment."
NO_SENDER = "I can't tell who sent that, so it can't have a song or a quota."
PERSONAL_SECONDS = 60.0  # how long a personal answer (/quota, /queue, /history) stays in a group
PRIVATE_HINT = (
    "🎵 To make a song, send <code>/song</code> and a style, like "
    "<code>/song lo-fi, rainy piano | 1:30</code>. /help tells more."
)


class TelegramHandlers:
    """service: the core. delivery: where status messages are tracked once sent. admins: who
    administers each chat (shared with ``/admin``; a fresh cache when not given)."""

    def __init__(
        self,
        service: GenerationService,
        delivery: TelegramDelivery,
        admins: ChatAdmins | None = None,
        *,
        time_scale: float = 1.0,
    ) -> None:
        self._service = service
        self._delivery = delivery
        self._admins = admins or ChatAdmins(service, delivery)
        self._personal_delay = PERSONAL_SECONDS * time_scale
        self._presses = PressGuard()  # a double tap is one press
        self._takes = TakeChoices(service, self._admins, self._presses)  # ▶ Keep
        self._library = LibraryCommands(
            service, self._admins, asked=self._asked, personal=self._personal
        )
        self._edits = EditCommands(  # /extend, /remix, /repaint and ➕
            service, self._admins, self._presses, asked=self._asked, queued=self._queued
        )

    def register(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        # New messages only: an edited "/song" must not look like a second request.
        only_new = filters.UpdateType.MESSAGE
        # Every answer is built in its chat's turn at the flood gate: when it can go out at
        # once, from the state of that moment, in the order people asked.
        # /song and the buttons take it themselves: only once the song is queued, as the
        # answer is about that song, and a turn held through the submit holds up the chat.
        application.add_handler(CommandHandler("song", self.song, filters=only_new))
        application.add_handler(CommandHandler("describe", self.describe, filters=only_new))
        self._library.register(application)  # /history, /show and their buttons
        self._edits.register(application)
        for name, callback in (
            ("quota", self.quota),
            ("queue", self.queue),
            ("cancel", self.cancel),
            ("limits", self.limits),
            ("help", self.help),
            ("start", self.start),
        ):
            application.add_handler(CommandHandler(name, answering(callback), filters=only_new))
        application.add_handler(CallbackQueryHandler(self.button, pattern=keyboards.PATTERN))
        application.add_handler(
            CallbackQueryHandler(self._takes.keep, pattern=keyboards.KEEP_PATTERN)
        )
        application.add_handler(CallbackQueryHandler(self.unknown_button))
        application.add_error_handler(self.on_error)

    def register_fallback(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """After every other handler: a private chat never goes silent (groups stay quiet)."""
        private_text = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE & filters.TEXT
        application.add_handler(MessageHandler(private_text, answering(self.hint)))

    async def hint(self, update: Update, context: Context) -> None:
        """Free text or an unknown command in a private chat: how to ask for a song."""
        message = update.effective_message
        if message is not None:
            await message.reply_text(PRIVATE_HINT)

    # ------------------------------------------------------------ /song, /describe
    async def song(self, update: Update, context: Context) -> None:
        await self._request(update, context, "tags")

    async def describe(self, update: Update, context: Context) -> None:
        """``/describe a sad song about rain``: the backend's model writes the rest."""
        await self._request(update, context, "describe")

    async def _request(self, update: Update, context: Context, first: FirstPart) -> None:
        message, chat, sender = await self._asked(update)
        if message is None or chat is None or sender is None or not message.text:
            return
        replied = message.reply_to_message
        # /song as a reply to one of our tracks: a variation keeping what the text doesn't give.
        parent = track_job(replied, context.bot) if replied and first == "tags" else None
        # Lyrics may come from the message /song replies to, unless that one is ours.
        replied_text = None
        if replied is not None and not from_bot(replied, context.bot):
            replied_text = replied.text or replied.caption
        fields = read_song(message.text, replied_text=replied_text, first=first)
        if isinstance(fields, ShowHelp) and parent is None:
            help_ = texts.song_format(self._service.limits)
            async with answer_turn(context.bot, chat.id):
                describes = self._service.capabilities.describes
            await message.reply_text(help_ if first == "tags" else texts.describe_format(describes))
            return
        if isinstance(fields, Invalid):
            async with answer_turn(context.bot, chat.id):
                await message.reply_text(texts.problem(fields.message))
            return
        thread_id = thread_of(message)
        destination = Destination(
            PLATFORM,
            str(chat.id),
            str(sender.id),
            context=place(chat, message.message_id, thread_id, sender.name),
        )
        requester = await self._admins.requester(context.bot, sender, chat)
        key = f"telegram:{chat.id}:{message.message_id}"
        if isinstance(fields, ShowHelp):  # a bare /song reply: the parent as it was
            fields = {}
        if parent is not None and replied is not None:
            # The take replied to, when its song made several: its own seed.
            if not fields.get("seed") and (seed := track_seed(replied)) is not None:
                fields["seed"] = seed
            outcome = await self._service.variation(
                parent, requester, destination, fields, idempotency_key=key
            )
        else:
            request = self._service.validate(**fields)
            outcome = await self._service.submit(
                requester, destination, request, idempotency_key=key
            )
        await self._queued(context.bot, outcome, chat.id, message.message_id, thread_id)

    async def _queued(
        self,
        bot: Bot,
        outcome: Accepted | Refused,
        chat_id: int,
        reply_to: int,
        thread_id: int | None,
    ) -> None:
        """Answer a submit: the refusal, or the status card that will follow the job."""
        if isinstance(outcome, Refused):
            async with answer_turn(bot, chat_id):
                await send(bot, chat_id, texts.problem(outcome.message), reply_to, thread_id)
            return
        if outcome.duplicate:  # this very event was handled before
            return
        job = outcome.job
        async with answer_turn(bot, chat_id):
            text = texts.status("🎶", messages.queued_line(outcome.position), job)
            sent = await send(
                bot, chat_id, text, reply_to, thread_id, keyboard=keyboards.cancel_keyboard(job.id)
            )
        self._delivery.board.attach(job.id, chat_id, sent.message_id, text)
        await self._service.set_context(job.id, status_message_id=sent.message_id)

    # ------------------------------------------------------------ account commands
    async def quota(self, update: Update, context: Context) -> None:
        message, chat, sender = await self._asked(update)
        if message is None or chat is None or sender is None:
            return
        # A Telegram chat is its own scope: its rules (set by its admins) apply there.
        requester = await self._admins.requester(context.bot, sender, chat)
        status = await self._service.quota(requester, str(chat.id))
        await self._personal(message, texts.quota_text(status))

    async def queue(self, update: Update, context: Context) -> None:
        message, _, sender = await self._asked(update)
        if message is None or sender is None:
            return
        entries = await self._service.queue_of(as_requester(sender))
        await self._personal(message, texts.queue_text(entries))

    async def _personal(self, message: Message, text: str) -> None:
        """An answer about one person: in a group it goes away after a while (it only
        matters to them, and a busy chat shouldn't keep it)."""
        if message.chat.type == Chat.PRIVATE:
            await message.reply_text(text)
            return
        sent = await message.reply_text(text + texts.tidy_note(PERSONAL_SECONDS))
        self._delivery.board.delete_later(message.chat.id, sent.message_id, self._personal_delay)

    async def limits(self, update: Update, context: Context) -> None:
        """``/limits``: this chat's limits, for anyone (only /admin changes them)."""
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        if chat.type == Chat.PRIVATE:
            rules = ChatRules()
        else:
            rules = await self._service.chat_rules(PLATFORM, str(chat.id))
        await message.reply_text(
            texts.limits_text(chat.title, rules, self._service.policy, self._service.limits)
        )

    async def help(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is not None:
            describes = self._service.capabilities.describes
            edits = self._service.edits_offered
            await message.reply_text(texts.help_text(self._service.limits, describes, edits))

    async def start(self, update: Update, context: Context) -> None:
        message, _, user = parts(update)
        if message is not None:
            speaker = sender_of(message)
            # A person is greeted by name; a chat speaking as itself is not "Hi Group!".
            first_name = user.first_name if user and speaker and speaker.is_person else None
            describes, edits = self._service.capabilities.describes, self._service.edits_offered
            await message.reply_text(
                texts.start_text(self._service.limits, first_name, describes, edits)
            )

    async def cancel(self, update: Update, context: Context) -> None:
        """``/cancel`` (your latest unfinished song), ``/cancel 12``, or as a reply to a
        song's message (its buttons name the job)."""
        message, chat, sender = await self._asked(update)
        if message is None or sender is None:
            return
        requester = as_requester(sender)
        target: int | None = None
        argument = (context.args or [""])[0].lstrip("#")
        replied = message.reply_to_message
        if argument.isdigit() and argument.isascii():
            if len(argument) > 19 or int(argument) > keyboards.MAX_JOB_ID:  # no such id
                await message.reply_text(texts.problem("I can't find that song."))
                return
            target = int(argument)
        elif replied is not None and from_bot(replied, context.bot):
            # Its buttons name the job; a finished status message still ends with "#<id>".
            target = keyboards.job_of(replied.reply_markup) or job_number(replied.text)
            if target is None:
                await message.reply_text(
                    texts.problem(
                        "That message isn't a song in the works; nothing to cancel there."
                    )
                )
                return
        if target is None:
            latest = await self._service.latest_active(requester)
            if latest is None:
                await message.reply_text(f"📭 {texts.rich(messages.NOTHING_TO_CANCEL)}")
                return
            target = latest.id
        # An admin of this chat may cancel anyone's song here.
        outcome = await self._admins.cancel(context.bot, target, sender, chat)
        if isinstance(outcome, Done):
            await message.reply_text(f"✖ {texts.rich(outcome.message)}")
        else:
            await message.reply_text(texts.problem(outcome.message))

    # ------------------------------------------------------------ buttons
    async def button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None:
            return
        press = keyboards.parse(query.data)
        if press is None:  # looks like ours, but names no possible job
            await self.unknown_button(update, context)
            return
        # A double tap (or a laggy client's repeat) is the same press: it changes nothing.
        key = (PLATFORM, query.from_user.id, press.action, press.job_id)
        if not self._presses.first(key):
            await query.answer(messages.ALREADY_PRESSED)
            return
        source = query.message
        where = source.chat if source is not None else None
        # A press is always the real person's; they may be acting for the anonymous admins.
        presser = await self._admins.acting_for(context.bot, query.from_user, where, press.job_id)
        if press.action == keyboards.CANCEL:
            cancelled = await self._admins.cancel(context.bot, press.job_id, presser, where)
            if isinstance(cancelled, Done):
                await query.answer(texts.plain_answer(cancelled.message))
            else:
                self._presses.forget(key)  # nothing happened: a retry is a new press
                await query.answer(texts.plain_answer(cancelled.message), show_alert=True)
            return
        if source is None:
            await query.answer("That message is too old to use; send /song instead.")
            return
        chat = source.chat
        requester = await self._admins.requester(context.bot, presser, chat)
        thread_id = thread_of(source) if isinstance(source, Message) else None
        same_seed = press.action == keyboards.SAME_SEED
        original = await self._service.get_job(press.job_id)
        stored = place(chat, source.message_id, thread_id, presser.name)
        owner = owner_name(original) if original is not None else None
        if original is not None and original.destination.user_id != str(presser.id):
            stored["take_of"] = owner or "someone else"  # the card says whose take it is
        outcome = await self._service.reroll(
            press.job_id,
            requester,
            same_seed=same_seed,
            destination=Destination(PLATFORM, str(chat.id), requester.user_id, context=stored),
            idempotency_key=f"telegram:cb:{query.id}",
        )
        if isinstance(outcome, Refused):
            self._presses.forget(key)  # nothing happened: a retry is a new press
            await query.answer(texts.plain_answer(outcome.message), show_alert=True)
            return
        if outcome.duplicate:
            await query.answer(messages.ALREADY_PRESSED)
            return
        what = "🔁 Same seed again" if same_seed else "🎲 New take"
        if "take_of" in stored:
            what += f" of {stored['take_of']}'s song"
        await query.answer(texts.plain_answer(f"{what} — queued."))
        await self._queued(context.bot, outcome, chat.id, source.message_id, thread_id)
        async with answer_turn(context.bot, chat.id):
            await self._mark_used(context.bot, source, query.data or "")

    async def _mark_used(self, bot: Bot, source: object, data: str) -> None:
        """The pressed button now says it was used (the new song's card is right below)."""
        if not isinstance(source, Message):
            return
        marked = keyboards.marked_used(source.reply_markup, data)
        if marked is None:
            return
        try:
            await bot.edit_message_reply_markup(
                source.chat.id, source.message_id, reply_markup=marked
            )
        except TelegramError as error:  # cosmetic: the press itself worked
            logger.info("could not mark button %s as used: %s", data, error)

    async def unknown_button(self, update: Update, context: Context) -> None:
        """A button this bot no longer makes: still answer, or it spins forever."""
        if update.callback_query is not None:
            await update.callback_query.answer("That button no longer works; try /help.")

    async def _asked(self, update: Update) -> tuple[Message | None, Chat | None, Sender | None]:
        """The message, its chat and who sent it; a sender no one can be told apart from
        (Telegram's stand-in without its chat) is told so and gets None."""
        message, chat, _ = parts(update)
        if message is None:
            return None, chat, None
        sender = sender_of(message)
        if sender is None:
            await message.reply_text(texts.problem(NO_SENDER))
        return message, chat, sender

    # ------------------------------------------------------------ errors
    async def on_error(self, update: object, context: Context) -> None:
        """Log it, and tell the user something went wrong, unless saying so is the problem."""
        error = context.error
        logger.error("Telegram update failed", exc_info=error)
        if not isinstance(update, Update):
            return
        # RetryAfter was waited out already and Forbidden means we can't post there: another
        # message would only fail the same way (or become the second message we avoid).
        if isinstance(error, RetryAfter | Forbidden):
            return
        try:
            query = update.callback_query
            if query is not None:
                await query.answer(SORRY, show_alert=True)
            elif update.effective_message is not None:
                await update.effective_message.reply_text(f"⚠️ {texts.esc(SORRY)}")
        except Exception as follow_up:  # best effort: the failure is logged above
            logger.warning("could not tell the user about the failure: %s", follow_up)
