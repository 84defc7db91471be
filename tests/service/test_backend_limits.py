"""A request is checked against the active backend's own limits before it is queued: what
the engine would refuse at submit is answered with a sentence naming the limit instead."""

from __future__ import annotations

from pathlib import Path

from bot.domain import Destination, Invalid, JobState
from bot.service import Accepted, Requester
from tests.fakes.acestep import FakeAceStep
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import (
    WAVESPEED_KEY,
    RecordingDelivery,
    acestep_settings,
    wait_for_job,
    wavespeed_settings,
)
from tests.kit.memory_core import Running

ALICE = Requester("telegram", "111", "alice")
CHAT = Destination("telegram", "chat-1", "111")


async def test_acestep_refuses_512_character_tags_and_4096_of_lyrics_before_queueing(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeAceStep(time_scale=0.04) as fake:
        async with running(acestep_settings(tmp_path, fake.base_url), [chat]) as core:
            tags = core.service.validate(tags="x" * 512, duration=10)
            lyrics = core.service.validate(tags="rock", lyrics="a" * 4096, duration=10)
            at_the_limits = core.service.validate(tags="x" * 511, lyrics="a" * 4095, duration=10)
            outcome = await core.service.submit(ALICE, CHAT, at_the_limits)
            assert isinstance(outcome, Accepted)
            job = await wait_for_job(core, outcome.job.id, {JobState.DELIVERED, JobState.FAILED})
            listed = await core.store.list_jobs(limit=10)
    assert isinstance(tags, Invalid) and isinstance(lyrics, Invalid)
    assert tags.message == "The style tags are 512 characters long; please keep them to 511."
    assert lyrics.message == ("The lyrics are 4096 characters long; the model takes at most 4095.")
    assert job.state == JobState.DELIVERED  # the longest accepted request is made
    assert [j.id for j in listed] == [job.id]  # nothing else was ever queued
    assert [(len(s["prompt"]), len(s["lyrics"])) for s in fake.submits] == [(511, 4095)]


async def test_wavespeed_durations_stop_at_its_240_seconds_whatever_max_duration_says(
    tmp_path: Path, running: Running
) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url, max_duration=300)
        async with running(settings) as core:
            too_long = core.service.validate(tags="rock", duration=241)
            longest = core.service.validate(tags="x" * 512, lyrics="a" * 4096, duration=240)
    assert isinstance(too_long, Invalid)
    assert too_long.message == "241 s is too long: songs here are 5 to 240 s long. Try `240`."
    assert not isinstance(longest, Invalid)
    assert fake.submits == []
