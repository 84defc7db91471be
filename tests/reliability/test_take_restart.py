"""`kill -9` of a worker between two takes' submits (#14), then a restart on the same SQLite.

WaveSpeed bills every submit it takes, and each take of a multi-take job is a submit of its
own. The worker records each take's remote id before it sends the next, so after a crash
only the take whose submit was on the wire is in doubt: it fails alone with its quota back,
the takes before it are polled (not sent again), the ones after it are sent once, and the
job delivers what was made.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import open_core
from bot.domain import Destination, JobState, TakeState
from bot.service import Accepted, Requester
from tests.fakes.wavespeed import FakeWaveSpeed
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


async def test_a_crash_between_two_takes_sends_none_twice_and_loses_none(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        settings = wavespeed_settings(tmp_path, fake.base_url)
        async with open_core(settings, generates=False) as core:
            request = core.service.validate(tags="lo-fi", duration="10", seed="70", takes="3")
            queued = await core.service.submit(ALICE, CHAT, request)
            assert isinstance(queued, Accepted)
        # The first take is answered; the second is taken upstream but its answer never comes.
        fake.faults.add("submit", times=1)
        fake.faults.add("submit", processed=True, delay_response=60.0, times=1)
        await acejam_killed_when(
            lambda: len(fake.submits) == 2,
            *WORKER,
            env=acejam_env(tmp_path, fake.base_url),
            cwd=tmp_path,
        )

        chat = RecordingDelivery("telegram")
        async with running_core(settings, [chat]) as core:
            job = await wait_for_job(core, queued.job.id, {JobState.DELIVERED, JobState.FAILED})
            balance = await audit(core).ledger_balance(job.user_id)

    assert [body["seed"] for body in fake.submits] == [70, 71, 72]  # none sent twice
    assert job.state == JobState.DELIVERED
    assert [t.state for t in job.takes] == [TakeState.READY, TakeState.FAILED, TakeState.READY]
    assert job.takes[1].error_code == "submit_uncertain"
    assert [t.take for t in chat.tracks[job.id]] == [1, 3]
    assert balance == {"reserve": 30, "commit": 20, "refund": 10}
