"""Who may queue what: quota and active-job rules, as pure functions.

Quotas are seconds of audio per user per rolling 24 h. A job *reserves* its seconds when
queued, *commits* them when delivered and gets a *refund* when it fails or is cancelled;
the ledger rows live in `storage/`, the arithmetic here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

QUOTA_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class UsageSnapshot:
    """What a user has in play right now, for quota decisions."""

    active_jobs: int
    # (reserved_at, seconds) of every reservation in the window not given back
    reservations: tuple[tuple[datetime, int], ...]

    @property
    def used_seconds(self) -> int:
        return sum(seconds for _, seconds in self.reservations)


@dataclass(frozen=True)
class QuotaPolicy:
    seconds_per_day: int
    max_active_jobs: int


@dataclass(frozen=True)
class Refusal:
    """Why a request can't be queued now. ``code`` is stable; ``frees_at`` says when it can."""

    code: str  # "quota" | "active_jobs"
    message: str
    frees_at: datetime | None = None


@dataclass(frozen=True)
class QuotaStatus:
    limit_seconds: int
    used_seconds: int
    active_jobs: int
    max_active_jobs: int
    next_free_at: datetime | None  # when the oldest reservation leaves the window

    @property
    def remaining_seconds(self) -> int:
        return max(0, self.limit_seconds - self.used_seconds)


def frees_at(usage: UsageSnapshot, needed: int, limit: int) -> datetime | None:
    """When enough reservations leave the window for ``needed`` more seconds to fit."""
    excess = usage.used_seconds + needed - limit
    if excess <= 0:
        return None
    released = 0
    for reserved_at, seconds in usage.reservations:  # oldest first
        released += seconds
        if released >= excess:
            return reserved_at + QUOTA_WINDOW
    return None  # only finishing active jobs can't help: the request is larger than the quota


def admit(usage: UsageSnapshot, duration: int, policy: QuotaPolicy) -> Refusal | None:
    if usage.active_jobs >= policy.max_active_jobs:
        return Refusal(
            "active_jobs",
            f"You already have {usage.active_jobs} song(s) in the works "
            f"(the limit is {policy.max_active_jobs}); wait for one to finish or /cancel it.",
        )
    if duration > policy.seconds_per_day:
        return Refusal(
            "quota",
            f"That's longer than your whole daily allowance of {policy.seconds_per_day} s; "
            "ask for a shorter song.",
        )
    if usage.used_seconds + duration > policy.seconds_per_day:
        left = max(0, policy.seconds_per_day - usage.used_seconds)
        when = frees_at(usage, duration, policy.seconds_per_day)
        return Refusal(
            "quota",
            f"You have {left} s of your daily {policy.seconds_per_day} s left and this song "
            f"needs {duration} s.",
            frees_at=when,
        )
    return None


def status(usage: UsageSnapshot, policy: QuotaPolicy) -> QuotaStatus:
    first = usage.reservations[0][0] + QUOTA_WINDOW if usage.reservations else None
    return QuotaStatus(
        limit_seconds=policy.seconds_per_day,
        used_seconds=usage.used_seconds,
        active_jobs=usage.active_jobs,
        max_active_jobs=policy.max_active_jobs,
        next_free_at=first,
    )
