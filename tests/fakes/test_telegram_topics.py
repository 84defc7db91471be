"""The Telegram fake's forum topics, driven by the real python-telegram-bot client: a message
written in a topic says so (``message_thread_id``, ``is_topic_message``), the bot's messages
go to the topic it names, or to the topic of the message they answer, or to General."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InputMediaAudio, ReplyParameters
from telegram.error import BadRequest

from tests.fakes.audio import make_audio
from tests.fakes.telegram import FakeTelegram

TOKEN = "123456:TEST-TOKEN"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="AceJamBot", time_scale=0.001) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with tg.bot() as client:
        yield client


async def test_a_topic_message_and_the_bots_answers_stay_in_the_topic(
    tg: FakeTelegram, bot: Bot
) -> None:
    alice = tg.user(42, "Alice")
    forum = tg.group_chat(-100555, "Studio", forum=True)
    topic = tg.forum_topic(forum, "Jam night", alice)

    await tg.send_message(forum, alice, "/jam start sea shanties", thread=topic)
    (update,) = await bot.get_updates(timeout=0)
    message = update.message
    assert message is not None and message.chat.is_forum
    assert message.is_topic_message and message.message_thread_id == topic
    assert message.reply_to_message is not None  # the topic's opening, as on Telegram
    assert message.reply_to_message.forum_topic_created is not None
    assert message.reply_to_message.forum_topic_created.name == "Jam night"

    named = await bot.send_message(forum.id, "in the topic", message_thread_id=topic)
    replied = await bot.send_message(
        forum.id, "a reply", reply_parameters=ReplyParameters(message.message_id)
    )
    general = await bot.send_message(forum.id, "in General")
    assert named.message_thread_id == topic and named.is_topic_message
    assert replied.message_thread_id == topic  # a reply goes where its message is
    assert general.message_thread_id is None
    mp3 = make_audio(1.0)
    audio = await bot.send_audio(forum.id, mp3, filename="a.mp3", message_thread_id=topic)
    album = await bot.send_media_group(
        forum.id,
        [InputMediaAudio(mp3, filename=f"{n}.mp3") for n in (1, 2)],
        message_thread_id=topic,
    )
    assert audio.message_thread_id == topic
    assert [m.message_thread_id for m in album] == [topic, topic]
    in_topic = [m.text or m.caption for m in tg.chat_log(forum) if m.thread_id == topic]
    assert in_topic[:2] == ["in the topic", "a reply"]
    assert len(in_topic) == 5

    with pytest.raises(BadRequest, match="thread not found"):
        await bot.send_message(forum.id, "nowhere", message_thread_id=topic + 100)


async def test_a_plain_group_ignores_thread_ids(tg: FakeTelegram, bot: Bot) -> None:
    group = tg.group_chat(-100556, "Plain")
    sent = await bot.send_message(group.id, "hi", message_thread_id=7)
    assert sent.message_thread_id is None
