"""#14 through the core on both backends: musical controls reach each engine its own way, a
song from one sentence is written by ACE-Step's language model and recorded on the job, and
where there is no language model the user gets a sentence, with no job and no quota used."""

from __future__ import annotations

from pathlib import Path

from bot import messages
from bot.domain import Controls, Destination, GenerationRequest, Invalid, JobState
from bot.service import Accepted, Refused, Requester
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
SENTENCE = "a sad song about rain in Lisbon"
FINAL = {JobState.DELIVERED, JobState.FAILED}


async def test_a_sentence_on_acestep_becomes_the_song_its_language_model_wrote(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeAceStep(time_scale=0.04) as fake:
        async with running(acestep_settings(tmp_path, fake.base_url), [chat]) as core:
            assert (await core.backend.refresh_capabilities()).describes  # as `acejam run` does
            assert core.service.capabilities.describes
            request = core.service.validate(describe=SENTENCE, language="pt")
            outcome = await core.service.submit(ALICE, CHAT, request)
            assert isinstance(outcome, Accepted)
            job = await wait_for_job(core, outcome.job.id, FINAL)
    sent = fake.submits[0]
    assert sent["sample_mode"] is True and sent["sample_query"] == SENTENCE
    assert sent["vocal_language"] == "pt"
    wrote = fake.lm_writes
    assert job.state == JobState.DELIVERED
    assert (job.request.tags, job.request.lyrics) == (wrote.caption, wrote.lyrics)
    assert job.request.controls == Controls(
        bpm=72, key_scale="D minor", time_signature=3, vocal_language="pt"
    )
    assert job.request.duration == 10 and job.request.describe == SENTENCE
    succeeded = [e.job for e in chat.events if e.job.id == job.id and e.kind.value == "succeeded"]
    assert succeeded and succeeded[0].request.tags == wrote.caption  # what the card shows


async def test_controls_reach_acestep_as_parameters_and_wavespeed_as_tags(
    tmp_path: Path, running: Running
) -> None:
    fields = {"tags": "lo-fi, chill", "duration": "12", "bpm": "120", "key": "C major"}
    async with FakeAceStep(time_scale=0.04) as ace:
        async with running(acestep_settings(tmp_path / "a", ace.base_url)) as core:
            outcome = await core.service.submit(ALICE, CHAT, core.service.validate(**fields))
            assert isinstance(outcome, Accepted)
            await wait_for_job(core, outcome.job.id, {JobState.SUCCEEDED, *FINAL})
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as ws:
        async with running(wavespeed_settings(tmp_path / "w", ws.base_url)) as core:
            outcome = await core.service.submit(ALICE, CHAT, core.service.validate(**fields))
            assert isinstance(outcome, Accepted)
            await wait_for_job(core, outcome.job.id, {JobState.SUCCEEDED, *FINAL})
    assert (ace.submits[0]["prompt"], ace.submits[0]["bpm"]) == ("lo-fi, chill", 120)
    assert ace.submits[0]["key_scale"] == "C major"
    assert ws.submits[0]["tags"] == "lo-fi, chill, 120 bpm, C major"
    assert "bpm" not in ws.submits[0]


async def test_wavespeed_counts_the_control_words_against_its_tag_limit(
    tmp_path: Path, running: Running
) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as ws:
        async with running(wavespeed_settings(tmp_path, ws.base_url)) as core:
            refused = core.service.validate(tags="x" * 500, bpm="120", key="C major")
    assert isinstance(refused, Invalid)
    assert "120 bpm, C major" in refused.message and "Shorten the tags to" in refused.message


async def test_without_a_language_model_a_sentence_is_refused_and_nothing_is_used(
    tmp_path: Path, running: Running
) -> None:
    sentence_only = GenerationRequest(tags="", describe=SENTENCE)
    async with (
        FakeAceStep(time_scale=0.04, lm_model=None) as ace,
        FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as ws,
    ):
        for settings in (
            acestep_settings(tmp_path / "a", ace.base_url),
            wavespeed_settings(tmp_path / "w", ws.base_url),
        ):
            async with running(settings) as core:
                await core.backend.refresh_capabilities()
                assert not core.service.capabilities.describes
                before = await core.service.quota(ALICE, CHAT.scope)
                validated = core.service.validate(describe=SENTENCE)
                outcome = await core.service.submit(ALICE, CHAT, sentence_only)
                after = await core.service.quota(ALICE, CHAT.scope)
                jobs = await core.store.list_jobs(limit=10)
                assert isinstance(validated, Invalid)
                assert validated.message == messages.NO_LANGUAGE_MODEL
                assert isinstance(outcome, Refused) and outcome.code == "no_language_model"
                assert outcome.message == messages.NO_LANGUAGE_MODEL and "/song" in outcome.message
                assert jobs == [] and after.used_seconds == before.used_seconds == 0
    assert ace.submits == [] and ws.submits == []


async def test_a_sentence_the_engine_can_no_longer_write_fails_saying_so_with_quota_back(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeAceStep(time_scale=0.04) as fake:
        async with running(acestep_settings(tmp_path, fake.base_url), [chat]) as core:
            await core.backend.refresh_capabilities()
            outcome = await core.service.submit(
                ALICE, CHAT, core.service.validate(describe=SENTENCE)
            )
            assert isinstance(outcome, Accepted)
            fake.lm_model = None  # the server restarted without it after the probe
            job = await wait_for_job(core, outcome.job.id, FINAL)
            quota = await core.service.quota(ALICE, CHAT.scope)
            offered = core.service.capabilities.describes
    assert job.state == JobState.FAILED and job.error_code == "no_language_model"
    failed = [e for e in chat.events if e.job.id == job.id and e.kind.value == "failed"]
    assert failed and failed[0].message == messages.failure_message("no_language_model")
    assert "no language model" in failed[0].message and "given back" in failed[0].message
    assert quota.used_seconds == 0 and not offered


async def test_several_takes_of_a_sentence_are_one_batch_and_the_job_keeps_what_was_written(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeAceStep(time_scale=0.04) as fake:
        async with running(acestep_settings(tmp_path, fake.base_url), [chat]) as core:
            await core.backend.refresh_capabilities()
            request = core.service.validate(describe=SENTENCE, takes="2")
            outcome = await core.service.submit(ALICE, CHAT, request)
            assert isinstance(outcome, Accepted)
            job = await wait_for_job(core, outcome.job.id, FINAL)
    sent = fake.submits[0]
    assert len(fake.submits) == 1 and sent["batch_size"] == 2 and sent["sample_mode"] is True
    assert job.state == JobState.DELIVERED and job.request.tags == fake.lm_writes.caption
    seeds = fake.tasks[job.remote_id or ""].seeds
    assert [track.seed for track in chat.tracks[job.id]] == seeds  # the server's, one each


async def test_a_blocked_word_in_the_sentence_is_refused_like_one_in_the_tags(
    tmp_path: Path, running: Running
) -> None:
    async with FakeAceStep(time_scale=0.04) as fake:
        settings = acestep_settings(tmp_path, fake.base_url, blocked_words=["grim"])
        async with running(settings) as core:
            await core.backend.refresh_capabilities()
            request = core.service.validate(describe="a grim song about rain")
            outcome = await core.service.submit(ALICE, CHAT, request)
    assert isinstance(outcome, Refused) and outcome.code == "blocked_word"
    assert fake.submits == []
