"""The stores the core needs, as Protocols the core owns; ``storage/`` implements them on
SQLAlchemy, and only the composition root (``bot/app.py``) knows which implementation.

Each Protocol is one responsibility of the database, as the core sees it:

- :class:`JobStore`: users, new songs (with their quota checks), reads, and compare-and-set
  state changes that write their audit and ledger rows with them (docs/jobs.md);
- :class:`FairQueue`: claiming queued jobs fairly, and places in line;
- :class:`Leases`: who holds which unfinished job, and taking over a dead worker's;
- :class:`EventFeed`: the job events other processes follow (``acejam run --role adapters``);
- :class:`Reports`: what admins list (usage per user, the active jobs);
- :class:`RulesStore`: a chat's rules and a user's overrides.

A store raises :class:`bot.errors.StoreUnavailable` when the database can't answer for a
moment, never its driver's exceptions. The values they exchange are frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.domain import (
    ChatRules,
    Controls,
    Destination,
    GenerationRequest,
    Job,
    JobId,
    JobState,
    UserId,
    UserRules,
)
from bot.quotas import Refusal, UsageNeeds, UsageSnapshot


# ---------------------------------------------------------------- values
@dataclass(frozen=True)
class UserKey:
    platform: str
    user_id: str  # the platform's id
    display_name: str | None = None


@dataclass(frozen=True)
class NewJob:
    user: UserKey
    request: GenerationRequest
    destination: Destination
    backend: str
    idempotency_key: str | None = None
    parent_id: JobId | None = None
    cost_usd: float | None = None  # reserved against budgets until the job ends


@dataclass(frozen=True)
class Enqueued:
    job: Job
    created: bool  # False when the idempotency key already had a job
    position: int  # 1 = next in line; 0 = already past the queue


@dataclass(frozen=True)
class JobPage:
    """One page of a user's jobs, newest first, and how many match on every page."""

    jobs: list[Job]
    total: int


@dataclass(frozen=True)
class UsageRow:
    platform: str
    user_id: str
    display_name: str | None
    jobs: int
    seconds: int
    cost_usd: float
    gpu_seconds: float
    last_job_at: datetime | None


@dataclass(frozen=True)
class StateCount:
    """How many unfinished jobs one backend has in one state, and when the oldest of them
    was asked for (metrics: jobs by state, queue length, the oldest queued job's age)."""

    backend: str
    state: JobState
    jobs: int
    oldest: datetime


# The admission policy is a pure function handed in by the core (bot/quotas.py): None lets
# the job in, a Refusal says why not.
Admission = Callable[[UsageSnapshot], Refusal | None]

EVERYTHING = UsageNeeds()


# ---------------------------------------------------------------- stores
class JobStore(Protocol):
    async def find_user(self, platform: str, platform_user_id: str) -> UserId | None: ...

    async def enqueue(
        self, new: NewJob, *, admit: Admission, now: datetime, needs: UsageNeeds = EVERYTHING
    ) -> Enqueued | Refusal:
        """Insert a queued job and reserve its seconds if ``admit`` lets it in, in one
        transaction with the user's usage it was judged on; an idempotency key already
        seen returns its job (``created=False``)."""
        ...

    async def usage(
        self,
        user_id: UserId,
        now: datetime,
        *,
        platform: str | None = None,
        scope: str | None = None,
    ) -> UsageSnapshot: ...

    async def get(self, job_id: int) -> Job | None:
        """None also for a number no job can have."""
        ...

    async def get_many(self, job_ids: Collection[int]) -> list[Job]: ...

    async def list_jobs(
        self,
        *,
        limit: int = 20,
        user_id: int | None = None,
        states: Collection[JobState] | None = None,
        newest_first: bool = True,
    ) -> list[Job]: ...

    async def page_of_jobs(
        self, user_id: int, *, states: Collection[JobState], offset: int, limit: int
    ) -> JobPage:
        """``limit`` of a user's jobs in ``states`` after the newest ``offset``, newest
        first, and their total count (``/history``)."""
        ...

    async def transition(
        self,
        job_id: int,
        from_states: Collection[JobState],
        to_state: JobState,
        *,
        now: datetime,
        ledger: str | None = None,
        detail: str | None = None,
        refund_seconds: float | None = None,
        **fields: Any,
    ) -> Job | None:
        """Compare-and-set a job's state (None when it was not in ``from_states``), with its
        audit row and, for ``ledger`` "commit" or "refund", the quota row, at most once. A
        commit with ``refund_seconds`` refunds that much of the reservation beside it (the
        takes of a job that failed alone). ``fields`` are the Job's own names (``takes``:
        the Take values)."""
        ...

    async def update_fields(
        self, job_id: int, in_states: Collection[JobState], *, now: datetime, **fields: Any
    ) -> Job | None:
        """Change fields without a state change, if the job is still in one of ``in_states``."""
        ...

    async def merge_context(
        self, job_id: int, patch: Mapping[str, Any], now: datetime
    ) -> Job | None: ...

    async def record_written(
        self,
        job_id: int,
        in_states: Collection[JobState],
        *,
        tags: str,
        lyrics: str,
        duration: int,
        controls: Controls,
        now: datetime,
    ) -> Job | None:
        """What the backend's language model wrote for a song from one sentence becomes the
        job's own tags, lyrics, length and controls (its card shows them, a variation keeps
        them), if the job is still in one of ``in_states``. The quota reserved stays as it
        was: it settles what was asked, not what was written."""
        ...

    async def recent_runtimes(self, backend: str, limit: int = 50) -> list[tuple[int, float]]:
        """(duration asked, seconds from submit to upstream completion) of recent jobs."""
        ...

    async def kept_audio(self) -> set[str]:
        """Audio files that must not be deleted: their jobs are not delivered yet (their
        takes, and an edit's source)."""
        ...


