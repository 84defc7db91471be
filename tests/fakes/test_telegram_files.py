"""Files users send (audio, voice notes, documents) reach the real python-telegram-bot client as
Telegram sends them, and can be fetched through ``getFile`` and the file URL, up to 20 MB."""

from __future__ import annotations

import datetime as dtm
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import Message
from telegram.error import BadRequest

from tests.fakes.audio import make_audio
from tests.fakes.telegram import FakeTelegram

TOKEN = "123456:TEST-TOKEN"


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # durations as timedeltas, as PTB 23 reads them


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="AceJamBot", time_scale=0.001) as fake:
        yield fake


async def test_a_users_audio_voice_and_document_are_fetched_through_get_file(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    alice = tg.user(42, "Alice", "alice")
    chat = tg.private_chat(alice)
    song = make_audio(2.0, "mp3")
    async with tg.bot() as bot:
        sent = [
            Message.de_json(
                await tg.send_file(
                    chat, alice, song, filename="demo.mp3", mime_type="audio/mpeg", duration=2
                ),
                bot,
            ),
            Message.de_json(
                await tg.send_file(chat, alice, song, kind="voice", mime_type="audio/ogg"), bot
            ),
            Message.de_json(
                await tg.send_file(chat, alice, b"hello", kind="document", filename="a.txt"), bot
            ),
        ]
        audio, voice, document = sent[0].audio, sent[1].voice, sent[2].document
        assert audio is not None and voice is not None and document is not None
        seconds = dtm.timedelta(seconds=2)
        assert (audio.file_name, audio.file_size, audio.duration) == (
            "demo.mp3",
            len(song),
            seconds,
        )
        assert (voice.file_size, voice.mime_type) == (len(song), "audio/ogg")
        assert document.file_name == "a.txt"

        for attachment, data in ((audio, song), (voice, song), (document, b"hello")):
            file = await bot.get_file(attachment.file_id)
            target = tmp_path / attachment.file_unique_id
            await file.download_to_drive(target)
            assert target.read_bytes() == data
        assert (await bot.get_file(voice.file_id)).file_path.endswith(".oga")  # type: ignore[union-attr]


async def test_get_file_refuses_a_file_over_20_mb_as_telegram_does(tg: FakeTelegram) -> None:
    alice = tg.user(42, "Alice", "alice")
    chat = tg.private_chat(alice)
    big = await tg.send_file(chat, alice, bytes(20 * 1024 * 1024 + 1), kind="document")
    assert big["document"]["file_size"] == 20 * 1024 * 1024 + 1
    async with tg.bot() as bot:
        with pytest.raises(BadRequest, match=r"(?i)file is too big"):
            await bot.get_file(big["document"]["file_id"])
