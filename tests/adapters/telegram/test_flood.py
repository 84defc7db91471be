"""Flood control: progress bursts are coalesced and paced, a 429 is waited out, never resent."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from telegram.ext import ExtBot

from adapters.telegram.flood import FloodDeferred, FloodGate, Priority, sending
from adapters.telegram.status import GROUP_INTERVAL, PRIVATE_INTERVAL
from bot.clock import utcnow
from bot.domain import Job, JobState
from bot.ports import EventKind, JobEvent
from tests.adapters.telegram.conftest import TOKEN, WAIT, Rig, bot_settings, telegram_bot
from tests.adapters.telegram.test_commands import job_id_of
from tests.fakes.telegram import FakeTelegram, RecordedMessage
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import POLL_SCALE, wait_for_job

ROUNDS = 5
EVENTS_PER_ROUND = 20


def gaps(messages: list[RecordedMessage]) -> list[float]:
    times = sorted(edit.at for message in messages for edit in message.edits)
    return [later - earlier for earlier, later in itertools.pairwise(times)]


async def test_a_burst_of_progress_never_hits_the_flood_limit(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> None:
    # No worker: the test plays its part, reporting progress far faster than any backend.
    settings = bot_settings(tmp_path, tg, ws)
    async with telegram_bot(settings, tg, ws, worker=False) as rig:
        private = tg.private_chat(rig.alice)
        in_group = [await rig.ask("/song first | 20"), await rig.ask("/song second | 20", rig.bob)]
        await rig.say("/song third | 20", chat=private)
        in_private = await tg.wait_for_message(private, "Queued", timeout=WAIT)
        statuses = [*in_group, in_private]
        jobs: list[Job] = []
        for status in statuses:
            job = await rig.core.service.get_job(job_id_of(status))
            assert job is not None
            jobs.append(job)

        eta = utcnow() + timedelta(minutes=10)
        commands: list[int] = []
        for round_ in range(1, ROUNDS + 1):
            for step in range(1, EVENTS_PER_ROUND + 1):
                progress = ((round_ - 1) * EVENTS_PER_ROUND + step) / (ROUNDS * EVENTS_PER_ROUND)
                for job in jobs:
                    event = JobEvent(EventKind.PROGRESS, job, progress=progress, eta=eta)
                    await rig.delivery.on_event(event)
            # People keep talking to the bot meanwhile.
            commands += [await rig.say("/quota", rig.alice), await rig.say("/queue", rig.bob)]
            shown = f"— {round_ * 100 // ROUNDS}%."
            await tg.wait_until(
                lambda shown=shown: all(shown in (s.text or "") for s in statuses),  # type: ignore[misc]
                what=f"statuses at {shown}",
                timeout=WAIT,
            )
        for command in commands:  # answered (and by now perhaps tidied away)
            await tg.wait_for_message(
                rig.group,
                lambda m, c=command: m.reply_to_message_id == c,  # type: ignore[misc]
                timeout=WAIT,
                include_deleted=True,
            )

        assert tg.flood_errors == []
        for status in statuses:
            history = [text or "" for text in status.text_history]
            assert all(a != b for a, b in itertools.pairwise(history))
            assert len(status.edits) <= 2 * ROUNDS  # 100 events, a handful of edits
            assert [b.text for b in status.buttons] == ["✖ Cancel"]  # kept on every edit
        # Edits in one chat are spaced by the status interval (the fake's clock).
        assert min(gaps(in_group)) >= GROUP_INTERVAL * POLL_SCALE * 0.95
        assert min(gaps([in_private])) >= PRIVATE_INTERVAL * POLL_SCALE * 0.95


async def test_a_429_on_send_audio_is_waited_out_and_the_track_arrives_once(rig: Rig) -> None:
    rig.tg.faults.add("sendAudio", status=429, retry_after=1)
    status = await rig.ask("/song lo-fi | 10")
    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    job = await wait_for_job(rig.core, job_id_of(status), {JobState.DELIVERED})

    assert [(e.method, e.scope) for e in rig.tg.flood_errors] == [("sendAudio", "fault")]
    assert len(rig.tg.calls_to("sendAudio")) == 2  # the refused one, then the one that worked
    assert [m for m in rig.tg.chat_log(rig.group) if m.audio] == [track]
    assert job.delivered_message_id == str(track.message_id)
    assert not any("went wrong" in (m.text or "") for m in rig.tg.chat_log(rig.group))


async def test_the_flood_gate_spaces_concurrent_sends_to_telegrams_limits() -> None:
    scale = 0.01  # Telegram's minute is 0.6 s here, for the fake and the gate alike
    async with FakeTelegram(token=TOKEN, time_scale=scale) as tg:
        alice = tg.user(42, "Alice")
        private, group = tg.private_chat(alice), tg.group_chat(-100777, "Busy room")
        bot = ExtBot(
            TOKEN,
            base_url=f"{tg.base_url}/bot",
            base_file_url=f"{tg.base_url}/file/bot",
            rate_limiter=FloodGate(time_scale=scale),
        )
        async with bot:
            sends = [bot.send_message(private.id, f"private {n}") for n in range(8)]
            sends += [bot.send_message(group.id, f"group {n}") for n in range(25)]
            started = asyncio.get_running_loop().time()
            await asyncio.gather(*sends)
            elapsed = asyncio.get_running_loop().time() - started
        assert tg.flood_errors == []
        assert len(tg.chat_log(private)) == 8 and len(tg.chat_log(group)) == 25
        # The 21st group message had to wait for the first to leave the one-minute window.
        assert elapsed >= 60 * scale * 0.95


async def test_answers_go_first_and_progress_only_takes_what_is_left() -> None:
    scale = 0.05  # Telegram's minute is 3 s here (room for a loaded machine's slowness)
    async with FakeTelegram(token=TOKEN, time_scale=scale) as tg:
        group = tg.group_chat(-100778, "Busy room")
        gate = FloodGate(time_scale=scale)
        bot = ExtBot(
            TOKEN,
            base_url=f"{tg.base_url}/bot",
            base_file_url=f"{tg.base_url}/file/bot",
            rate_limiter=gate,
        )
        async with bot:
            sent = [await bot.send_message(group.id, f"answer {n}") for n in range(12)]
            # 8 of the minute's 20 are left: progress keeps 5 for answers and one for each of
            # the 3 tracks to come, so it may not have any.
            with sending(Priority.PROGRESS, keep_free=3), pytest.raises(FloodDeferred):
                await bot.edit_message_text("50%", chat_id=group.id, message_id=sent[0].message_id)
            # Answers may still use all of them, without a single 429.
            for n in range(8):
                await bot.send_message(group.id, f"more {n}")

            # The minute is spent: an answer waits for room, and progress never gets in first.
            async def late_answer() -> float:
                async with gate.turn(group.id):
                    await bot.send_message(group.id, "late answer")
                return asyncio.get_running_loop().time()

            waiting = asyncio.create_task(late_answer())
            await asyncio.sleep(0)
            with sending(Priority.PROGRESS), pytest.raises(FloodDeferred):
                await bot.edit_message_text("60%", chat_id=group.id, message_id=sent[0].message_id)
            await waiting
        assert tg.flood_errors == []
        log = tg.chat_log(group)
        assert [m.text for m in log][-1] == "late answer"
        assert not log[0].edits  # no progress edit got through


async def test_answers_leave_in_the_order_they_were_asked() -> None:
    async with FakeTelegram(token=TOKEN, time_scale=0.01) as tg:
        group = tg.group_chat(-100779, "Busy room")
        gate = FloodGate(time_scale=0.01)
        bot = ExtBot(TOKEN, base_url=f"{tg.base_url}/bot", rate_limiter=gate)
        built = asyncio.Event()

        async def answer(text: str, slow: bool) -> None:
            async with gate.turn(group.id):
                if slow:  # a slow answer (reading the database, say) keeps its place
                    await built.wait()
                await bot.send_message(group.id, text)

        async with bot:
            first = asyncio.create_task(answer("/queue's answer", slow=True))
            await asyncio.sleep(0.01)
            second = asyncio.create_task(answer("/cancel's answer", slow=False))
            await asyncio.sleep(0.05)
            assert tg.chat_log(group) == []  # the second waits for the first to be built
            built.set()
            await asyncio.gather(first, second)
        assert [m.text for m in tg.chat_log(group)] == ["/queue's answer", "/cancel's answer"]
