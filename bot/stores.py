"""The stores the core needs, as Protocols the core owns; ``storage/`` implements them on
SQLAlchemy, and only the composition root (``bot/app.py``) knows which implementation.

Each Protocol is one responsibility of the database, as the core sees it:

- :class:`JobStore`: users, new songs (with their quota checks), reads, and compare-and-set
  state changes that write their audit and ledger rows with them (docs/jobs.md);
- :class:`FairQueue`: claiming queued jobs fairly, and places in line;
- :class:`Leases`: who holds which unfinished job, and taking over a dead worker's;
- :class:`EventFeed`: the job events other processes follow (``acejam run --role adapters``);
- :class:`Reports`: what admins list (usage per user, the active jobs);
- :class:`RulesStore`: a chat's rules and a user's overrides;
- :class:`JamStore`: community jams, their rounds, contributions, takes and votes.

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
    Edit,
    GenerationRequest,
    Job,
    JobId,
    JobState,
    UserId,
    UserRules,
)
from bot.jams.model import (
    Contribution,
    Jam,
    JamState,
    JamStats,
    JamTakeRef,
    NewJam,
    Part,
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
    # Seconds the ledger reserves against the user's daily quota; None: what it generates
    # (0 for a jam's take the chat pays for, bot.quotas.Charge).
    quota_seconds: int | None = None


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

    async def record_prepared(
        self, job_id: int, in_states: Collection[JobState], *, edit: Edit, now: datetime
    ) -> Job | None:
        """The job's edit as ``Backend.prepare`` left it (its source uploaded), if the job is
        still in one of ``in_states``: from here on a crash no longer means nothing was sent."""
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
        self,
        backend: str,
        *,
        owner: str,
        max_in_flight: int,
        lease_until: datetime,
        now: datetime,
        at_most: int | None = None,
    ) -> list[Job]:
        """Move up to the free slots' worth of queued jobs (and at most ``at_most``) to
        SUBMITTING, in the fair order stored when they were queued (:mod:`bot.scheduler`),
        leased to ``owner``."""
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


# A jam's rule checked inside the store's transaction, on the jam as it is then (and the
# contribution about to be added or removed): None lets it through, a sentence says why not.
JamCheck = Callable[[Jam, Contribution], str | None]


class JamStore(Protocol):
    """Community jams (bot/jams/). Every write takes the jam's row first (its lock), so
    what one decides from the jam it read holds until it commits: two processes never
    render, close or count a vote twice."""

    async def create_jam(
        self, new: NewJam, *, now: datetime, collect_ends_at: datetime
    ) -> Jam | None:
        """A jam with its first round collecting, unless a jam not ended lives in (or was
        started from) ``new.chat_id`` and is open: None then. Closed ones there end."""
        ...

    async def get_jam(self, jam_id: int) -> Jam | None: ...

    async def jam_at(self, platform: str, chat_id: str) -> Jam | None:
        """The newest jam not ended whose chat_id or origin_id is ``chat_id``."""
        ...

    async def jam_by_token(self, token: str) -> Jam | None: ...

    async def open_jams(self) -> list[Jam]:
        """Every jam collecting, rendering or voting (what the clock looks at)."""
        ...

    async def update_jam(
        self,
        jam_id: int,
        *,
        now: datetime,
        chat_id: str | None = None,
        context: Mapping[str, Any] | None = None,  # merged into the jam's
        token: str | None = None,
        revoke_token: bool = False,
    ) -> Jam | None: ...

    async def add_contribution(
        self,
        jam_id: int,
        *,
        part: Part,
        text: str,
        author_id: str,
        author_name: str | None,
        now: datetime,
        check: JamCheck,
    ) -> tuple[Jam, Contribution] | str | None:
        """Number it (the jam's next), ``check`` the jam with it added, then keep it; a
        sentence when ``check`` refuses, None when there is no such jam."""
        ...

    async def remove_contribution(
        self, jam_id: int, number: int, *, now: datetime, check: JamCheck
    ) -> Jam | str | None:
        """Mark contribution ``number`` removed if ``check`` lets it (None: not found)."""
        ...

    async def advance(
        self,
        jam_id: int,
        round: int,
        from_states: Collection[JamState],
        to_state: JamState,
        *,
        now: datetime,
        **round_fields: Any,
    ) -> Jam | None:
        """Compare-and-set: round ``round``, the jam's current, from ``from_states`` to
        ``to_state`` (with Round fields: collect_ends_at, vote_ends_at, winner_take);
        None when it was not so (another process or person acted first)."""
        ...

    async def start_round(
        self,
        jam_id: int,
        after: int,
        *,
        now: datetime,
        collect_ends_at: datetime,
        base_job_id: JobId | None,
        extended: bool,
    ) -> Jam | None:
        """Compare-and-set: round ``after`` closed and current → round ``after + 1``
        collecting."""
        ...

    async def end_jam(self, jam_id: int, *, now: datetime) -> Jam | None: ...

    async def record_take(self, jam_id: int, round: int, take: int, job_id: JobId) -> Jam | None:
        """Remember a take's job (the same again changes nothing)."""
        ...

    async def vote(
        self,
        jam_id: int,
        round: int,
        take: int,
        voter_id: str,
        *,
        now: datetime,
        check: Callable[[Jam], str | None],
    ) -> tuple[Jam, bool] | str | None:
        """The voter's one vote in this round is for ``take`` (an upsert), if ``check``
        lets it; True when that changed something."""
        ...

    async def take_of(self, job_id: int) -> JamTakeRef | None: ...

    async def jam_stats(self, platform: str, scope_id: str) -> JamStats: ...


# What each part of the core is handed.
class ServiceStore(JobStore, FairQueue, Reports, Protocol):
    """GenerationService and AdminService: songs, places in line, admins' lists."""


class WorkerStore(JobStore, FairQueue, Leases, EventFeed, Protocol):
    """The Worker: the whole life of a job, under leases, and the retention sweep."""


class CoreStore(WorkerStore, Reports, Protocol):
    """Everything: what the shell opens and hands to each part."""
