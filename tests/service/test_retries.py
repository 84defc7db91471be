"""Each step of a job retries on its own budget, and a recovered upstream is noticed at once.

Polls, downloads and deliveries each count their own failures: a song whose polls failed
five times still gets every try at its download. A transfer that breaks off, stalls or finds
the host down is tried again until the job's deadline; a song the upstream made and billed
keeps its cost whatever happens after (bot/settlement.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.domain import Destination, JobState
from bot.service import Accepted, Requester
from tests.fakes.audio import probe_audio
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import (
    WAVESPEED_KEY,
    RecordingDelivery,
    running_core,
    wait_for_job,
    wavespeed_settings,
)

ALICE = Requester("telegram", "111", "alice")
BOB = Requester("telegram", "222", "bob")
PRICE = 0.0003  # USD per second of audio
SCALE = 0.02  # the bot's poll time scale: WaveSpeed's 2 s between polls is 40 ms here


async def _submit(core: Any, requester: Requester = ALICE, duration: int = 10) -> Accepted:
    request = core.service.validate(tags="lo-fi, chill", duration=duration)
    destination = Destination(requester.platform, "chat-1", requester.user_id)
    outcome = await core.service.submit(requester, destination, request)
    assert isinstance(outcome, Accepted), outcome
    return outcome


async def until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Wait for something the fakes record (they offer no event for it)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def failure_told(chat: RecordingDelivery, job_id: int) -> str:
    [message] = [e.message or "" for e in chat.events if e.job.id == job_id and e.kind == "failed"]
    return message


async def test_failed_polls_leave_the_download_its_own_tries(tmp_path: Path) -> None:
    """The reproduction from issue #12: five failed polls, then one cut-off download."""
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add("poll", status=500, times=3)
        fake.faults.add("poll", status=429)
        fake.faults.add("poll", malformed=True)
        fake.faults.add("download", truncate=True)
        settings = wavespeed_settings(tmp_path, fake.base_url, poll_time_scale=SCALE)
        async with running_core(settings, [chat]) as core:
            accepted = await _submit(core)
            job = await wait_for_job(core, accepted.job.id, {JobState.DELIVERED, JobState.FAILED})
            quota = await core.service.quota(ALICE)
    assert job.state == JobState.DELIVERED, job.error_code
    assert chat.delivered == [(job.id, Path(job.audio_path or ""))]
    assert abs(probe_audio(Path(job.audio_path or ""))[0] - 10) <= 0.1
    assert len(fake.polls) >= 6 and len(fake.downloads) == 2 and len(fake.submits) == 1
    assert quota.used_seconds == 10


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"truncate": True}, id="cut-off"),
        pytest.param({"drop": True}, id="dropped"),
        pytest.param({"status": 503}, id="host-unavailable"),
        pytest.param({"delay": 1.0}, id="past-DOWNLOAD_TIMEOUT_SECONDS"),
    ],
)
async def test_a_broken_transfer_is_tried_again_beyond_four_times(
    tmp_path: Path, fault: dict[str, Any]
) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add("download", times=5, **fault)
        settings = wavespeed_settings(
            tmp_path, fake.base_url, poll_time_scale=SCALE, download_timeout_seconds=0.3
        )
        async with running_core(settings, [chat]) as core:
            accepted = await _submit(core)
            job = await wait_for_job(core, accepted.job.id, {JobState.DELIVERED, JobState.FAILED})
    assert job.state == JobState.DELIVERED, job.error_code
    assert chat.delivered == [(job.id, Path(job.audio_path or ""))]
    assert abs(probe_audio(Path(job.audio_path or ""))[0] - 10) <= 0.1
    assert len(fake.downloads) == 6 and len(fake.submits) == 1


async def test_a_transfer_that_keeps_breaking_is_retried_until_the_deadline(
    tmp_path: Path,
) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add("download", truncate=True, times=None)
        settings = wavespeed_settings(
            tmp_path,
            fake.base_url,
            poll_time_scale=SCALE,
            job_timeout_seconds=3.0,
            wavespeed_price_per_second=PRICE,
        )
        async with running_core(settings, [chat]) as core:
            accepted = await _submit(core)
            job = await wait_for_job(core, accepted.job.id, {JobState.FAILED})
            quota = await core.service.quota(ALICE)
    assert job.error_code == "download_truncated"
    assert len(fake.downloads) >= 5  # past the old budget of four, spread over the deadline
    told = failure_told(chat, job.id)
    assert "kept breaking off" in told and "Your quota has been given back." in told
    assert quota.used_seconds == 0  # not the user's doing
    assert job.cost_usd == pytest.approx(10 * PRICE)  # but WaveSpeed made it and billed it
    assert chat.delivered == []


