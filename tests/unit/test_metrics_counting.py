"""What bot/metrics.py counts from the Notifier's events: a job's end once, however often it
is told (``--role adapters`` hears of its own cancels again through the relay)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain import Destination, GenerationRequest, Job, JobId, JobState, UserId
from bot.metrics import Metrics
from bot.ports import EventKind, JobEvent
from tests.kit.metrics import rendered, value

MADE = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)


def _job(job_id: int, state: JobState, cost: float | None) -> Job:
    return Job(
        id=JobId(job_id),
        user_id=UserId(1),
        request=GenerationRequest(tags="lo-fi", duration=10),
        destination=Destination("telegram", "chat-1", "111"),
        state=state,
        backend="wavespeed",
        created_at=MADE,
        updated_at=MADE + timedelta(seconds=90),
        remote_id=f"remote-{job_id}",
        cost_usd=cost,
    )


async def test_a_job_that_ends_is_counted_once_with_its_cost() -> None:
    metrics = Metrics()
    cancelled = _job(1, JobState.CANCELLED, 0.003)
    metrics.on_event(JobEvent(EventKind.CANCELLED, cancelled))
    metrics.on_event(JobEvent(EventKind.CANCELLED, cancelled))  # relayed again
    metrics.on_event(JobEvent(EventKind.FAILED, _job(2, JobState.FAILED, None)))
    metrics.on_event(JobEvent(EventKind.PROGRESS, _job(3, JobState.RUNNING, 0.003)))
    metrics.on_delivered(_job(4, JobState.DELIVERED, 0.003), [], 1.5)
    metrics.on_delivered(_job(4, JobState.DELIVERED, 0.003), [], 1.5)
    samples = await rendered(metrics)

    ws = {"backend": "wavespeed"}
    assert value(samples, "acejam_jobs_finished_total", outcome="cancelled", **ws) == 1
    assert value(samples, "acejam_jobs_finished_total", outcome="failed", **ws) == 1
    assert value(samples, "acejam_jobs_finished_total", outcome="delivered", **ws) == 1
    assert value(samples, "acejam_cost_usd_total", **ws) == 0.006
    assert value(samples, "acejam_delivery_seconds_count", **ws) == 1
    assert value(samples, "acejam_delivery_seconds_sum", **ws) == 90
    assert value(samples, "acejam_upload_seconds_count", platform="telegram") == 1
    # No store to read: its gauges are left out, and said so.
    assert value(samples, "acejam_store_up") == 0
