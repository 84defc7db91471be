"""/metrics with the real Telegram client: a 429 on sendAudio is waited out and counted as a
rate-limit wait, and the song's upload and delivery are counted for the platform."""

from __future__ import annotations

from pathlib import Path

from bot.domain import JobState
from tests.adapters.telegram.conftest import WAIT, Rig
from tests.adapters.telegram.test_commands import job_id_of
from tests.harness import wait_for_job
from tests.kit.metrics import rendered, value


async def test_a_flood_wait_and_the_upload_are_counted(rig: Rig) -> None:
    rig.tg.faults.add("sendAudio", status=429, retry_after=1)
    status = await rig.ask("/song lo-fi | 10")
    await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    job = await wait_for_job(rig.core, job_id_of(status), {JobState.DELIVERED})
    samples = await rendered(rig.core.metrics)

    telegram = {"platform": "telegram"}
    assert value(samples, "acejam_rate_limit_waits_total", **telegram) == 1
    # Telegram's retry_after, and the tenth of a second the gate adds.
    assert value(samples, "acejam_rate_limit_wait_seconds_total", **telegram) == 1.1
    assert value(samples, "acejam_rate_limit_waits_total", platform="discord") == 0
    assert value(samples, "acejam_upload_seconds_count", **telegram) == 1
    assert value(samples, "acejam_upload_seconds_sum", **telegram) >= 1.0  # the wait was in it
    size = Path(job.audio_path or "").stat().st_size
    assert value(samples, "acejam_upload_bytes_total", **telegram) == size
    assert (
        value(samples, "acejam_jobs_finished_total", backend="wavespeed", outcome="delivered") == 1
    )
