"""/song's options on ACE-Step, end to end: the controls and takes arrive as its parameters,
and a description is written into a song by its language model, the card showing what it
wrote (#14)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.domain import Controls, JobState
from tests.adapters.discord.conftest import (
    ALICE,
    APP_ID,
    CHANNEL,
    GUILD,
    LOOSE_LIMITS,
    TOKEN,
    World,
    bot_on,
    field_value,
    populate,
    track_messages,
)
from tests.fakes.acestep import FakeAceStep
from tests.fakes.discord import FakeDiscord
from tests.harness import acestep_settings, running_core, wait_for_job

SENTENCE = "a sad song about rain in Lisbon"


@pytest.fixture
async def ace_world(tmp_path: Path) -> AsyncIterator[tuple[World, FakeAceStep]]:
    async with (
        FakeAceStep(time_scale=0.04) as ace,
        FakeDiscord(application_id=APP_ID, token=TOKEN, rate_limits=LOOSE_LIMITS) as dc,
    ):
        populate(dc)
        settings = acestep_settings(
            tmp_path,
            ace.base_url,
            discord_token=TOKEN,
            discord_api_base_url=dc.api_base,
            discord_guild_ids=str(GUILD),
        )
        yield World(dc, None, settings, tmp_path), ace  # type: ignore[arg-type]


async def test_a_sentence_becomes_a_song_and_the_card_shows_what_was_written(
    ace_world: tuple[World, FakeAceStep],
) -> None:
    world, ace = ace_world
    dc = world.dc
    ace.lm_writes = replace(ace.lm_writes, duration=10.0)  # short: the fake encodes it
    async with running_core(world.settings) as core:
        await core.backend.refresh_capabilities()  # as `acejam run` does before the adapters
        async with bot_on(core, world):
            helped = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "help")
            help_text = (await helped.wait_for_original()).content
            await dc.invoke_slash(
                GUILD,
                CHANNEL,
                ALICE,
                "song",
                {"describe": SENTENCE, "language": "pt", "duration": 10},
            )
            await dc.wait_for_message(CHANNEL, lambda m: track_messages(dc), timeout=20)
            job = await wait_for_job(core, 1, {JobState.DELIVERED})
    (track,) = track_messages(dc)
    sent = ace.submits[0]
    assert sent["sample_mode"] is True and sent["sample_query"] == SENTENCE
    assert sent["vocal_language"] == "pt"
    wrote = ace.lm_writes
    description = track.embeds[0]["description"]
    assert f"✍️ “{SENTENCE}”" in description and wrote.caption in description
    assert "Chuva na janela" in field_value(track, "Lyrics")
    assert field_value(track, "Controls") == "72 bpm, D minor, 3/4 time, sung in pt"
    assert job.request.describe == SENTENCE
    assert "its language model writes the tags, lyrics and the rest" in help_text


async def test_controls_and_takes_arrive_as_parameters(
    ace_world: tuple[World, FakeAceStep],
) -> None:
    world, ace = ace_world
    dc = world.dc
    async with running_core(world.settings) as core, bot_on(core, world):
        await dc.invoke_slash(
            GUILD,
            CHANNEL,
            ALICE,
            "song",
            {
                "tags": "cool jazz",
                "duration": 10,  # ACE-Step's shortest
                "takes": 2,
                "bpm": 120,
                "key": "Bb major",
                "time_signature": 3,
            },
        )
        await dc.wait_for_message(CHANNEL, lambda m: track_messages(dc), timeout=20)
        job = await wait_for_job(core, 1, {JobState.DELIVERED})
    sent = ace.submits[0]
    assert sent["batch_size"] == 2
    assert (sent["bpm"], sent["key_scale"], str(sent["time_signature"])) == (120, "Bb major", "3")
    assert sent["prompt"] == "cool jazz"  # the controls are parameters, not words in the tags
    assert job.request.takes == 2 and job.request.controls == Controls(120, "Bb major", 3, None)
