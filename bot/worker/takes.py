"""Jobs that make several takes (``request.takes > 1``): one job, one card, one delivery.

Where one upstream task makes every take (ACE-Step's ``batch_size``), the takes share the
job's remote id and arrive as one answer's outputs. Where each take is a submit of its own
(WaveSpeed), each take records its own remote id (and seed) before the next is sent, so a
crash between two submits neither sends a take twice nor loses one that was taken. A take
that fails does so alone: the others go on, and its share of the quota goes back when the
job is delivered. Pure functions over the job's :class:`~bot.domain.Take` values.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from bot.domain import SEED_MAX, Job, Take, TakeState

DONE = frozenset({TakeState.READY, TakeState.FAILED})


def seeds_for(seed: int, count: int) -> list[int]:
    """One seed per take: the user's S gives S, S+1, …; a random one gives distinct ones."""
    if seed >= 0:
        return [(seed + n) % (SEED_MAX + 1) for n in range(count)]
    chosen: list[int] = []
    while len(chosen) < count:
        pick = secrets.randbelow(SEED_MAX + 1)
        if pick not in chosen:
            chosen.append(pick)
    return chosen


def pending_takes(job: Job) -> tuple[Take, ...]:
    """Each take of a job whose takes are submits of their own, none sent yet."""
    seeds = seeds_for(job.request.seed, job.request.takes)
    return tuple(Take(n, TakeState.PENDING, seed=s) for n, s in enumerate(seeds, 1))


def batch_takes(job: Job) -> tuple[Take, ...]:
    """Each take of a job one task makes: all with the upstream at once."""
    return tuple(Take(n, TakeState.SUBMITTED) for n in range(1, job.request.takes + 1))


def with_take(takes: Sequence[Take], take: Take) -> tuple[Take, ...]:
    return tuple(take if t.number == take.number else t for t in takes)


def own_tasks(job: Job) -> bool:
    """Does each take have a task of its own upstream (polled by its own remote id)?"""
    return any(t.remote_id is not None for t in job.takes) or any(
        t.state == TakeState.PENDING for t in job.takes
    )


def remote_ids(job: Job) -> list[str]:
    """What to poll for the job: its one task, or each take's still running."""
    if job.takes and own_tasks(job):
        return [t.remote_id for t in job.takes if t.state == TakeState.SUBMITTED and t.remote_id]
    return [job.remote_id] if job.remote_id else []


def failed_takes(job: Job) -> list[Take]:
    return [t for t in job.takes if t.state == TakeState.FAILED]


def refund_seconds(job: Job) -> int:
    """The quota of the takes that failed alone: given back when the others are delivered."""
    return job.request.duration * len(failed_takes(job))


def main_take(job: Job) -> Take | None:
    """The take the job's own audio fields show: the one kept, else the first ready."""
    ready = [t for t in job.takes if t.state == TakeState.READY]
    kept = [t for t in ready if t.number == job.kept_take]
    return next(iter(kept or ready), None)


def as_main(take: Take) -> dict[str, Any]:
    """The job's own fields for ``take``, so what reads "the track" reads that take."""
    return {
        "audio_path": take.audio_path,
        "audio_format": take.audio_format,
        "audio_duration": take.audio_duration,
        "seed_used": take.seed,
    }


def billed_cost(job: Job, *, bills_failed: bool) -> float | None:
    """The job's cost once its takes are done: the takes the upstream never made are not
    paid for (unless the backend bills those too)."""
    if job.cost_usd is None or bills_failed or not job.takes:
        return job.cost_usd
    unmade = sum(1 for t in failed_takes(job) if not t.billed)
    return job.cost_usd * (len(job.takes) - unmade) / len(job.takes)
