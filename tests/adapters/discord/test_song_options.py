"""/song's musical options, a song from one sentence, and ✏️ Edit under a track (#14)."""

from __future__ import annotations

from typing import Any

from bot.domain import Controls, JobState
from bot.service import Requester
from tests.adapters.discord.conftest import (
    ALICE,
    BOB,
    CHANNEL,
    GUILD,
    World,
    field_value,
    jam,
    track_messages,
)
from tests.fakes.discord import FakeDiscord, RecordedMessage
from tests.harness import wait_for_job


def _inputs(modal: dict[str, Any]) -> dict[str, str]:
    """A form's prefilled values by input."""
    return {
        c["custom_id"]: c.get("value", "")
        for row in modal["components"]
        for c in row.get("components") or [row.get("component") or {}]
    }


async def _track(dc: FakeDiscord, number: int) -> RecordedMessage:
    """The ``number``-th track message (1-based), once it is there."""
    await dc.wait_for_message(CHANNEL, lambda m: len(track_messages(dc)) >= number, timeout=20)
    return track_messages(dc)[number - 1]


async def test_the_options_reach_the_job_and_its_card(world: World) -> None:
    dc = world.dc
    world.ws.faults.add_job(hang=True)  # the card stays: what it says is the point
    async with jam(world) as run:
        inter = await dc.invoke_slash(
            GUILD,
            CHANNEL,
            ALICE,
            "song",
            {
                "tags": "fado",
                "duration": 5,
                "bpm": 96,
                "key": "f#m",  # typed, not picked: the core reads it
                "time_signature": 3,
                "language": "Portuguese",  # typed by name, not picked: sent as its code
            },
        )
        card = await inter.wait_for_original(lambda m: m.embeds)
        job = await wait_for_job(run.core, 1, {JobState.SUBMITTED, JobState.RUNNING})
        await run.core.service.cancel(1, Requester("discord", str(ALICE)))
    assert job.request.controls == Controls(96, "F# minor", 3, "pt")
    assert job.request.tags == "fado" and job.request.takes == 1
    assert field_value(card, "Controls") == "96 bpm, F# minor, 3/4 time, sung in pt"
    # WaveSpeed's model has no such parameters: they reach it as words in its tags.
    sent = world.ws.submits[0]["tags"]
    assert sent.startswith("fado") and "96 bpm" in sent and "F# minor" in sent


async def test_takes_reach_the_job(world: World) -> None:
    dc = world.dc
    world.ws.faults.add_job(hang=True, times=4)
    async with jam(world) as run:
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "surf rock", "duration": 5, "takes": 2}
        )
        await inter.wait_for_original(lambda m: m.embeds)
        job = await run.core.service.get_job(1)
        await run.core.service.cancel(1, Requester("discord", str(ALICE)))
    assert job is not None and job.request.takes == 2


async def test_a_tempo_out_of_range_gets_the_sentence_naming_the_range(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "drum and bass", "bpm": 400}
        )
        refusal = await inter.wait_for_original()
        assert await run.core.service.get_job(1) is None
    assert inter.response_type == 4  # no I/O needed to say so: answered at once
    assert refusal.ephemeral
    assert "“400” isn't a tempo I can use: BPM is a whole number from 30 to 300" in (
        refusal.content
    )
    assert world.ws.submits == []


async def test_keys_and_languages_are_suggested_while_typing(world: World) -> None:
    dc = world.dc
    async with jam(world):
        keys = await dc.autocomplete(GUILD, CHANNEL, ALICE, "song", "key", "f#")
        await keys.wait_for_response()
        languages = await dc.autocomplete(GUILD, CHANNEL, ALICE, "song", "language", "portu")
        await languages.wait_for_response()
    assert [c["value"] for c in keys.autocomplete_choices or []] == ["F# major", "F# minor"]
    assert languages.autocomplete_choices == [{"name": "Portuguese (pt)", "value": "pt"}]


