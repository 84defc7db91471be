"""``/history`` (a page of someone's songs, with ◀ ▶ to page) and ``/show <id>`` (a song
posted again). The rules (whose songs, who may see one where) are the core's
(:mod:`bot.library`); this module reads the commands and renders the answers.

A page button carries ``hp:<owner>:<page>``: the list is its owner's, so another member's
press gets a sentence instead of someone else's list (a group's anonymous admins' list is
paged by any of its admins). The re-post of ``/show`` is the
core's, through this adapter's delivery (:class:`~adapters.telegram.delivery.TelegramDelivery`):
a reply to the ``/show`` message, in its forum topic, with the track's card and buttons.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from adapters.telegram import keyboards, texts
from adapters.telegram.delivery import PLATFORM
from adapters.telegram.flood import answer_turn, answering
from adapters.telegram.permissions import ChatAdmins, Sender, as_requester, person
from adapters.telegram.places import send, thread_of
from bot.domain import Destination
from bot.library import HistoryPage
from bot.service import GenerationService, Refused, Requester

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
Asked = Callable[[Update], Awaitable[tuple[Message | None, Any, Sender | None]]]
Personal = Callable[[Message, str], Awaitable[None]]

PAGE = "hp"  # ◀ ▶ under a /history list
PAGE_PATTERN = re.compile(rf"^{PAGE}:(-?\d{{1,19}}):(\d{{1,6}})$")
PAGE_SIZE = 10
NEWER_LABEL = "◀ Newer"
OLDER_LABEL = "Older ▶"
AGAIN_LABEL = "🔁 Make it again"
SHOW_USAGE = "Send /show and a song's number, e.g. `/show 12`; /history lists yours."
NOT_YOUR_LIST = "That list is someone else's; send /history for yours."


def page_keyboard(owner: int, page: HistoryPage) -> InlineKeyboardMarkup | None:
    buttons = []
    if page.has_previous:
        buttons.append(
            InlineKeyboardButton(NEWER_LABEL, callback_data=f"{PAGE}:{owner}:{page.page - 1}")
        )
    if page.has_next:
        buttons.append(
            InlineKeyboardButton(OLDER_LABEL, callback_data=f"{PAGE}:{owner}:{page.page + 1}")
        )
    return InlineKeyboardMarkup([buttons]) if buttons else None


class LibraryCommands:
    """service: the core. admins: who administers each chat. asked/personal: the command
    handlers' own reading of a message (who sent it) and answer to one person."""

    def __init__(
        self,
        service: GenerationService,
        admins: ChatAdmins,
        *,
        asked: Asked,
        personal: Personal,
    ) -> None:
        self._service = service
        self._admins = admins
        self._asked = asked
        self._personal = personal

    def register(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        only_new = filters.UpdateType.MESSAGE
        application.add_handler(
            CommandHandler("history", answering(self.history), filters=only_new)
        )
        # Not in the chat's answer turn: the track is a delivery, paced as one.
        application.add_handler(CommandHandler("show", self.show, filters=only_new))
        application.add_handler(CallbackQueryHandler(self.page, pattern=PAGE_PATTERN))

    async def history(self, update: Update, context: Context) -> None:
        """``/history`` or ``/history 2``: a page of the sender's songs, newest first."""
        message, _, sender = await self._asked(update)
        if message is None or sender is None:
            return
        argument = (context.args or ["1"])[0]
        # Anything else is page 1; a number past the last page is the last.
        typed = argument.isascii() and argument.isdigit() and len(argument) <= 6
        page = await self._service.history(
            as_requester(sender), page=int(argument) if typed else 1, page_size=PAGE_SIZE
        )
        text = texts.history_text(page)
        keyboard = page_keyboard(sender.id, page)
        if keyboard is None:
            await self._personal(message, text)
            return
        # Paged lists stay: the buttons would die with a removed message.
        await message.reply_text(text, reply_markup=keyboard)

    async def page(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None:
            return
        match = PAGE_PATTERN.match(query.data or "")
        if match is None:
            return
        owner, wanted = int(match[1]), int(match[2])
        source = query.message
        if not await self._may_page(context.bot, owner, query.from_user, source):
            await query.answer(NOT_YOUR_LIST, show_alert=True)
            return
        page = await self._service.history(
            Requester(PLATFORM, str(owner)), page=wanted, page_size=PAGE_SIZE
        )
        await query.answer()
        if not isinstance(source, Message):
            return
        async with answer_turn(context.bot, source.chat.id):
            try:
                await source.edit_text(
                    texts.history_text(page), reply_markup=page_keyboard(owner, page)
                )
            except BadRequest as error:  # the same page again ("message is not modified")
                logger.info("history page not changed: %s", error)

    async def _may_page(self, bot: Bot, owner: int, user: User, source: object) -> bool:
        """The list's owner pages it; a group's own list (its anonymous admins' songs), any
        of its admins."""
        if owner == user.id:
            return True
        if not isinstance(source, Message) or owner != source.chat.id:
            return False
        try:
            return await self._admins.is_admin(bot, source.chat, person(user))
        except TelegramError as error:
            logger.warning("Telegram: could not list the admins of %s: %s", owner, error)
            return False

    async def show(self, update: Update, context: Context) -> None:
        """``/show 12``: song #12 posted again here, as a reply to this message."""
        message, chat, sender = await self._asked(update)
        if message is None or chat is None or sender is None:
            return
        argument = (context.args or [""])[0].lstrip("#")
        if not (argument.isascii() and argument.isdigit()) or len(argument) > 19:
            async with answer_turn(context.bot, chat.id):
                await message.reply_text(texts.problem(SHOW_USAGE))
            return
        job_id = int(argument)
        thread_id = thread_of(message)
        # What the new post needs; the old card and topic belong to the first post.
        here: dict[str, Any] = {
            "request_message_id": message.message_id,
            "thread_id": thread_id,
            "status_message_id": None,
        }
        outcome = await self._service.show(
            job_id,
            await self._admins.requester(context.bot, sender, chat),
            Destination(PLATFORM, str(chat.id), str(sender.id), context=here),
        )
        if not isinstance(outcome, Refused):
            return  # the track itself is the answer
        keyboard = None
        if outcome.code == "swept":
            again = InlineKeyboardButton(
                AGAIN_LABEL, callback_data=f"{keyboards.SAME_SEED}:{job_id}"
            )
            keyboard = InlineKeyboardMarkup([[again]])
        async with answer_turn(context.bot, chat.id):
            await send(
                context.bot,
                chat.id,
                texts.problem(outcome.message),
                message.message_id,
                thread_id,
                keyboard=keyboard,
            )
