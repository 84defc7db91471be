"""A busy group: five songs in flight, and people keep asking the bot things.

Answers to people come first and are built when they go out; progress gives way. Telegram's
limits are the fake's (one message a second per chat, 20 a minute per group), on a clock ten
times faster than real time, shared by the fakes and the bot.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain import JobState
from tests.adapters.telegram.conftest import TOKEN, WAIT, Rig, bot_settings, telegram_bot
from tests.adapters.telegram.test_commands import job_id_of
from tests.fakes.telegram import FakeTelegram, FakeUser, RecordedMessage
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY, wait_for_job

SCALE = 0.25  # a nominal second is 0.25 s here, for Telegram, WaveSpeed and the bot alike
ANSWER_WITHIN = 2.0  # nominal seconds from a command to its answer
# The scale shrinks Telegram's clock, not this machine's: building an answer (reading the
# database, asking for the chat's admins) also takes real time, however loaded the machine.
BUILDING = 1.5  # real seconds (a loaded 2-core machine)


def job_seconds(body: dict[str, Any]) -> float:
    """WaveSpeed takes 8-14 s a song, and 30 s for the longest one (29 s)."""
    duration = int(body.get("duration", 20))
    return 30.0 if duration == 29 else 8.0 + duration % 7


@pytest.fixture
async def busy_tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="AceJamBot", time_scale=SCALE) as fake:
        yield fake


@pytest.fixture
async def busy_ws() -> AsyncIterator[FakeWaveSpeed]:
    async with FakeWaveSpeed(time_scale=SCALE, api_key=WAVESPEED_KEY, runtime=job_seconds) as ws:
        yield ws


def latency(tg: FakeTelegram, rig: Rig, request_id: int, answer: RecordedMessage) -> float:
    """Nominal seconds from the request reaching Telegram to the answer appearing, not
    counting up to BUILDING real seconds of the bot's own work."""
    waited = answer.sent_at - tg.message(rig.group, request_id).sent_at
    return max(0.0, waited - BUILDING) / SCALE


def edits_between(tg: FakeTelegram, rig: Rig, start: float, end: float) -> int:
    """Progress edits the bot made in the group between two moments (the fake's clock)."""
    return sum(
        1
        for message in tg.chat_log(rig.group)
        for edit in message.edits
        if start < edit.at < end and edit.method == "editMessageText"
    )


async def test_five_songs_in_flight_and_every_command_is_answered_at_once_with_fresh_state(
    tmp_path: Path, busy_tg: FakeTelegram, busy_ws: FakeWaveSpeed
) -> None:
    tg = busy_tg
    settings = bot_settings(tmp_path, tg, busy_ws, poll_time_scale=SCALE)
    async with telegram_bot(settings, tg, busy_ws) as rig:
        tg.set_admins(rig.group, [rig.alice.id])
        people = [
            rig.alice,
            rig.bob,
            tg.user(44, "Carol", "carol"),
            tg.user(45, "Dan", "dan"),
            tg.user(46, "Erin", "erin"),
        ]
        answered: list[tuple[str, float]] = []

        async def ask(text: str, who: FakeUser) -> RecordedMessage:
            request_id = await rig.say(text, who)
            answer = await rig.reply_to(request_id)
            answered.append((text, latency(tg, rig, request_id, answer)))
            # Progress never goes ahead of an answer (one edit may have been on its way).
            asked_at = tg.message(rig.group, request_id).sent_at
            assert edits_between(tg, rig, asked_at, answer.sent_at) <= 1, text
            return answer

        # Five songs within a second.
        requests = []
        for n, who in enumerate(people):
            duration = 29 if who is people[4] else 20 + n
            requests.append(await rig.say(f"/song take {n} | {duration}", who))
            await asyncio.sleep(0.2 * SCALE)
        cards = [await rig.reply_to(request_id) for request_id in requests]
        for request_id, card in zip(requests, cards, strict=True):
            answered.append(("/song", latency(tg, rig, request_id, card)))
        erins = job_id_of(cards[4])  # Erin's song, last in line: she will cancel it

        # People keep asking while the songs are made, when the group's minute is fullest:
        # three tracks have come, and two songs are still in the works.
        await tg.wait_until(
            lambda: len([m for m in tg.chat_log(rig.group) if m.audio]) >= 3,
            what="three tracks",
            timeout=WAIT,
        )
        first = next(m for m in tg.chat_log(rig.group) if m.audio)
        await wait_for_job(rig.core, job_id_of(first), {JobState.DELIVERED}, timeout=WAIT)
        lucky = people[requests.index(first.reply_to_message_id or 0)]
        quota = await ask("/quota", lucky)
        queue = await ask("/queue", people[4])
        cancel = await ask("/cancel", people[4])
        panel = await ask("/admin", rig.alice)
        changed = await ask("/admin quota 5m", rig.alice)
        panel_after = await ask("/admin", rig.alice)

        slow = [(text, round(seconds, 2)) for text, seconds in answered if seconds > ANSWER_WITHIN]
        assert slow == []
        # Each answer says how things stand when it is sent.
        assert "Songs queued or running: 0 of 2." in (quota.text or "")  # theirs is done
        assert f"#{erins} take 4 — 29 s: running" in (queue.text or "")
        assert cancel.text == "✖ Cancelled. Your quota has been given back."
        assert "Daily music per person: 10 min a day (the default)" in (panel.text or "")
        assert changed.text == "✅ Everyone here now gets 5 min of music a day."
        assert "Daily music per person: 5 min a day" in (panel_after.text or "")
        # ... and answers come out in the order they were asked.
        order = [quota, queue, cancel, panel, changed, panel_after]
        assert [m.message_id for m in order] == sorted(m.message_id for m in order)

        # Every song but the cancelled one arrives, each card making way for its track.
        others = [job_id_of(card) for card in cards if job_id_of(card) != erins]
        for job_id in others:
            await wait_for_job(rig.core, job_id, {JobState.DELIVERED}, timeout=WAIT)
        tracks = [m for m in tg.chat_log(rig.group) if m.audio is not None]
        assert sorted(job_id_of(track) for track in tracks) == sorted(others)
        await tg.wait_until(
            lambda: all(card.deleted for card in cards if job_id_of(card) != erins),
            what="the cards gone",
            timeout=WAIT,
        )

        assert tg.flood_errors == []  # and the chat's limits were never exceeded
        # Nothing the bot said in the group was edited less than a moment after it appeared.
        for message in tg.chat_log(rig.group):
            shown = [message.sent_at, *(edit.at for edit in message.edits)]
            assert all(b - a >= 1.0 * SCALE for a, b in itertools.pairwise(shown)), message
