"""#15 on ACE-Step through the core and its worker, on the SQLite store: an edit job (a
request with ``edit`` set) goes through the same queue, worker and delivery as a song; the
server gets the source as a multipart upload and the chat gets the whole song back."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import messages
from bot.domain import Destination, Edit, GenerationRequest, JobState, Task
from bot.edits import EditAsk
from bot.service import Accepted, Refused, Requester
from tests.fakes.acestep import FakeAceStep
from tests.fakes.audio import make_audio, probe_audio
from tests.harness import RecordingDelivery, acestep_settings, running_core, wait_for_job

ALICE = Requester("telegram", "111", "alice")
CHAT = Destination("telegram", "chat-1", "111")
FINAL = {JobState.DELIVERED, JobState.FAILED}


async def test_an_extend_of_a_users_audio_runs_like_a_song_and_comes_back_whole(
    tmp_path: Path,
) -> None:
    chat = RecordingDelivery()
    # A user's upload as bot/sources.py keeps it (short: the fake encodes real audio).
    own = tmp_path / "sources" / "telegram-chat-1-42.wav"
    own.parent.mkdir()
    own.write_bytes(make_audio(4.0, "wav"))
    extend = Edit(Task.EXTEND, str(own), 4.0, own_audio=True, seconds=3, at_start=True)
    async with FakeAceStep(time_scale=0.04) as fake:
        async with running_core(acestep_settings(tmp_path, fake.base_url), [chat]) as core:
            request = GenerationRequest(tags="synthwave", duration=3, edit=extend)
            outcome = await core.service.submit(ALICE, CHAT, request)
            assert isinstance(outcome, Accepted)
            job = await wait_for_job(core, outcome.job.id, FINAL)
            seconds = probe_audio(chat.tracks[job.id][0].path)[0]
            quota = await core.service.quota(ALICE, CHAT.scope)
            stored = await core.store.get(job.id)

    assert job.state == JobState.DELIVERED and chat.kinds(job.id)[-1] == "succeeded"
    assert stored is not None and stored.request.edit == extend  # the edit is stored whole
    (got,) = fake.edits
    assert (got.task_type, got.source_bytes, got.source_name) == (
        "repaint",
        own.stat().st_size,
        "source.wav",
    )
    assert (got.repainting_start, got.repainting_end) == (-3.0, 0.01)
    assert seconds == pytest.approx(7.0, abs=0.25)  # the whole song, 3 s longer
    assert quota.used_seconds == 3  # the seconds it generated


async def test_an_edit_whose_source_is_gone_fails_for_good_and_gives_the_seconds_back(
    tmp_path: Path,
) -> None:
    chat = RecordingDelivery()
    gone = tmp_path / "sources" / "swept.mp3"
    edit = Edit(Task.REMIX, str(gone), 12.0, strength=0.5)
    async with FakeAceStep(time_scale=0.04) as fake:
        async with running_core(acestep_settings(tmp_path, fake.base_url), [chat]) as core:
            request = GenerationRequest(tags="bossa nova", duration=12, edit=edit)
            outcome = await core.service.submit(ALICE, CHAT, request)
            assert isinstance(outcome, Accepted)
            job = await wait_for_job(core, outcome.job.id, FINAL)
            quota = await core.service.quota(ALICE, CHAT.scope)
    assert job.state == JobState.FAILED and job.attempts <= 1
    assert quota.used_seconds == 0 and fake.submits == []
    failed = [e for e in chat.events if e.job.id == job.id and e.kind.value == "failed"]
    assert failed and failed[0].message


async def test_a_repaint_and_a_remix_asked_of_a_track_reach_the_engine_and_the_chat(
    tmp_path: Path,
) -> None:
    chat = RecordingDelivery()
    async with FakeAceStep(time_scale=0.04) as fake:
        async with running_core(acestep_settings(tmp_path, fake.base_url), [chat]) as core:
            await core.backend.refresh_capabilities()  # as `acejam run` does at start
            assert core.service.edits_offered == {Task.EXTEND, Task.REPAINT, Task.REMIX}
            song = await core.service.submit(
                ALICE,
                CHAT,
                GenerationRequest(tags="synthwave", lyrics="[Verse]\nneon", duration=10),
            )
            assert isinstance(song, Accepted)
            parent = await wait_for_job(core, song.job.id, FINAL)
            assert parent.audio_path and parent.audio_duration
            asks = (
                EditAsk(Task.REPAINT, of_job=parent.id, start="0:03", end="6"),
                EditAsk(Task.REMIX, of_job=parent.id, tags="bossa nova", strength="0.3"),
            )
            jobs = []
            for ask in asks:
                outcome = await core.service.edit(ALICE, CHAT, ask)
                assert isinstance(outcome, Accepted), outcome
                jobs.append(await wait_for_job(core, outcome.job.id, FINAL))
            lengths = [probe_audio(chat.tracks[job.id][0].path)[0] for job in jobs]

    repainted, remixed = jobs
    assert repainted.state == remixed.state == JobState.DELIVERED
    assert [messages.lineage(job) for job in jobs] == [
        f"repaint of #{parent.id}",
        f"remix of #{parent.id}",
    ]
    section, cover = fake.edits
    assert (section.task_type, section.repainting_start, section.repainting_end) == (
        "repaint",
        3.0,
        6.0,
    )
    assert (cover.task_type, cover.audio_cover_strength) == ("cover", 0.3)
    # The parent's own audio went up; a repaint keeps its words, a remix takes the new style.
    assert section.source_bytes == cover.source_bytes == Path(parent.audio_path).stat().st_size
    assert (section.fields["prompt"], section.fields["lyrics"]) == ("synthwave", "[Verse]\nneon")
    assert cover.fields["prompt"] == "bossa nova"
    assert lengths == [pytest.approx(parent.audio_duration, abs=0.25)] * 2


async def test_a_server_whose_model_cannot_repaint_offers_no_extend_and_says_why(
    tmp_path: Path,
) -> None:
    async with FakeAceStep(time_scale=0.04, task_types=("text2music", "cover")) as fake:
        async with running_core(acestep_settings(tmp_path, fake.base_url)) as core:
            await core.backend.refresh_capabilities()
            offered = core.service.edits_offered
            refused = await core.service.edit(ALICE, CHAT, EditAsk(Task.EXTEND, seconds="10"))
            jobs = await core.store.list_jobs(limit=10)
    assert offered == {Task.REMIX}
    assert isinstance(refused, Refused) and refused.code == "not_offered"
    assert "/extend" in refused.message and "/remix" in refused.message
    assert jobs == [] and fake.submits == []
