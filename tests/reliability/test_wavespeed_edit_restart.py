"""`kill -9` of a worker in the middle of a WaveSpeed edit (#15), then a restart on the same
SQLite: the edit resumes with one billed submit, and delivers the longer song; the ledger
balances.

- Killed while the edit model makes it (its prediction id stored), the restart polls that
  prediction, and uploads and sends nothing again.
- Killed while the source is being uploaded (nothing billed yet), the restart uploads it again
  and sends the edit once.
(Killed with the prediction's submit on the wire, a WaveSpeed edit fails with its seconds back,
like a song: the prediction may exist and be billed, so it is never sent twice.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app import open_core
from bot.domain import Destination, Edit, GenerationRequest, Job, JobState, Task
from bot.service import Accepted, Requester
from tests.fakes.audio import make_audio, probe_audio
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.fakes.wavespeed_edits import OUTPAINT
from tests.harness import (
    WAVESPEED_KEY,
    RecordingDelivery,
    running_core,
    wait_for_job,
    wavespeed_settings,
)
from tests.kit.audit import audit
from tests.kit.cli import WORKER, acejam_env, acejam_killed_when

pytestmark = pytest.mark.faults

ALICE = Requester("telegram", "111", "alice")
CHAT = Destination("telegram", "chat-1", "111")
FINAL = {JobState.DELIVERED, JobState.FAILED}


async def _killed_then_restarted(
    tmp_path: Path, fake: FakeWaveSpeed, killed_when: Callable[[], bool]
) -> tuple[Job, float, dict[str, int]]:
    """A user's 4 s audio to make 5 s longer, queued by a core that does not generate; a
    worker process killed once ``killed_when`` holds; then a core that finishes the job."""
    own = tmp_path / "sources" / "telegram-chat-1-42.wav"
    own.parent.mkdir(parents=True)
    own.write_bytes(make_audio(4.0, "wav"))
    edit = Edit(Task.EXTEND, str(own), 4.0, own_audio=True, seconds=5)
    settings = wavespeed_settings(tmp_path, fake.base_url)
    async with open_core(settings, generates=False) as core:
        queued = await core.service.submit(
            ALICE, CHAT, GenerationRequest(tags="synthwave", duration=5, edit=edit)
        )
        assert isinstance(queued, Accepted)

    env = acejam_env(tmp_path, fake.base_url, LEASE_SECONDS="1")
    await acejam_killed_when(killed_when, *WORKER, env=env, cwd=tmp_path)

    fake.faults.clear()
    chat = RecordingDelivery("telegram")
    async with running_core(settings, [chat]) as core:
        job = await wait_for_job(core, queued.job.id, FINAL, timeout=30)
        assert job.state == JobState.DELIVERED, job.error_code
        seconds = probe_audio(chat.tracks[job.id][0].path)[0]
        balance = await audit(core).ledger_balance(job.user_id)
    return job, seconds, balance


async def test_a_wavespeed_edit_killed_while_it_runs_resumes_without_a_second_submit(
    tmp_path: Path,
) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.runtime = 25.0  # 1 s upstream: the worker is polling it when killed
        _job, seconds, balance = await _killed_then_restarted(
            tmp_path, fake, lambda: any(p in fake.predictions for p, _ in fake.polls)
        )

    assert fake.upload_requests == 1 and [m for m, _ in fake.edit_submits] == [OUTPAINT]
    assert seconds == pytest.approx(9.0, abs=0.25)  # the whole longer song
    assert balance == {"reserve": 5, "commit": 5}


async def test_a_wavespeed_edit_killed_during_its_upload_is_uploaded_again_and_sent_once(
    tmp_path: Path,
) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add("upload", delay=600.0)  # the upload is on the wire when the kill comes
        _job, seconds, balance = await _killed_then_restarted(
            tmp_path, fake, lambda: fake.upload_requests == 1
        )

    assert fake.upload_requests == 2 and [m for m, _ in fake.edit_submits] == [OUTPAINT]
    assert len(fake.uploads) == 1  # the held upload never finished
    assert seconds == pytest.approx(9.0, abs=0.25)
    assert balance == {"reserve": 5, "commit": 5}
