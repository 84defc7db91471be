"""The Telegram fake's sendMediaGroup, driven by the real python-telegram-bot client: an album of
audio files arrives as messages sharing a media_group_id, each with its own caption and title,
and what Telegram refuses is refused with its words."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from telegram import Bot, InputMediaAudio, InputMediaDocument
from telegram.error import BadRequest, RetryAfter

from tests.fakes.audio import make_audio
from tests.fakes.telegram import FakeTelegram

TOKEN = "123456:TEST-TOKEN"


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # RetryAfter's retry_after as PTB 23 reads it


@pytest.fixture(scope="module")
def mp3() -> bytes:
    return make_audio(1.0)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, time_scale=0.001) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with tg.bot() as client:
        yield client


def takes(mp3: bytes, count: int) -> list[InputMediaAudio]:
    return [
        InputMediaAudio(
            mp3, caption=f"Take {n}", title=f"Song — take {n}", filename=f"take-{n}.mp3"
        )
        for n in range(1, count + 1)
    ]


async def test_an_album_of_audio_arrives_as_messages_of_one_group(
    tg: FakeTelegram, bot: Bot, mp3: bytes
) -> None:
    alice = tg.user(42, "Alice")
    chat = tg.private_chat(alice)
    request = await tg.send_message(chat, alice, "/song lo-fi")

    sent = await bot.send_media_group(
        chat.id, takes(mp3, 3), reply_to_message_id=request["message_id"]
    )

    assert [m.audio.title for m in sent if m.audio] == [f"Song — take {n}" for n in (1, 2, 3)]
    assert len({m.media_group_id for m in sent}) == 1 and sent[0].media_group_id
    album = await tg.wait_for_album(chat, size=3)
    assert [m.caption for m in album] == ["Take 1", "Take 2", "Take 3"]
    assert [m.audio.filename for m in album if m.audio] == [f"take-{n}.mp3" for n in (1, 2, 3)]
    assert all(m.reply_to_message_id == request["message_id"] for m in album)
    assert all(not m.warnings and not m.buttons for m in album)
    assert tg.album_of(album[1]) == album


async def test_what_telegram_refuses_in_an_album(tg: FakeTelegram, bot: Bot, mp3: bytes) -> None:
    alice = tg.user(42, "Alice")
    chat = tg.private_chat(alice)

    with pytest.raises(BadRequest, match=r"(?i)too many messages to send as an album"):
        await bot.send_media_group(chat.id, takes(mp3, 11))
    mixed: list[InputMediaAudio | InputMediaDocument] = [
        *takes(mp3, 1),
        InputMediaDocument(b"notes", filename="notes.txt"),
    ]
    with pytest.raises(BadRequest, match=r"(?i)audio can't be mixed with other media types"):
        await bot.send_media_group(chat.id, mixed)
    async with httpx.AsyncClient() as http:  # a part named in media but never sent
        answer = await http.post(
            f"{tg.base_url}/bot{TOKEN}/sendMediaGroup",
            data={"chat_id": chat.id, "media": '[{"type": "audio", "media": "attach://gone"}]'},
        )
    assert answer.json()["description"] == "Bad Request: can't parse InputMedia: media not found"
    assert tg.chat_log(chat) == []  # a refused album sends nothing


async def test_buttons_on_an_album_are_dropped_as_telegram_reads_none(
    tg: FakeTelegram, bot: Bot, mp3: bytes
) -> None:
    alice = tg.user(42, "Alice")
    chat = tg.private_chat(alice)
    markup = {"inline_keyboard": [[{"text": "▶ Keep 1", "callback_data": "kp:1:1"}]]}

    await bot.send_media_group(chat.id, takes(mp3, 2), api_kwargs={"reply_markup": markup})

    album = await tg.wait_for_album(chat, size=2)
    assert all(not m.buttons for m in album)
    assert "reply_markup ignored" in album[0].warnings[0]


async def test_an_album_meets_the_fakes_faults_like_any_method(
    tg: FakeTelegram, bot: Bot, mp3: bytes
) -> None:
    alice = tg.user(42, "Alice")
    chat = tg.private_chat(alice)
    tg.faults.add("sendMediaGroup", status=429, retry_after=3)

    with pytest.raises(RetryAfter):
        await bot.send_media_group(chat.id, takes(mp3, 2))
    assert tg.chat_log(chat) == [] and tg.flood_errors[-1].method == "sendMediaGroup"
    await bot.send_media_group(chat.id, takes(mp3, 2))  # the fault was for the next one only

    assert len(await tg.wait_for_album(chat, size=2)) == 2
    assert len(tg.calls_to("sendMediaGroup")) == 2
