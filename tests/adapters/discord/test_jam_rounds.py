"""A jam's round on Discord (#16), after the words are in: the takes arrive in the thread,
each with 🗳; the jam clock opens the voting; the bot restarts, and its buttons still count:
members vote (one presses twice, one changes their mind); the host closes the round and the
winner is announced crediting every contributor; /jam next opens round two. The real
discord.py client against the fake Discord, the real core with its jam clock, FakeWaveSpeed
making the takes."""

from __future__ import annotations

from bot.jams import texts
from bot.jams.model import JamState
from tests.adapters.discord.conftest import GUILD, World, bot_on, wait_for
from tests.adapters.discord.test_jams import (
    ALICE,
    BOB,
    CAROL,
    jam_cmd,
    private_answer,
    start_jam,
    wait_until_shown,
    world,
)
from tests.fakes.discord import FakeDiscord, RecordedMessage
from tests.harness import running_core

__all__ = ["world"]  # the fixture, shared with test_jams


async def test_takes_arrive_with_vote_buttons_and_the_winner_is_announced(world: World) -> None:
    dc = world.dc
    async with running_core(world.settings) as core:
        jams = core.service.jams
        # The Jam Club's songs are 5 s unless asked otherwise: the takes come quickly.
        await core.service.admin.update_chat_rules("discord", str(GUILD), default_duration=5)
        async with bot_on(core, world) as run:
            thread_id, started = await start_jam(run, takes=3, minutes=60, vote_minutes=60)
            for user, sub, options in (
                (BOB, "tag", {"tags": "dreamy synths"}),
                (CAROL, "line", {"text": "Stay up with me"}),
                (ALICE, "line", {"text": "Neon in the puddles"}),
            ):
                await private_answer(await jam_cmd(dc, thread_id, user, sub, options))

            render = await jam_cmd(dc, thread_id, ALICE, "render")
            rendering = await dc.wait_for_message(thread_id, lambda m: m.content.startswith("🎛"))
            assert "making 3 take(s)" in rendering.content
            await wait_for(lambda: render.original is not None and render.original.deleted)

            # Three takes, each its own message in the thread with its own 🗳.
            tracks = await wait_for(lambda: takes_in(dc, thread_id, 3), timeout=20)
            buttons = sorted(t.buttons[0].custom_id or "" for t in tracks)
            assert buttons == [f"jam:vote:{started.id}:1:{n}" for n in (1, 2, 3)]
            assert all(not t.pings.anyone for t in tracks)  # a jam's take pings nobody
            labels = sorted(t.buttons[0].label or "" for t in tracks)
            assert labels == [f"Vote for take {n}" for n in (1, 2, 3)]

            # The jam clock opens the voting once every take is in; the thread is told.
            opened = await dc.wait_for_message(thread_id, lambda m: m.content.startswith("🗳 Jam #"))
            assert "Voting is open" in opened.content and not opened.pings.anyone
            await wait_until_shown(dc, thread_id, "voting until", "Take 1 ✅", "Take 3 ✅")
            found = await jams.get(started.id)
            assert found is not None and found.state == JamState.VOTING

        # The bot restarts while voting is open: the buttons are its registered dynamic
        # items, and the jam message it edits is the one whose id the jam keeps.
        async with bot_on(core, world):
            by_take = {int((t.buttons[0].custom_id or "")[-1]): t for t in tracks}

            async def vote(user: int, take: int) -> str:
                message = by_take[take]
                custom_id = message.buttons[0].custom_id or ""
                return await private_answer(await dc.click_button(message.id, custom_id, user))

            assert await vote(BOB, 2) == f"🗳 {texts.voted(2, True)}"
            assert await vote(BOB, 2) == f"🗳 {texts.voted(2, False)}"  # counted once
            assert await vote(CAROL, 1) == f"🗳 {texts.voted(1, True)}"
            assert await vote(CAROL, 2) == f"🗳 {texts.voted(2, True)}"  # changed her mind
            assert await vote(ALICE, 3) == f"🗳 {texts.voted(3, True)}"
            await wait_until_shown(dc, thread_id, "3 voted so far")

            close = await jam_cmd(dc, thread_id, ALICE, "close")
            won = await dc.wait_for_message(thread_id, lambda m: m.content.startswith("🏆"))
            assert "take 2 wins (take 1: 0, take 2: 2, take 3: 1)" in won.content
            assert all(name in won.content for name in ("Alice", "Bob", "Carol"))
            assert not won.pings.anyone
            await wait_for(lambda: close.original is not None and close.original.deleted)
            await wait_until_shown(dc, thread_id, "Take 2: 2 votes 🏆", "take 2 won")

            await jam_cmd(dc, thread_id, ALICE, "next")
            await dc.wait_for_message(thread_id, lambda m: "round 2" in m.content)
            await wait_until_shown(dc, thread_id, "Round 2", "Round 1: take 2 won")
            found = await jams.get(started.id)
            assert found is not None and found.round == 2
            assert found.state == JamState.COLLECTING


def takes_in(dc: FakeDiscord, thread_id: int, count: int) -> list[RecordedMessage] | None:
    found = [
        m
        for m in dc.channel_messages(thread_id)
        if any(a.filename.endswith(".mp3") for a in m.attachments)
    ]
    return found if len(found) >= count else None


async def test_a_take_that_fails_is_told_in_the_thread_and_voting_opens_on_the_rest(
    world: World,
) -> None:
    dc = world.dc
    world.ws.faults.add_job(fail="the model crashed", times=1)  # the first take queued
    async with running_core(world.settings) as core, bot_on(core, world) as run:
        await core.service.admin.update_chat_rules("discord", str(GUILD), default_duration=5)
        thread_id, started = await start_jam(run, takes=2, minutes=60, vote_minutes=60)
        await private_answer(await jam_cmd(dc, thread_id, BOB, "tag", {"tags": "dreamy"}))
        await jam_cmd(dc, thread_id, ALICE, "render")
        failed = await dc.wait_for_message(thread_id, lambda m: "could not be made" in m.content)
        assert failed.content.startswith("⚠️ Take ") and not failed.pings.anyone
        assert failed.buttons == []  # no 🔁: it would make a song of Alice's own
        found = await wait_for(lambda: takes_in(dc, thread_id, 1), timeout=20)
        (track,) = found
        opened = await dc.wait_for_message(thread_id, lambda m: m.content.startswith("🗳 Jam #"))
        assert "Voting is open" in opened.content
        custom_id = track.buttons[0].custom_id or ""
        assert custom_id.startswith(f"jam:vote:{started.id}:1:")
        voted = await private_answer(await dc.click_button(track.id, custom_id, CAROL))
        assert voted.startswith("🗳 Your vote is for take")
        await wait_until_shown(dc, thread_id, "✖", "✅")