async def test_polls_that_fail_until_the_deadline_say_so(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add("poll", status=503, times=None)
        settings = wavespeed_settings(
            tmp_path, fake.base_url, poll_time_scale=SCALE, job_timeout_seconds=1.0
        )
        async with running_core(settings, [chat]) as core:
            accepted = await _submit(core)
            job = await wait_for_job(core, accepted.job.id, {JobState.FAILED})
            quota = await core.service.quota(ALICE)
    assert job.error_code == "poll_failed"
    assert "stopped answering" in failure_told(chat, job.id)
    assert quota.used_seconds == 0 and job.cost_usd == 0.0
    assert len(fake.submits) == 1


async def test_a_download_we_refuse_is_billed_but_the_quota_given_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue #21: WaveSpeed made (and billed) the song, but its output link points where the
    bot won't go. Not the user's doing: quota back. The bill is real: recorded, and the
    operator reads why."""
    chat = RecordingDelivery()
    caplog.set_level(logging.WARNING, logger="bot.worker")
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add_job(output_url="http://169.254.169.254/latest/meta-data/x.mp3")
        settings = wavespeed_settings(
            tmp_path, fake.base_url, poll_time_scale=SCALE, wavespeed_price_per_second=PRICE
        )
        async with running_core(settings, [chat]) as core:
            accepted = await _submit(core)
            job = await wait_for_job(core, accepted.job.id, {JobState.FAILED})
            quota = await core.service.quota(ALICE)
            usage = await core.service.admin.usage(platform="telegram")
    assert job.error_code == "download_refused" and job.error_message
    assert quota.used_seconds == 0
    assert "Your quota has been given back." in failure_told(chat, job.id)
    assert job.cost_usd == pytest.approx(10 * PRICE)
    assert [row.cost_usd for row in usage] == [pytest.approx(10 * PRICE)]
    [logged] = [r.getMessage() for r in caplog.records if "failed: download_refused" in r.message]
    assert job.error_message[:40] in logged
    assert "billed $0.0030" in logged and "quota refunded" in logged
    assert len(fake.downloads) == 0  # never fetched


async def test_after_an_outage_every_waiting_song_is_polled_within_four_seconds(
    tmp_path: Path,
) -> None:
    """Issue #12: polls back off during an outage (up to 30 s a job); once the upstream
    answers again, every song still waiting is polled within 4 s — never two polls of one
    song less than 2 s apart."""
    scale = 0.1  # 2 s is 0.2 s here, 4 s is 0.4 s
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add("poll", status=503, times=None)  # the outage
        settings = wavespeed_settings(tmp_path, fake.base_url, poll_time_scale=scale)
        async with running_core(settings, [chat]) as core:
            first = await _submit(core, ALICE)
            started = await wait_for_job(core, first.job.id, {JobState.SUBMITTED})
            waiting = started.remote_id or ""

            def polls_of(remote_id: str) -> list[float]:
                return [at for polled, at in fake.polls if polled == remote_id]

            # Four failed polls: the next is planned 16 s later. The song finished upstream
            # long ago (3 s).
            await until(lambda: len(polls_of(waiting)) >= 4, "four failed polls")
            fake.faults.clear()  # the upstream is back
            back = time.monotonic()
            second = await _submit(core, BOB)  # its first poll is the first to be answered
            songs = [
                await wait_for_job(core, j.job.id, {JobState.DELIVERED}) for j in (first, second)
            ]
    answered = min(at for _, at in fake.polls if at >= back)
    [caught_up, *_] = [at for at in polls_of(waiting) if at >= answered]
    assert caught_up - answered <= 4.0 * scale
    assert sorted(d[0] for d in chat.delivered) == [s.id for s in songs]
    for song in songs:
        times = polls_of(song.remote_id or "")
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        # 2 s apart at least, less what loopback delivery jitter may shave off a gap.
        assert min(gaps, default=2.0 * scale) >= 2.0 * scale - 0.03, gaps
