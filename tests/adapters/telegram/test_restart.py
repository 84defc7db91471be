"""A song that finished while the bot was down reaches its chat once the bot is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.app import Core
from bot.domain import JobState
from tests.adapters.telegram.conftest import WAIT, bot_settings, telegram_bot
from tests.adapters.telegram.test_commands import job_id_of
from tests.fakes.audio import probe_audio
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import running_core, wait_for_job


async def wait_for_context(core: Core, job_id: int, key: str) -> None:
    async with asyncio.timeout(WAIT):
        while True:
            job = await core.service.get_job(job_id)
            if job is not None and key in job.destination.context:
                return
            await asyncio.sleep(0.01)


async def test_a_track_finished_during_downtime_is_delivered_once_on_return(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> None:
    settings = bot_settings(tmp_path, tg, ws)

    # 1. The request is taken, then the bot stops before any work is done.
    async with telegram_bot(settings, tg, ws, worker=False) as rig:
        request_id = await rig.say("/song night drive | 20 | 77")
        status = await rig.reply_to(request_id)
        job_id = job_id_of(status)
        await wait_for_context(rig.core, job_id, "status_message_id")
        group, alice = rig.group, rig.alice

    # 2. A worker without Telegram finishes the song: nobody can post it yet.
    async with running_core(settings) as core:
        await wait_for_job(core, job_id, {JobState.SUCCEEDED})
    assert not [m for m in tg.chat_log(group) if m.audio]

    # 3. The bot is back: the track arrives under the request, once, and its buttons work.
    async with telegram_bot(settings, tg, ws) as rig:
        track = await tg.wait_for_audio(group, timeout=WAIT)
        await wait_for_job(rig.core, job_id, {JobState.DELIVERED})
        assert track.reply_to_message_id == request_id
        assert track.audio is not None and abs(probe_audio(track.audio.data)[0] - 20) <= 0.1
        assert "Seed 77" in (track.caption or "")
        # Its card from before the restart goes too (it is named on the job).
        await tg.wait_until(lambda: status.deleted, what="the card deleted", timeout=WAIT)

        query = await tg.press_button(group, alice, track, button_text="Same seed")
        await tg.wait_for_callback_answer(query, timeout=WAIT)
        again = await tg.wait_for_audio(group, predicate=lambda m: m is not track, timeout=WAIT)
        assert "Seed 77" in (again.caption or "")

    audio = [m for m in tg.chat_log(group) if m.audio]
    assert audio == [track, again]
    assert [s["seed"] for s in ws.submits] == [77, 77]
