"""#15 on ACE-Step through the core and its worker, on the SQLite store: an edit job (a
request with ``edit`` set) goes through the same queue, worker and delivery as a song; the
server gets the source as a multipart upload and the chat gets the whole song back."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain import Destination, Edit, GenerationRequest, JobState, Task
from bot.service import Accepted, Requester
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
