"""A Telegram jam goes on after the votes (issue #16): voting opens once every take is in,
``/jam close`` announces the winner crediting everyone who wrote, ``/jam next`` starts a
second round on it, and that round's takes arrive with buttons of their own while the first
round's say voting is over; after a restart the buttons and the jam message still work. The same real clients and fakes as tests/adapters/telegram/
test_jams.py, whose first round this goes on from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jams import texts as jam_words
from tests.adapters.telegram.conftest import TOKEN, WAIT, Rig, telegram_bot
from tests.adapters.telegram.test_edits import ace_bot
from tests.adapters.telegram.test_jams import (
    FORUM_ID,
    GROUP_ID,
    answer,
    carol,
    shows,
    takes_of,
    vote,
    vote_button,
    write_render_and_vote,
)
from tests.fakes.acestep import FakeAceStep
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import acestep_settings


@pytest.fixture
async def ace(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> AsyncIterator[tuple[Rig, FakeAceStep]]:
    # An engine that makes new songs only: round 2 is a new song from both rounds' words
    # (an extend's first look at the engine waits for its estimate: slow for a test).
    async with ace_bot(
        tmp_path, tg, ws, task_types=("text2music",), acestep_max_concurrency=3
    ) as running:
        rig = running[0]
        for chat in (GROUP_ID, FORUM_ID):
            await rig.core.service.admin.update_chat_rules(
                "telegram", str(chat), default_duration=10
            )
        yield running


async def test_the_winner_is_announced_and_a_second_round_is_rendered(
    ace: tuple[Rig, FakeAceStep],
) -> None:
    rig, _ = ace
    alice, bob, cat = rig.alice, rig.bob, carol(rig)
    first = await write_render_and_vote(rig)
    jam, jam_id = first.jam, first.jam_id
    voting = await rig.tg.wait_for_message(rig.group, "every take is in", timeout=WAIT)
    assert voting.reply_to_message_id == jam.message_id  # the clock's news, under the jam
    assert jam_words.HOST_ONLY in await answer(rig, "/jam close", bob)

    won = await answer(rig, "/jam close", alice)
    assert "take 2 wins" in won and "take 2: 2" in won and "take 3: 1" in won
    assert "Written by Alice, Bob, Carol" in won  # every contributor credited
    await shows(rig, jam, "🏆 take 2 ✅ 2 votes", "take 3 ✅ 1 vote")
    late = await vote(rig, cat, first.takes[0])
    assert late == f"Voting for that round of jam #{jam_id} is over."

    assert "builds on round 1's winner" in await answer(rig, "/jam next", alice)
    await shows(rig, jam, "Round 2 · collecting words", gone=("shanty line",))
    assert "Tag #" in await answer(rig, "/jam tag sea spray", bob)
    assert "Line #" in await answer(rig, "/jam line [Chorus] home again, home again", cat)
    await shows(rig, jam, "sea spray — Bob", "[Chorus] home again, home again — Carol")
    assert "round 2" in await answer(rig, "/jam render", alice)

    both = await takes_of(rig, jam, 6)
    second = [t for t in both if vote_button(t).startswith(f"jv:{jam_id}:2:")]
    assert sorted(vote_button(t) for t in second) == [f"jv:{jam_id}:2:{n}" for n in (1, 2, 3)]
    assert await vote(rig, bob, second[0]) == jam_words.voted(1, True)


async def test_votes_and_the_jam_message_work_after_a_restart(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> None:
    async with FakeAceStep(time_scale=0.04, task_types=("text2music",)) as engine:
        settings = acestep_settings(
            tmp_path,
            engine.base_url,
            telegram_token=TOKEN,
            telegram_api_base_url=tg.base_url,
        )
        async with telegram_bot(settings, tg, ws) as rig:
            await rig.core.service.admin.update_chat_rules(
                "telegram", str(GROUP_ID), default_duration=10
            )
            jam = await rig.reply_to(await rig.say("/jam start night ferry 1"))
            assert "Line #1" in await answer(rig, "/jam line engines hum", rig.bob)
            await answer(rig, "/jam render", rig.alice)
            (take,) = await takes_of(rig, jam, 1)
            group, bob = rig.group, rig.bob

        # A bot that never saw this jam: the button and the jam message are all it has.
        async with telegram_bot(settings, tg, ws) as rig:
            query = await tg.press_button(group, bob, take, vote_button(take))
            voted = await tg.wait_for_callback_answer(query, timeout=WAIT)
            assert voted.text == jam_words.voted(1, True)
            await tg.wait_for_message(group, "every take is in", timeout=WAIT)
            assert "take 1 wins (take 1: 1)" in await answer(rig, "/jam close", rig.alice)
            await shows(rig, jam, "🏆 take 1 ✅ 1 vote")
