"""#15 on WaveSpeed through the core and its worker, on the SQLite store: an edit asked through
GenerationService.edit uploads its track's audio to WaveSpeed's media endpoint, runs on the edit
model for its task, and comes back to the chat as long as the edit makes it; an upload that
fails bills nothing and is simply tried again; only the edits whose model is on are offered."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from bot import messages
from bot.domain import Destination, GenerationRequest, Job, JobState, Task
from bot.edits import EditAsk
from bot.service import Accepted, Refused, Requester
from tests.fakes.audio import probe_audio
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.fakes.wavespeed_edits import AUDIO_TO_AUDIO, INPAINT, OUTPAINT
from tests.harness import (
    WAVESPEED_KEY,
    RecordingDelivery,
    running_core,
    wait_for_job,
    wavespeed_settings,
)

ALICE = Requester("telegram", "111", "alice")
CHAT = Destination("telegram", "chat-1", "111")
FINAL = {JobState.DELIVERED, JobState.FAILED}
# USD per second: the song model's, and each edit model's own (one setting each).
PRICES = {
    "wavespeed_price_per_second": 0.0003,
    "wavespeed_outpaint_price_per_second": 0.001,
    "wavespeed_audio_to_audio_price_per_second": 0.002,
    "wavespeed_inpaint_price_per_second": 0.003,
}
SCALE = 0.02  # the fake's time: a nominal 3 s job takes 60 ms


async def edits_of_a_song(
    tmp_path: Path, *asks: Callable[[int], EditAsk]
) -> tuple[FakeWaveSpeed, RecordingDelivery, Job, list[Job], int]:
    """A finished song, then each edit asked of it in turn, through the service and worker:
    (the fake, the chat, the song, the edit jobs, the quota seconds used)."""
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=SCALE, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url, **PRICES)
        async with running_core(settings, [chat]) as core:
            assert core.service.edits_offered == {Task.EXTEND, Task.REPAINT, Task.REMIX}
            song = await core.service.submit(
                ALICE, CHAT, GenerationRequest(tags="synthwave", lyrics="[Verse]\nneon", duration=6)
            )
            assert isinstance(song, Accepted)
            parent = await wait_for_job(core, song.job.id, FINAL)
            assert parent.audio_path and parent.audio_duration
            jobs = []
            for ask in asks:
                outcome = await core.service.edit(ALICE, CHAT, ask(parent.id))
                assert isinstance(outcome, Accepted), outcome
                jobs.append(await wait_for_job(core, outcome.job.id, FINAL))
            quota = await core.service.quota(ALICE, CHAT.scope)
    return fake, chat, parent, jobs, quota.used_seconds


def seconds_of(chat: RecordingDelivery, job: Job) -> float:
    return probe_audio(chat.tracks[job.id][0].path)[0]


async def test_an_extend_uploads_the_track_and_comes_back_longer(tmp_path: Path) -> None:
    fake, chat, parent, [job], used = await edits_of_a_song(
        tmp_path, lambda parent: EditAsk(Task.EXTEND, of_job=parent, seconds="5")
    )
    assert job.state == JobState.DELIVERED
    assert messages.lineage(job) == f"extended from #{parent.id}"
    # The parent's own audio went up first; the outpaint model got that file's URL.
    assert parent.audio_path and parent.audio_duration
    [upload] = fake.uploads.values()
    assert upload.content == Path(parent.audio_path).read_bytes()
    [(model, body)] = fake.edit_submits
    assert model == OUTPAINT
    assert body["audio"] == f"{fake.cdn_url}/media/{upload.id}/{upload.filename}"
    assert (body["extend_before_duration"], body["extend_after_duration"]) == (0.0, 5.0)
    assert (body["tags"], body["lyrics"]) == ("synthwave", "[Verse]\nneon")  # inherited
    assert seconds_of(chat, job) == pytest.approx(parent.audio_duration + 5, abs=0.25)
    assert used == 6 + 5  # the song, then the seconds the extend added
    # Each at its own model's price: the outpaint's for the seconds it added.
    assert (parent.cost_usd, job.cost_usd) == (pytest.approx(6 * 0.0003), pytest.approx(5 * 0.001))


async def test_a_remix_and_a_repaint_run_on_their_models_and_keep_the_length(
    tmp_path: Path,
) -> None:
    fake, chat, parent, jobs, used = await edits_of_a_song(
        tmp_path,
        lambda parent: EditAsk(Task.REMIX, of_job=parent, tags="bossa nova"),
        lambda parent: EditAsk(Task.REPAINT, of_job=parent, start="0:01", end="4"),
    )
    assert [job.state for job in jobs] == [JobState.DELIVERED] * 2
    assert [messages.lineage(job) for job in jobs] == [
        f"remix of #{parent.id}",
        f"repaint of #{parent.id}",
    ]
    assert [model for model, _ in fake.edit_submits] == [AUDIO_TO_AUDIO, INPAINT]
    (_, remix), (_, repaint) = fake.edit_submits
    assert (remix["tags"], remix["edit_mode"]) == ("bossa nova", "remix")
    assert (repaint["start_time"], repaint["end_time"]) == (1.0, 4.0)
    assert repaint["lyrics"] == "[Verse]\nneon"  # a repaint keeps the words
    assert parent.audio_duration
    for job in jobs:
        assert seconds_of(chat, job) == pytest.approx(parent.audio_duration, abs=0.25)
    # Each counts the whole track it makes (its length rounded up), at its model's price.
    whole = math.ceil(parent.audio_duration)
    assert used == 6 + 2 * whole
    remix, repaint = jobs
    assert (remix.cost_usd, repaint.cost_usd) == (
        pytest.approx(whole * 0.002),
        pytest.approx(whole * 0.003),
    )


async def test_an_upload_that_fails_is_tried_again_and_submitted_once(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=SCALE, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url)
        async with running_core(settings, [chat]) as core:
            song = await core.service.submit(
                ALICE, CHAT, GenerationRequest(tags="synthwave", duration=6)
            )
            assert isinstance(song, Accepted)
            parent = await wait_for_job(core, song.job.id, FINAL)
            fake.faults.add("upload", status=503)  # WaveSpeed's storage has a bad moment
            outcome = await core.service.edit(
                ALICE, CHAT, EditAsk(Task.REMIX, of_job=parent.id, tags="bossa nova")
            )
            assert isinstance(outcome, Accepted)
            job = await wait_for_job(core, outcome.job.id, FINAL)

    assert job.state == JobState.DELIVERED and chat.tracks[job.id]
    assert fake.upload_requests == 2 and len(fake.uploads) == 1  # refused, then taken
    assert len(fake.edit_submits) == 1  # nothing billed was ever in doubt


async def test_only_the_edits_whose_model_is_on_are_offered(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=SCALE, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url, wavespeed_edit_models=OUTPAINT)
        async with running_core(settings, [chat]) as core:
            assert core.service.edits_offered == {Task.EXTEND}
            song = await core.service.submit(
                ALICE, CHAT, GenerationRequest(tags="synthwave", duration=6)
            )
            assert isinstance(song, Accepted)
            parent = await wait_for_job(core, song.job.id, FINAL)
            refused = await core.service.edit(
                ALICE, CHAT, EditAsk(Task.REMIX, of_job=parent.id, tags="bossa nova")
            )

    assert isinstance(refused, Refused) and refused.code == "not_offered"
    assert "remix" in refused.message.lower()
    assert fake.upload_requests == 0 and fake.edit_submits == []
