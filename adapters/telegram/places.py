"""What the command handlers share about messages and chats: how a reply is sent, which
forum topic a message is in, the job a bot message is about, and the adapter's context
stored on a job (``place``)."""

from __future__ import annotations

import re
from typing import Any

from telegram import Bot, Chat, InlineKeyboardMarkup, Message, ReplyParameters, Update, User

from adapters.telegram import keyboards
from bot.domain import Job

_JOB_NUMBER = re.compile(r"#(\d{1,19})$")  # the end of a status message: "… · #12"
_SEED = re.compile(r"🌱 Seed (\d{1,10})\b")


async def send(
    bot: Bot,
    chat_id: int,
    text: str,
    reply_to: int | None,
    thread_id: int | None,
    *,
    keyboard: InlineKeyboardMarkup | None = None,
) -> Message:
    """A reply that still goes out if the user deleted the message it answers."""
    return await bot.send_message(
        chat_id,
        text,
        reply_parameters=(
            ReplyParameters(reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        ),
        message_thread_id=thread_id,
        reply_markup=keyboard,
    )


def place_key(chat_id: int, thread_id: int | None) -> str:
    """A jam's place: the chat, or ``"<chat>:<topic>"`` for a forum topic (one open jam each)."""
    return str(chat_id) if thread_id is None else f"{chat_id}:{thread_id}"


def place_of(key: str) -> tuple[int, int | None]:
    """The chat and forum topic of a place key (a destination's ``chat_id`` may be one)."""
    chat, _, topic = key.partition(":")
    return int(chat), int(topic) if topic else None


def in_chat(key: str, chat_id: int | str) -> bool:
    """Is a destination's ``chat_id`` (a chat, or a jam take's ``"<chat>:<topic>"``) in
    ``chat_id``?"""
    return place_of(key)[0] == int(chat_id)


def job_number(text: str | None) -> int | None:
    found = _JOB_NUMBER.search(text or "")
    return int(found.group(1)) if found and int(found.group(1)) <= keyboards.MAX_JOB_ID else None


def from_bot(message: Message, bot: Bot) -> bool:
    return message.from_user is not None and message.from_user.id == bot.id


def parts(update: Update) -> tuple[Message | None, Chat | None, User | None]:
    return update.effective_message, update.effective_chat, update.effective_user


def thread_of(message: Message) -> int | None:
    """The forum topic a message is in: our replies must go to the same one."""
    return message.message_thread_id if message.is_topic_message else None


def place(
    chat: Chat, request_message_id: int, thread_id: int | None, requester_name: str | None
) -> dict[str, Any]:
    """What ``deliver`` needs later (also after a restart), stored on the job. No secrets."""
    place: dict[str, Any] = {"request_message_id": request_message_id}
    if chat.title:
        place["chat_title"] = chat.title
    if thread_id is not None:
        place["thread_id"] = thread_id
    if requester_name:  # the track card says who asked
        place["requester_name"] = requester_name
    return place


def owner_name(job: Job) -> str | None:
    name = job.destination.context.get("requester_name")
    return name if isinstance(name, str) and name else None


def track_job(message: Message, bot: Bot) -> int | None:
    """The song a track of ours is (its buttons name it; its caption ends a line with
    "#12"; an album's takes have no buttons, the message under them has 🎲 / 🔁), or None
    when ``message`` is no finished song of ours (a status card is not one)."""
    if not from_bot(message, bot):
        return None
    if message.audio is not None:
        return keyboards.job_of(message.reply_markup) or _caption_number(message.caption)
    return _song_buttons(message.reply_markup)


def _song_buttons(markup: InlineKeyboardMarkup | None) -> int | None:
    for row in markup.inline_keyboard if markup is not None else ():
        for button in row:
            data = button.callback_data if isinstance(button.callback_data, str) else None
            press = keyboards.parse(data)
            if press is not None and press.action in (keyboards.REROLL, keyboards.SAME_SEED):
                return press.job_id
    return None


def track_seed(message: Message) -> int | None:
    """The seed a track's card names ("🌱 Seed 1234"): one take's own, in an album."""
    found = _SEED.search(message.caption or "")
    return int(found.group(1)) if found else None


def _caption_number(caption: str | None) -> int | None:
    for line in reversed((caption or "").splitlines()):
        found = job_number(line)
        if found is not None:
            return found
    return None
