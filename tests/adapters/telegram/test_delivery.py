"""The Delivery port on its own: previews of songs too big to send, and local Bot API mode."""

from __future__ import annotations

from pathlib import Path

from adapters.telegram.delivery import TelegramDelivery
from adapters.telegram.status import StatusBoard
from bot.clock import utcnow
from bot.delivery import tracks_of
from bot.domain import Destination, GenerationRequest, Job, JobId, JobState, UserId
from tests.adapters.telegram.conftest import TOKEN, WAIT, bot_settings, telegram_bot
from tests.fakes.audio import make_audio, probe_audio
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import POLL_SCALE


def finished_job(chat_id: int, request_message_id: int, audio: Path) -> Job:
    now = utcnow()
    return Job(
        id=JobId(7),
        user_id=UserId(1),
        request=GenerationRequest("long, slow, ambient", "", 60, 5),
        destination=Destination(
            "telegram", str(chat_id), "42", {"request_message_id": request_message_id}
        ),
        state=JobState.SUCCEEDED,
        backend="wavespeed",
        created_at=now,
        updated_at=now,
        seed_used=5,
        audio_path=str(audio),
        audio_duration=60.0,
    )


async def test_a_song_too_big_for_the_chat_is_sent_as_a_labelled_preview(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    source = tmp_path / "job-7.wav"
    source.write_bytes(make_audio(60.0, "wav"))
    alice = tg.user(42, "Alice")
    chat = tg.private_chat(alice)
    request = await tg.send_message(chat, alice, "/song long, slow, ambient | 60 | 5")
    job = finished_job(chat.id, request["message_id"], source)

    async with tg.bot() as bot:
        board = StatusBoard(bot, time_scale=POLL_SCALE)
        delivery = TelegramDelivery(bot, board, upload_limit=400_000)
        receipt = await delivery.deliver(job, tracks_of(job))
        await board.close()

    track = tg.message(chat, int(receipt.message_id))
    assert track.audio is not None and track.audio.size <= 400_000
    seconds = probe_audio(track.audio.data)[0]
    assert 10 <= seconds < 59
    assert track.audio.title == "Long, Slow, Ambient (preview)"
    assert track.caption is not None and "Preview: the first 0:" in track.caption
    assert "of 1:00" in track.caption and "Seed 5" in track.caption
    assert track.reply_to_message_id == request["message_id"]
    assert source.exists()  # the full song stays on disk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job-7.wav"]  # no upload leftovers


async def test_local_mode_sends_the_file_by_path(tmp_path: Path, ws: FakeWaveSpeed) -> None:
    async with FakeTelegram(token=TOKEN, local_mode=True, time_scale=POLL_SCALE) as tg:
        settings = bot_settings(tmp_path, tg, ws, telegram_local_mode=True)
        async with telegram_bot(settings, tg, ws) as rig:
            await rig.ask("/song piano | 10")
            track = await tg.wait_for_audio(rig.group, timeout=WAIT)
        assert tg.calls_to("sendAudio")[0]["audio"].startswith("file://")
        assert track.audio is not None and abs(probe_audio(track.audio.data)[0] - 10) <= 0.1
        assert track.thumbnail is not None
        leftovers = [p for p in settings.audio_dir.iterdir() if p.name.startswith(".telegram")]
        assert leftovers == []
