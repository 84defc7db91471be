"""`kill -9` of a worker in the middle of an ACE-Step edit (#15), then a restart on the same
SQLite: the edit resumes with at most the one submit a song would make, and its source file
is still there for it.

- Killed while the engine makes it (its task id stored): the restart polls that task, sends
  nothing, and delivers the longer song.
- Killed with the submit on the wire (the engine took it, the answer never came): ACE-Step
  bills nothing, so the job goes back to the queue and is sent once more, its source uploaded
  again from our copy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app import open_core
from bot.domain import Destination, Edit, GenerationRequest, JobState, Task
from bot.service import Accepted, Requester
from tests.fakes.acestep import FakeAceStep
from tests.fakes.audio import make_audio, probe_audio
from tests.harness import RecordingDelivery, acestep_settings, running_core, wait_for_job
from tests.kit.audit import audit
from tests.kit.cli import WORKER, acejam_env, acejam_killed_when

pytestmark = pytest.mark.faults

ALICE = Requester("telegram", "111", "alice")
CHAT = Destination("telegram", "chat-1", "111")
FINAL = {JobState.DELIVERED, JobState.FAILED}


async def _killed_worker(tmp_path: Path, fake: FakeAceStep, when: Callable[[], bool]) -> None:
    """Run `acejam run --role worker` until ``when`` holds, then kill -9 it."""
    env = acejam_env(
        tmp_path, fake.base_url, BACKEND="acestep", ACESTEP_API_URL=fake.base_url, LEASE_SECONDS="1"
    )
    await acejam_killed_when(when, *WORKER, env=env, cwd=tmp_path)


async def _queue_extend(tmp_path: Path, fake: FakeAceStep) -> tuple[int, int]:
    """A user's 4 s audio to make 3 s longer, queued by a core that does not generate; the
    job's id and the source's size."""
    own = tmp_path / "sources" / "telegram-chat-1-42.wav"
    own.parent.mkdir(parents=True)
    own.write_bytes(make_audio(4.0, "wav"))
    edit = Edit(Task.EXTEND, str(own), 4.0, own_audio=True, seconds=3)
    async with open_core(acestep_settings(tmp_path, fake.base_url), generates=False) as core:
        queued = await core.service.submit(
            ALICE, CHAT, GenerationRequest(tags="synthwave", duration=3, edit=edit)
        )
        assert isinstance(queued, Accepted)
    return queued.job.id, own.stat().st_size


@pytest.mark.parametrize("kill_while", ["running", "submitting"])
async def test_a_killed_edit_resumes_with_one_submit_and_its_source(
    tmp_path: Path, kill_while: str
) -> None:
    async with FakeAceStep(time_scale=0.04) as fake:
        job_id, size = await _queue_extend(tmp_path, fake)
        if kill_while == "running":
            fake.runtime = 25.0  # 1 s upstream: the worker is polling it when killed

            def when() -> bool:
                return any(fake.tasks.keys() & set(ids) for ids, _ in fake.query_calls)

        else:  # the engine takes the submit, its answer never comes

            def when() -> bool:
                return len(fake.edits) == 1

            fake.faults.add("submit", processed=True, delay_response=60.0, times=1)
        await _killed_worker(tmp_path, fake, when)

        chat = RecordingDelivery("telegram")
        settings = acestep_settings(tmp_path, fake.base_url)
        async with running_core(settings, [chat]) as core:
            job = await wait_for_job(core, job_id, FINAL, timeout=30)
            seconds = probe_audio(chat.tracks[job.id][0].path)[0]
            balance = await audit(core).ledger_balance(job.user_id)

    sent = 1 if kill_while == "running" else 2
    assert job.state == JobState.DELIVERED and len(fake.edits) == sent
    assert [got.source_bytes for got in fake.edits] == [size] * sent
    assert seconds == pytest.approx(7.0, abs=0.25)
    assert balance == {"reserve": 3, "commit": 3}