async def test_a_description_without_a_language_model_gets_a_sentence(world: World) -> None:
    # WaveSpeed's model has no language model to write a song from one sentence.
    dc = world.dc
    async with jam(world) as run:
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"describe": "a sad song about rain in Lisbon"}
        )
        refusal = await inter.wait_for_original()
        assert await run.core.service.get_job(1) is None
    assert refusal.ephemeral and refusal.content == (
        "⚠️ This bot's music engine has no language model, so it can't write a song from a "
        "description; give /song style tags instead, e.g. `sad piano ballad, rain, slow`."
    )
    assert refusal.buttons == []  # the form has no room for a description: nothing to fix there
    assert world.ws.submits == []


async def test_edit_opens_the_song_filled_in_and_its_child_records_its_parent(
    world: World,
) -> None:
    dc = world.dc
    async with jam(world):
        await dc.invoke_slash(
            GUILD,
            CHANNEL,
            ALICE,
            "song",
            {
                "tags": "bossa",
                "duration": 5,
                "seed": 42,
                "lyrics": "sun on the sand",
                "bpm": 120,
                "key": "C major",
            },
        )
        first = await _track(dc, 1)
    # A new process: ✏️ is known only through the registered dynamic items.
    async with jam(world) as run:
        press = await dc.click_button(first.id, "acejam:edit:1", ALICE)
        form = await press.wait_for_modal()
        assert form["title"] == "Edit and make again"
        assert _inputs(form) == {
            "tags": "bossa",
            "lyrics": "sun on the sand",
            "duration": "5",
            "seed": "42",
            "controls": "bpm=120 key=C major",
        }
        sent = await dc.submit_modal(press, None, {"controls": "bpm=90 key=C major time=3"})
        second = await _track(dc, 2)
        child = await wait_for_job(run.core, 2, {JobState.DELIVERED})
        # Pressing ✏️ again only opens the form again: nothing is made until it is sent.
        again = await dc.click_button(first.id, "acejam:edit:1", ALICE)
        await again.wait_for_modal()
    assert press.response_type == 9 and sent.response_type == 5
    assert child.parent_id == 1
    assert child.request.controls == Controls(90, "C major", 3, None)
    assert (child.request.tags, child.request.lyrics, child.request.seed) == (
        "bossa",
        "sun on the sand",
        42,
    )
    assert field_value(second, "Controls") == "90 bpm, C major, 3/4 time"
    assert [s["seed"] for s in world.ws.submits] == [42, 42]
    assert len(track_messages(dc)) == 2


async def test_edit_of_someone_elses_song_is_refused_privately(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "waltz", "duration": 5})
        track = await _track(dc, 1)
        press = await dc.click_button(track.id, "acejam:edit:1", BOB)
        refusal = await press.wait_for_original()
        # Where the server lets members press each other's buttons, the form opens for Bob.
        await run.core.service.admin.update_chat_rules("discord", str(GUILD), others_may_press=True)
        allowed = await dc.click_button(track.id, "acejam:edit:1", BOB)
        form = await allowed.wait_for_modal()
    assert refusal.ephemeral and "That's someone else's song" in refusal.content
    assert _inputs(form)["tags"] == "waltz"


async def test_a_bad_controls_line_in_the_form_is_refused_and_comes_back(world: World) -> None:
    dc = world.dc
    async with jam(world):
        opener = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "compose")
        await opener.wait_for_modal()
        bad = await dc.submit_modal(opener, None, {"tags": "polka", "controls": "bpm=20"})
        refusal = await bad.wait_for_original()
        fix = refusal.button("Fix and resubmit").custom_id or ""
        reopened = await dc.click_button(refusal.id, fix, ALICE)
        form = await reopened.wait_for_modal()
    assert refusal.ephemeral and "BPM is a whole number from 30 to 300" in refusal.content
    assert _inputs(form)["controls"] == "bpm=20"
    assert world.ws.submits == []


async def test_a_new_take_keeps_the_songs_controls(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "samba", "duration": 5, "bpm": 140}
        )
        first = await _track(dc, 1)
        await dc.click_button(first.id, "acejam:same:1", ALICE)
        second = await _track(dc, 2)
        take = await wait_for_job(run.core, 2, {JobState.DELIVERED})
    assert take.request.controls == Controls(bpm=140) and take.parent_id == 1
    assert field_value(second, "Controls") == "140 bpm"
    assert world.ws.submits[1]["seed"] == world.ws.submits[0]["seed"]
