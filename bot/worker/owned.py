"""A job this process holds a lease on: which phase it is in, and what to do with it next."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.domain import Job, JobState
from bot.ports import Nudge, Nudges, RemoteStatus


class Phase(StrEnum):
    """Where an owned job is in this process (kept in memory only; the database has its state).

    A StrEnum so that logs read as before ("unexpected error in polling")."""

    SUBMITTING = "submitting"
    POLLING = "polling"  # waiting for the upstream: polled, or told by a webhook
    FINISHING = "finishing"  # fetching the audio and recording the success
    DELIVERING = "delivering"


@dataclass
class Owned:
    """A job this process holds a lease on, and what to do with it next."""

    job: Job
    phase: Phase
    due: float = 0.0  # monotonic time of the next poll
    last_poll: float = -math.inf  # monotonic time of the last poll
    # Failures in a row, one count per step.
    poll_failures: int = 0
    transfer_failures: int = 0
    dead_links: int = 0
    delivery_failures: int = 0
    # Seconds after submit of the last poll that saw the job unfinished: it completed
    # between then and the poll that saw it done.
    seen_unfinished: float | None = None
    # Set while a step runs for the job (a poll and the handling of its answer included).
    busy: bool = False
    # The ready time last shown to the chat: once it lapses, the next poll shows a new one.
    eta_shown: datetime | None = None
    # A webhook's news that came while a poll's answer was being handled: whoever holds
    # the job takes it up next, so one notice at a time moves the job on.
    pushed: RemoteStatus | None = None
    # A job whose takes are tasks of their own: each finished take's answer (by take
    # number), for the download once every take is done.
    finished_takes: dict[int, RemoteStatus] = field(default_factory=dict)


def tell_handed_back(nudges: Nudges | None, released: Iterable[Owned]) -> None:
    """Tell the processes that may take up jobs whose leases were just given back: a song
    ready to deliver goes to its platform's, one in flight to its backend's workers."""
    if nudges is None:
        return
    for owned in released:
        job = owned.job
        if owned.phase == Phase.DELIVERING or job.state == JobState.SUCCEEDED:
            nudges.send(Nudge.DELIVER, job.destination.platform)
        else:
            nudges.send(Nudge.WORK, job.backend)
