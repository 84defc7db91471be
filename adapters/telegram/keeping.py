"""▶ Keep presses on Telegram, under a job's takes (:mod:`adapters.telegram.takes`).

Pressing ▶ Keep asks the core (:meth:`GenerationService.keep_take`, which decides who may),
answers with a toast, and marks the kept take ✅ on the choices message. A double tap is one
press; keeping the kept take again changes nothing.
"""

from __future__ import annotations

import logging

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from adapters.telegram import keyboards, texts
from adapters.telegram.flood import answer_turn
from adapters.telegram.permissions import ChatAdmins
from adapters.telegram.takes import choices_text
from bot import messages
from bot.domain import JobId
from bot.presses import PressGuard
from bot.service import GenerationService, Refused

logger = logging.getLogger(__name__)

PLATFORM = "telegram"
GONE = "That button no longer works; try /help."


def marked_kept(markup: InlineKeyboardMarkup | None, kept: int) -> InlineKeyboardMarkup | None:
    """``markup`` with take ``kept`` marked ✅ (and no other), other buttons as they were
    (a used 🎲 stays marked); None when nothing changes."""
    if markup is None:
        return None
    changed = False
    rows = []
    for row in markup.inline_keyboard:
        buttons = []
        for button in row:
            data = button.callback_data if isinstance(button.callback_data, str) else None
            press = keyboards.parse_keep(data)
            if press is not None:
                label = keyboards.KEPT_LABEL if press.take == kept else keyboards.KEEP_LABEL
                text = label.format(take=press.take)
                if text != button.text:
                    button, changed = InlineKeyboardButton(text, callback_data=data), True
            buttons.append(button)
        rows.append(buttons)
    return InlineKeyboardMarkup(rows) if changed else None


def takes_shown(markup: InlineKeyboardMarkup | None) -> int:
    """How many takes a choices message offers."""
    if markup is None:
        return 0
    return sum(
        1
        for row in markup.inline_keyboard
        for button in row
        if keyboards.parse_keep(
            button.callback_data if isinstance(button.callback_data, str) else None
        )
    )


class TakeChoices:
    """The ▶ Keep buttons' handler (registered for :data:`keyboards.KEEP_PATTERN`)."""

    def __init__(self, service: GenerationService, admins: ChatAdmins, presses: PressGuard) -> None:
        self._service = service
        self._admins = admins
        self._presses = presses  # shared with the other buttons: a double tap is one press

    async def keep(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        press = keyboards.parse_keep(query.data)
        if press is None:  # looks like ours, but names no possible job
            await query.answer(GONE)
            return
        key = (PLATFORM, query.from_user.id, keyboards.KEEP, press.job_id, press.take)
        if not self._presses.first(key):
            await query.answer(messages.ALREADY_PRESSED)
            return
        source = query.message
        chat = source.chat if source is not None else None
        bot = context.bot
        # A press is always the real person's; they may be acting for the anonymous admins.
        presser = await self._admins.acting_for(bot, query.from_user, chat, press.job_id)
        requester = await self._admins.requester(bot, presser, chat)
        outcome = await self._service.keep_take(JobId(press.job_id), press.take, requester)
        if isinstance(outcome, Refused):
            self._presses.forget(key)  # nothing happened: a retry is a new press
            await query.answer(texts.plain_answer(outcome.message), show_alert=True)
            return
        await query.answer(texts.plain_answer(outcome.message))
        if isinstance(source, Message):
            async with answer_turn(bot, source.chat.id):
                await self._show_kept(bot, source, press.take)

    @staticmethod
    async def _show_kept(bot: Bot, source: Message, take: int) -> None:
        """The choices message says which take is kept. Cosmetic: the keep itself is done."""
        markup = marked_kept(source.reply_markup, take)
        if markup is None:  # kept already: an identical edit would be refused
            return
        try:
            await bot.edit_message_text(
                choices_text(takes_shown(markup), take),
                chat_id=source.chat.id,
                message_id=source.message_id,
                reply_markup=markup,
            )
        except TelegramError as error:
            logger.info("could not show take %d kept: %s", take, error)