class FairQueue(Protocol):
    async def claim_for_submit(
        self, backend: str, *, owner: str, max_in_flight: int, lease_until: datetime, now: datetime
    ) -> list[Job]:
        """Move up to the free slots' worth of queued jobs to SUBMITTING, in the fair
        order stored when they were queued (:mod:`bot.scheduler`), leased to ``owner``."""
        ...

    async def queue_order(self, backend: str, *, first: int | None = None) -> list[int]:
        """Queued job ids in serving order (the ``first`` few only, when given)."""
        ...

    async def positions(self, jobs: Collection[Job]) -> dict[JobId, int]:
        """The place in line (1 = next) of each of ``jobs`` still queued."""
        ...


class Leases(Protocol):
    async def adopt(
        self,
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        backend: str | None,
        deliver_platforms: Collection[str],
        dead_owners: Collection[str] = (),
    ) -> list[Job]:
        """Take over unfinished jobs whose lease ran out (or whose owner is known dead)."""
        ...

    async def live_owners(self, now: datetime) -> set[str]: ...

    async def renew_leases(self, owner: str, job_ids: Collection[int], until: datetime) -> set[int]:
        """Extend our leases; returns the ids we still hold."""
        ...

    async def release(self, owner: str, job_ids: Collection[int]) -> None:
        """Give up our leases: another process may adopt the jobs at once."""
        ...


class EventFeed(Protocol):
    async def last_event_id(self) -> int: ...

    async def events_after(
        self, event_id: int, *, platforms: Collection[str], limit: int = 200
    ) -> list[tuple[int, Job | None, JobState]]:
        """State changes after ``event_id`` for jobs of these platforms, oldest first."""
        ...

    async def prune_events(self, *, before: datetime, batch: int = 5000) -> int:
        """Delete events older than ``before``; returns how many."""
        ...


class Reports(Protocol):
    async def usage_report(
        self, *, since: datetime, platform: str | None = None, scope: str | None = None
    ) -> list[UsageRow]: ...

    async def active_jobs(
        self, *, platform: str | None = None, scope: str | None = None
    ) -> list[Job]: ...

    async def active_counts(self) -> list[StateCount]:
        """Unfinished jobs per backend and state (one grouped read of the active states
        only, so its cost follows the queue, not the history)."""
        ...


class RulesStore(Protocol):
    async def chat_rules(self, platform: str, scope_id: str) -> ChatRules | None: ...

    async def rules_for(
        self, platform: str, user_id: str, scope_id: str
    ) -> tuple[ChatRules | None, list[UserRules]]:
        """A chat's rules and a user's overrides there, read together."""
        ...

    async def update_chat_rules(
        self,
        platform: str,
        scope_id: str,
        changes: Mapping[str, Any] | Callable[[ChatRules], Mapping[str, Any]],
        now: datetime,
    ) -> ChatRules:
        """Apply ``changes``, or ``changes(current rules)`` computed under the row lock."""
        ...

    async def user_rules(self, platform: str, user_id: str, scope_id: str) -> list[UserRules]: ...

    async def update_user_rules(
        self,
        platform: str,
        user_id: str,
        scope_id: str,
        changes: Callable[[UserRules], Mapping[str, Any]],
        now: datetime,
    ) -> UserRules:
        """Apply ``changes(current override)`` under the row lock."""
        ...


# What each part of the core is handed.
class ServiceStore(JobStore, FairQueue, Reports, Protocol):
    """GenerationService and AdminService: songs, places in line, admins' lists."""


class WorkerStore(JobStore, FairQueue, Leases, EventFeed, Protocol):
    """The Worker: the whole life of a job, under leases, and the retention sweep."""


class CoreStore(WorkerStore, Reports, Protocol):
    """Everything: what the shell opens and hands to each part."""
