"""🎲 Re-roll, 🔁 Same seed and ✖ Cancel: persistent buttons keyed by job id."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import discord

from bot.domain import JobState
from tests.adapters.discord.conftest import (
    ALICE,
    BOB,
    CHANNEL,
    GUILD,
    World,
    field_value,
    jam,
    status_text,
    track_messages,
)
from tests.fakes.discord import FakeDiscord, FakeInteraction, RecordedMessage
from tests.harness import wait_for_job


async def _new_track(dc: FakeDiscord, seen: int) -> RecordedMessage:
    """The track message after the first ``seen`` ones."""
    messages = await dc.wait_for_message(
        CHANNEL, lambda m: len(track_messages(dc)) > seen, timeout=20
    )
    assert messages
    return track_messages(dc)[seen]


async def test_reroll_and_same_seed_make_new_takes(world: World) -> None:
    dc, ws = world.dc, world.ws
    async with jam(world) as run:
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "synthwave", "duration": 5})
        first = await _new_track(dc, 0)

        same = await dc.click_button(first.id, "acejam:same:1", ALICE)
        second = await _new_track(dc, 1)
        again = await dc.click_button(first.id, "acejam:reroll:1", ALICE)
        third = await _new_track(dc, 2)
        await wait_for_job(run.core, 3, {JobState.DELIVERED})
    seeds = [s["seed"] for s in ws.submits]
    assert seeds[1] == seeds[0]  # 🔁: the seed recorded upstream, exactly
    assert seeds[2] != seeds[0]  # 🎲: a new one
    assert [s["tags"] for s in ws.submits] == ["synthwave"] * 3
    assert field_value(second, "Seed") == str(seeds[0])
    assert field_value(third, "Seed") == str(seeds[2])
    for press, job_id in ((same, 2), (again, 3)):
        assert press.response_type == 6  # nothing shown until the press is accepted
        (status,) = press.followups[:1]
        assert not status.ephemeral and status.via == "followup"
        gone = await press.wait_for_followup(lambda m: m.deleted)  # the track took its place
        assert gone.embeds[0]["footer"]["text"] == f"Job #{job_id}"
    assert [m.buttons[0].custom_id for m in (second, third)] == [
        "acejam:reroll:2",
        "acejam:reroll:3",
    ]


async def test_someone_elses_press_is_refused_privately(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "waltz", "duration": 5})
        track = await _new_track(dc, 0)
        world.ws.faults.add_job(hang=True, times=1)  # the next job runs "for ever"
        press = await dc.click_button(track.id, "acejam:reroll:1", BOB)
        refusal = await press.wait_for_followup()
        assert refusal.ephemeral and "someone else's song" in refusal.content
        # A refused press changed nothing: pressing again asks again (no "Already done").
        again = await dc.click_button(track.id, "acejam:reroll:1", BOB)
        assert "someone else's song" in (await again.wait_for_followup()).content
        assert track.button("acejam:reroll:1").style == 1  # not shown used

        running = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "jig", "duration": 5}
        )
        status = await running.wait_for_original(lambda m: m.buttons)
        stop = await dc.click_button(status.id, "acejam:cancel:2", BOB)
        no = await stop.wait_for_followup()
        assert no.ephemeral and "Only the person who asked" in no.content
        assert "Cancelled" not in status_text(dc.message(status.id))
        await wait_for_job(run.core, 2, {JobState.SUBMITTED, JobState.RUNNING})
    assert len(world.ws.submits) == 2  # Bob's presses made nothing


async def test_buttons_work_after_a_restart(world: World) -> None:
    dc = world.dc
    async with jam(world):
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "bossa", "duration": 5})
        first = await _new_track(dc, 0)
    # A new process: the buttons are only known through the registered dynamic items.
    async with jam(world) as run:
        press = await dc.click_button(first.id, "acejam:same:1", ALICE)
        second = await _new_track(dc, 1)
        job = await wait_for_job(run.core, 2, {JobState.DELIVERED})
    assert press.response_type == 6
    assert job.parent_id == 1 and world.ws.submits[1]["seed"] == world.ws.submits[0]["seed"]
    assert second.buttons[1].custom_id == "acejam:same:2"


async def test_cancel_button_and_command_give_the_quota_back(world: World) -> None:
    dc = world.dc
    world.ws.faults.add_job(hang=True, times=2)
    async with jam(world):
        first = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "drone", "duration": 30}
        )
        status = await first.wait_for_original(lambda m: m.buttons)
        second = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "hum", "duration": 20}
        )
        await second.wait_for_original(lambda m: m.buttons)

        quota = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "quota")
        before = await quota.wait_for_original(lambda m: not m.loading)
        assert before.ephemeral and "You have 9 min 10 s of 10 min left" in before.content

        typing = await dc.autocomplete(GUILD, CHANNEL, ALICE, "cancel", "job", "")
        await typing.wait_for_response()
        choices = typing.autocomplete_choices or []
        assert [c["value"] for c in choices] == [1, 2]
        assert choices[0]["name"].startswith("#1 drone — 30 s:")

        press = await dc.click_button(status.id, "acejam:cancel:1", ALICE)
        await press.wait_for_response()
        cancelled = await first.wait_for_original(lambda m: "Cancelled" in status_text(m))
        assert "Your quota has been given back" in status_text(cancelled)
        assert cancelled.buttons == []  # nothing left to press

        bare = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "cancel")  # the latest one: #2
        answer = await bare.wait_for_original(lambda m: not m.loading)
        assert (
            answer.ephemeral and answer.content == "#2: Cancelled. Your quota has been given back."
        )
        await second.wait_for_original(lambda m: "Cancelled" in status_text(m))

        nothing = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "cancel")
        assert (await nothing.wait_for_original(lambda m: not m.loading)).content == (
            "You have nothing queued or running to cancel."
        )
        quota = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "quota")
        after = await quota.wait_for_original(lambda m: not m.loading)
    assert "You have 10 min of 10 min left" in after.content
    assert track_messages(dc) == []


async def test_a_double_tap_makes_one_take_and_the_button_shows_it_was_used(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "polka", "duration": 5})
        first = await _new_track(dc, 0)
        # Two taps before the bot has answered either.
        taps = await asyncio.gather(
            dc.click_button(first.id, "acejam:reroll:1", ALICE),
            dc.click_button(first.id, "acejam:reroll:1", ALICE),
        )
        await _new_track(dc, 1)
        await wait_for_job(run.core, 2, {JobState.DELIVERED})
        repeat = await _answered_privately(taps)
        quota = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "quota")
        left = (await quota.wait_for_original(lambda m: not m.loading)).content
    assert repeat.content == "Already done — see above."
    assert len(world.ws.submits) == 2 and len(track_messages(dc)) == 2
    assert "You have 9 min 50 s of 10 min left" in left  # charged once for the take
    # The used button is highlighted (green), the other one is not; both still work.
    pressed = dc.message(first.id)
    assert pressed.button("acejam:reroll:1").style == discord.ButtonStyle.success.value
    assert pressed.button("acejam:same:1").style == discord.ButtonStyle.secondary.value
    assert pressed.embeds == first.embeds and pressed.attachments == first.attachments


async def _answered_privately(taps: Sequence[FakeInteraction]) -> RecordedMessage:
    """The one tap answered with a message of its own (the repeat), once all were answered."""
    for tap in taps:
        await tap.wait_for_response()
    (repeat,) = [tap for tap in taps if tap.response_type == 4]
    assert repeat.original is not None and repeat.original.ephemeral
    return repeat.original


async def test_a_take_of_someone_elses_song_says_whose_it_is(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        await run.core.service.admin.update_chat_rules("discord", str(GUILD), others_may_press=True)
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "tango", "duration": 5})
        first = await _new_track(dc, 0)
        press = await dc.click_button(first.id, "acejam:reroll:1", BOB)
        status = await press.wait_for_followup(lambda m: m.embeds)
        second = await _new_track(dc, 1)
        await wait_for_job(run.core, 2, {JobState.DELIVERED})
    whose = f"🎲 <@{BOB}>'s take of <@{ALICE}>'s song #1"
    assert whose in status.embeds[0]["description"]
    assert whose in second.embeds[0]["description"]
    assert field_value(second, "Requested by") == f"<@{BOB}>"
