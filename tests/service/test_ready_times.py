"""What the chat is told about when a song will be ready, from songs the backend really made."""

from __future__ import annotations

from pathlib import Path

from bot.domain import Destination, JobState
from bot.ports import EventKind, JobEvent
from bot.service import Accepted, Requester
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import (
    WAVESPEED_KEY,
    RecordingDelivery,
    wait_for_job,
    wavespeed_settings,
)
from tests.kit.memory_core import Running

ALICE = Requester("telegram", "111", "alice")


async def _ask(core, duration: int) -> int:  # type: ignore[no-untyped-def]
    request = core.service.validate(tags="lo-fi", duration=duration, seed=None)
    outcome = await core.service.submit(
        ALICE, Destination("telegram", "chat-1", ALICE.user_id), request
    )
    assert isinstance(outcome, Accepted), outcome
    return int(outcome.job.id)


def _first(chat: RecordingDelivery, job_id: int, kind: EventKind) -> JobEvent:
    return next(e for e in chat.events if e.job.id == job_id and e.kind == kind)


async def test_ready_times_grow_with_the_length_and_queued_songs_hear_their_wait(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.05, api_key=WAVESPEED_KEY, output_format="wav") as fake:
        settings = wavespeed_settings(
            tmp_path,
            fake.base_url,
            wavespeed_max_concurrency=1,
            quota_seconds_per_day=100_000,
            max_active_jobs_per_user=10,
        )
        async with running(settings, [chat]) as core:
            # What the upstream took for three lengths (2 s + 0.1 s per second, time-scaled).
            for duration in (10, 40, 80):
                await wait_for_job(core, await _ask(core, duration), {JobState.DELIVERED})
            short = await _ask(core, 10)
            long = await _ask(core, 120)
            waiting = [await _ask(core, 10) for _ in range(2)]
            for job_id in (short, long, *waiting):
                await wait_for_job(core, job_id, {JobState.DELIVERED}, timeout=30)

    def runs_for(job_id: int) -> float:
        started = _first(chat, job_id, EventKind.STARTED)
        assert started.eta is not None and started.job.submitted_at is not None
        return (started.eta - started.job.submitted_at).total_seconds()

    # 10 s of audio: about 0.15 s here; 120 s: about 0.7 s. The old estimate said the same.
    assert runs_for(long) > 3 * runs_for(short)
    queued = [e for e in chat.events if e.job.id in waiting and e.kind == EventKind.QUEUED]
    assert queued and all(e.eta is not None and e.position for e in queued)
