"""The core's stores (bot/stores.py) in memory, for service and worker tests that are not
about the database: the same semantics as ``storage/`` (compare-and-set transitions, quota
checks on insert, the stored fair order of :mod:`bot.scheduler`, leases that expire,
the event feed with growing ids, usage reports), without SQL or files.

tests/storage/test_store_contract.py holds this store to the SQL stores: the same
assertions run against both, so a difference in behaviour fails there, not in a service
test that happens to lean on it.

Every method runs without awaiting anything, so on one event loop each call is atomic, as
one transaction is in the database.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.domain import (
    ACTIVE_STATES,
    EVERYWHERE,
    FINAL_STATES,
    IN_FLIGHT_STATES,
    ChatRules,
    Controls,
    Destination,
    Edit,
    Job,
    JobId,
    JobState,
    UserId,
    UserRules,
)
from bot.quotas import QUOTA_WINDOW, Refusal, UsageNeeds, UsageSnapshot
from bot.scheduler import fair_round
from bot.stores import (
    EVERYTHING,
    Admission,
    Enqueued,
    JobPage,
    NewJob,
    Reports,
    RulesStore,
    ServiceStore,
    StateCount,
    UsageRow,
    UserKey,
    WorkerStore,
)

MAX_JOB_ID = 2**63 - 1  # as storage/jobs/rows.py: a number outside it names no job
DONE = frozenset({JobState.SUCCEEDED, JobState.DELIVERED})
JOB_FIELDS = frozenset(f.name for f in dataclasses.fields(Job)) - {"id", "user_id", "state"}


def _aware(moment: datetime) -> datetime:
    # The SQL stores refuse naive datetimes (storage/models.py UTCDateTime); so does this one.
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the database")
    return moment


@dataclass
class _User:
    id: UserId
    platform: str
    platform_user_id: str
    display_name: str | None
    last_request_at: datetime
    last_served_at: datetime | None = None


@dataclass
class _Row:
    """A job as the database holds it: the core's Job plus the columns only storage reads."""

    job: Job
    idempotency_key: str | None = None
    remote_seconds: float | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    delivered_at: datetime | None = None
    # The fair queue's stored place (bot/scheduler.py): served in (round, turn, id) order.
    fair_round: int = 0
    chat_turn: int = 0
    fair_served: float = float("-inf")  # the user's last service when queued (never: first)

    def out(self) -> Job:
        """A copy the caller may not change us through (the database hands out new rows)."""
        destination = replace(
            self.job.destination, context=copy.deepcopy(self.job.destination.context)
        )
        return replace(self.job, destination=destination)

    def set(self, now: datetime, **fields: Any) -> None:
        job_fields = {k: v for k, v in fields.items() if k in JOB_FIELDS or k == "state"}
        for name in set(fields) - set(job_fields):
            if not hasattr(self, name):
                raise TypeError(f"no column {name!r} on jobs")
            setattr(self, name, fields[name])
        self.job = replace(self.job, updated_at=now, **job_fields)

    def lease_free(self, now: datetime, dead_owners: Collection[str]) -> bool:
        return (
            self.lease_owner is None
            or (self.lease_expires_at is not None and self.lease_expires_at < now)
            or self.lease_owner in dead_owners
        )


@dataclass(frozen=True)
class _Event:
    id: int
    job_id: int
    at: datetime
    from_state: str | None
    to_state: JobState
    detail: str | None


@dataclass(frozen=True)
class _Ledger:
    user_id: int
    job_id: int
    kind: str  # reserve | commit | refund
    seconds: int
    created_at: datetime


@dataclass
class MemoryJobStore:
    """JobStore, FairQueue, Leases, EventFeed and Reports, as :class:`storage.jobs.SqlJobStore`."""

    _users: dict[tuple[str, str], _User] = field(default_factory=dict)
    _rows: dict[int, _Row] = field(default_factory=dict)
    _events: list[_Event] = field(default_factory=list)
    _ledger: list[_Ledger] = field(default_factory=list)
    _job_ids: Any = field(default_factory=lambda: itertools.count(1))
    _user_ids: Any = field(default_factory=lambda: itertools.count(1))
    _event_ids: Any = field(default_factory=lambda: itertools.count(1))

    # ------------------------------------------------------------ users and writes
    def _touch_user(self, who: UserKey, now: datetime) -> UserId:
        user = self._users.get((who.platform, who.user_id))
        if user is None:
            user = _User(
                UserId(next(self._user_ids)),
                who.platform,
                who.user_id,
                (who.display_name or "")[:128] or None,
                now,
            )
            self._users[(who.platform, who.user_id)] = user
        user.last_request_at = now
        return user.id

    async def find_user(self, platform: str, platform_user_id: str) -> UserId | None:
        user = self._users.get((platform, platform_user_id))
        return user.id if user is not None else None

    async def enqueue(
        self, new: NewJob, *, admit: Admission, now: datetime, needs: UsageNeeds = EVERYTHING
    ) -> Enqueued | Refusal:
        _aware(now)
        if new.idempotency_key is not None:
            for row in self._rows.values():
                if row.idempotency_key == new.idempotency_key:
                    return Enqueued(row.out(), False, self._places([row.job]).get(row.job.id, 0))
        user_id = self._touch_user(new.user, now)
        usage = self._usage(
            user_id,
            now,
            platform=new.destination.platform,
            scope=new.destination.scope,
            needs=needs,
        )
        refusal = admit(usage)
        if refusal is not None:
            return refusal
        job_id = JobId(next(self._job_ids))
        destination = replace(
            new.destination,
            scope_id=new.destination.scope,  # the column always holds the scope
            context=copy.deepcopy(dict(new.destination.context)),
        )
        job = Job(
            id=job_id,
            user_id=user_id,
            request=new.request,
            destination=destination,
            state=JobState.QUEUED,
            backend=new.backend,
            created_at=now,
            updated_at=now,
            parent_id=new.parent_id,
            cost_usd=new.cost_usd,
        )
        row = _Row(job, idempotency_key=new.idempotency_key)
        row.fair_round, row.chat_turn = self._fair_place(user_id, new.backend, destination)
        served = next(u.last_served_at for u in self._users.values() if u.id == user_id)
        row.fair_served = served.timestamp() if served is not None else float("-inf")
        self._rows[job_id] = row
        seconds = new.request.duration * new.request.takes
        if new.quota_seconds is not None:  # a jam's take the chat pays for: 0
            seconds = new.quota_seconds
        self._ledger.append(_Ledger(user_id, job_id, "reserve", seconds, now))
        self._audit([job_id], None, JobState.QUEUED, now)
        return Enqueued(row.out(), True, self._places([job]).get(job_id, 0))

    async def usage(
        self,
        user_id: UserId,
        now: datetime,
        *,
        platform: str | None = None,
        scope: str | None = None,
    ) -> UsageSnapshot:
        return self._usage(user_id, now, platform=platform, scope=scope)

    def _usage(
        self,
        user_id: int,
        now: datetime,
        *,
        platform: str | None = None,
        scope: str | None = None,
        needs: UsageNeeds = EVERYTHING,
    ) -> UsageSnapshot:
        jobs = [row.job for row in self._rows.values()]
        active = sum(1 for j in jobs if j.user_id == user_id and j.state in ACTIVE_STATES)
        reservations: tuple[tuple[datetime, int], ...] = ()
        if needs.reservations:
            refunded = {
                e.job_id: e.seconds
                for e in self._ledger
                if e.user_id == user_id and e.kind == "refund"
            }
            held = [
                (e.created_at, e.seconds - refunded.get(e.job_id, 0))
                for e in self._ledger
                if e.user_id == user_id
                and e.kind == "reserve"
                and e.created_at > now - QUOTA_WINDOW
            ]
            reservations = tuple(sorted((at, s) for at, s in held if s > 0))
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        this_month = [j for j in jobs if j.created_at >= month_start]
        total_cost = sum(j.cost_usd or 0.0 for j in this_month) if needs.month_cost else 0.0
        scope_active, scope_cost = 0, 0.0
        if needs.scope and platform is not None and scope is not None:
            theirs = [
                j
                for j in jobs
                if j.destination.platform == platform and j.destination.scope == scope
            ]
            scope_active = sum(1 for j in theirs if j.state in ACTIVE_STATES)
            if needs.scope_cost:
                scope_cost = sum(j.cost_usd or 0.0 for j in theirs if j.created_at >= month_start)
        return UsageSnapshot(
            active_jobs=active,
            reservations=reservations,
            scope_active_jobs=scope_active,
            scope_month_cost_usd=float(scope_cost),
            total_month_cost_usd=float(total_cost),
        )

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
        _aware(now)
        if to_state in FINAL_STATES:
            fields.setdefault("lease_owner", None)
            fields.setdefault("lease_expires_at", None)
        row = self._rows.get(job_id)
        if row is None or row.job.state not in from_states:
            return None
        current = row.job.state.value
        row.set(now, state=to_state, **fields)
        self._audit([job_id], current, to_state, now, detail)
        if ledger is not None:
            entries = [e for e in self._ledger if e.job_id == job_id]
            settled = any(e.kind in ("commit", "refund") for e in entries)
            for reserve in [e for e in entries if e.kind == "reserve"] if not settled else []:
                split = int(refund_seconds or 0) if ledger == "commit" else 0
                kept = replace(reserve, seconds=reserve.seconds - split, created_at=now)
                self._ledger.append(replace(kept, kind=ledger))
                if split:
                    self._ledger.append(replace(kept, kind="refund", seconds=split))
        return row.out()

    async def update_fields(
        self, job_id: int, in_states: Collection[JobState], *, now: datetime, **fields: Any
    ) -> Job | None:
        row = self._rows.get(job_id)
        if row is None or row.job.state not in in_states:
            return None
        row.set(_aware(now), **fields)
        return row.out()

    async def record_prepared(
        self, job_id: int, in_states: Collection[JobState], *, edit: Edit, now: datetime
    ) -> Job | None:
        row = self._rows.get(job_id)
        if row is None or row.job.state not in in_states:
            return None
        request = replace(row.job.request, edit=edit)
        row.job = replace(row.job, request=request, updated_at=_aware(now))
        return row.out()

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
        row = self._rows.get(job_id)
        if row is None or row.job.state not in in_states:
            return None
        request = replace(
            row.job.request, tags=tags, lyrics=lyrics, duration=duration, controls=controls
        )
        row.job = replace(row.job, request=request, updated_at=_aware(now))
        return row.out()

    async def merge_context(
        self, job_id: int, patch: Mapping[str, Any], now: datetime
    ) -> Job | None:
        row = self._rows.get(job_id)
        if row is None:
            return None
        context = {**row.job.destination.context, **copy.deepcopy(dict(patch))}
        row.job = replace(
            row.job, destination=replace(row.job.destination, context=context), updated_at=now
        )
        return row.out()

    # ------------------------------------------------------------ reads
    async def get(self, job_id: int) -> Job | None:
        row = self._rows.get(job_id) if 0 < job_id <= MAX_JOB_ID else None
        return row.out() if row is not None else None

    async def get_many(self, job_ids: Collection[int]) -> list[Job]:
        return [self._rows[i].out() for i in sorted(set(job_ids)) if i in self._rows]

    async def list_jobs(
        self,
        *,
        limit: int = 20,
        user_id: int | None = None,
        states: Collection[JobState] | None = None,
        newest_first: bool = True,
    ) -> list[Job]:
        rows = sorted(self._rows.values(), key=lambda r: r.job.id, reverse=newest_first)
        return [
            r.out()
            for r in rows
            if (user_id is None or r.job.user_id == user_id)
            and (states is None or r.job.state in states)
        ][:limit]

    async def page_of_jobs(
        self, user_id: int, *, states: Collection[JobState], offset: int, limit: int
    ) -> JobPage:
        rows = sorted(self._rows.values(), key=lambda r: r.job.id, reverse=True)
        mine = [r.out() for r in rows if r.job.user_id == user_id and r.job.state in states]
        start = max(offset, 0)
        return JobPage(mine[start : start + max(limit, 0)], len(mine))

    async def recent_runtimes(self, backend: str, limit: int = 50) -> list[tuple[int, float]]:
        rows = [
            r
            for r in sorted(self._rows.values(), key=lambda r: r.job.id, reverse=True)
            if r.job.backend == backend and r.remote_seconds is not None and r.job.state in DONE
        ][:limit]
        return [(r.job.request.duration, r.remote_seconds) for r in rows if r.remote_seconds]

    async def kept_audio(self) -> set[str]:
        active = [r.job for r in self._rows.values() if r.job.state in ACTIVE_STATES]
        paths = {j.audio_path for j in active} | {t.audio_path for j in active for t in j.takes}
        paths |= {j.request.edit.source_path for j in active if j.request.edit is not None}
        return {p for p in paths if p}

    # ------------------------------------------------------------ the fair queue
    def _fair_place(self, user_id: int, backend: str, where: Destination) -> tuple[int, int]:
        """As storage/jobs/queue.py's fair_place: (round, turn), the round after the user's
        latest song queued or in flight, never before the round being served; the turn is how
        many songs of the chat are queued in that round."""
        mine = [r for r in self._rows.values() if r.job.backend == backend]
        flying = [r.fair_round for r in mine if r.job.state in IN_FLIGHT_STATES]
        queued = [r for r in mine if r.job.state == JobState.QUEUED]
        serving = max(flying) if flying else min((r.fair_round for r in queued), default=0)
        latest = max(
            (
                r.fair_round
                for r in mine
                if r.job.user_id == user_id
                and (r.job.state == JobState.QUEUED or r.job.state in IN_FLIGHT_STATES)
            ),
            default=None,
        )
        round_ = fair_round(latest, serving)
        chat = (where.platform, where.chat_id)
        turn = sum(
            1
            for r in queued
            if r.fair_round == round_
            and (r.job.destination.platform, r.job.destination.chat_id) == chat
        )
        return round_, turn

    def _line(self, backend: str) -> list[int]:
        queued = [
            r
            for r in self._rows.values()
            if r.job.state == JobState.QUEUED and r.job.backend == backend
        ]
        queued.sort(key=lambda r: (r.fair_round, r.fair_served, r.chat_turn, r.job.id))
        return [r.job.id for r in queued]

    def _places(self, jobs: Collection[Job]) -> dict[JobId, int]:
        places: dict[JobId, int] = {}
        for backend in {j.backend for j in jobs if j.state == JobState.QUEUED}:
            line = {job_id: n for n, job_id in enumerate(self._line(backend), start=1)}
            places.update({j.id: line[j.id] for j in jobs if j.backend == backend and j.id in line})
        return places

    async def queue_order(self, backend: str, *, first: int | None = None) -> list[int]:
        line = self._line(backend)
        return line if first is None else line[:first]

    async def position(self, job: Job) -> int:
        return self._places([job]).get(job.id, 0)

    async def positions(self, jobs: Collection[Job]) -> dict[JobId, int]:
        # As the database: jobs the caller saw queued, placed if they are still queued.
        current = [
            self._rows[j.id].job for j in jobs if j.state == JobState.QUEUED and j.id in self._rows
        ]
        return self._places(current)

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
        _aware(now)
        in_flight = sum(
            1
            for r in self._rows.values()
            if r.job.backend == backend and r.job.state in IN_FLIGHT_STATES
        )
        slots = max_in_flight - in_flight
        if at_most is not None:
            slots = min(slots, at_most)
        if slots <= 0:
            return []
        chosen = [self._rows[job_id] for job_id in self._line(backend)[:slots]]
        for row in chosen:
            row.set(
                now,
                state=JobState.SUBMITTING,
                lease_owner=owner,
                lease_expires_at=lease_until,
                attempts=row.job.attempts + 1,
            )
        self._audit([r.job.id for r in chosen], JobState.QUEUED.value, JobState.SUBMITTING, now)
        users = {r.job.user_id for r in chosen}
        for user in self._users.values():
            if user.id in users:  # their next songs are ranked by it within their round
                user.last_served_at = now
        for user_id in users:  # as the database: their next song's mark becomes now
            following = [
                r
                for r in self._rows.values()
                if r.job.user_id == user_id
                and r.job.backend == backend
                and r.job.state == JobState.QUEUED
            ]
            if following:
                min(following, key=lambda r: r.job.id).fair_served = now.timestamp()
        return [r.out() for r in chosen]

    # ------------------------------------------------------------ leases
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
        def wanted(job: Job) -> bool:
            polled = job.backend == backend and job.state in IN_FLIGHT_STATES
            delivered = (
                job.state == JobState.SUCCEEDED and job.destination.platform in deliver_platforms
            )
            return (backend is not None and polled) or (bool(deliver_platforms) and delivered)

        adopted: list[Job] = []
        for row in sorted(self._rows.values(), key=lambda r: r.job.id):
            if len(adopted) == 500:
                break
            if row.lease_free(now, dead_owners) and wanted(row.job):
                if row.job.state not in FINAL_STATES:
                    row.lease_owner, row.lease_expires_at = owner, lease_until
                    adopted.append(row.out())
        return adopted

    async def live_owners(self, now: datetime) -> set[str]:
        return {
            r.lease_owner
            for r in self._rows.values()
            if r.lease_owner and r.lease_expires_at is not None and r.lease_expires_at >= now
        }

    async def renew_leases(self, owner: str, job_ids: Collection[int], until: datetime) -> set[int]:
        held = {i for i in job_ids if i in self._rows and self._rows[i].lease_owner == owner}
        for job_id in held:
            self._rows[job_id].lease_expires_at = until
        return held

    async def release(self, owner: str, job_ids: Collection[int]) -> None:
        for job_id in job_ids:
            row = self._rows.get(job_id)
            if row is not None and row.lease_owner == owner:
                row.lease_owner, row.lease_expires_at = None, None

    # ------------------------------------------------------------ the event feed
    def _audit(
        self,
        job_ids: list[int],
        from_state: str | None,
        to_state: JobState,
        now: datetime,
        detail: str | None = None,
    ) -> None:
        for job_id in job_ids:
            self._events.append(
                _Event(next(self._event_ids), job_id, now, from_state, to_state, detail)
            )

    async def last_event_id(self) -> int:
        return self._events[-1].id if self._events else 0

    async def events_after(
        self, event_id: int, *, platforms: Collection[str], limit: int = 200
    ) -> list[tuple[int, Job | None, JobState]]:
        found = [
            (e.id, self._rows[e.job_id].out(), e.to_state)
            for e in self._events
            if e.id > event_id and self._rows[e.job_id].job.destination.platform in platforms
        ]
        return list(found[:limit])

    async def prune_events(self, *, before: datetime, batch: int = 5000) -> int:
        # As the SQL store: oldest first, a batch at a time, stopping at a batch not wholly old.
        removed = 0
        while True:
            oldest = {e.id for e in self._events[:batch] if e.at < before}
            self._events = [e for e in self._events if e.id not in oldest]
            removed += len(oldest)
            if len(oldest) < batch:
                return removed

    async def events(self, job_id: int) -> list[tuple[str | None, str, str | None]]:
        return [
            (e.from_state, e.to_state.value, e.detail) for e in self._events if e.job_id == job_id
        ]

    # ------------------------------------------------------------ reports
    async def usage_report(
        self, *, since: datetime, platform: str | None = None, scope: str | None = None
    ) -> list[UsageRow]:
        by_user: dict[int, list[Job]] = {}
        for row in sorted(self._rows.values(), key=lambda r: r.job.id):
            job = row.job
            if job.created_at < since:
                continue
            if platform is not None and job.destination.platform != platform:
                continue
            if scope is not None and job.destination.scope != scope:
                continue
            by_user.setdefault(job.user_id, []).append(job)
        users: dict[int, _User] = {u.id: u for u in self._users.values()}
        report = [
            UsageRow(
                users[user_id].platform,
                users[user_id].platform_user_id,
                users[user_id].display_name,
                len(jobs),
                sum(j.request.duration * j.request.takes for j in jobs if j.state in DONE),
                float(sum(j.cost_usd or 0.0 for j in jobs)),
                float(sum(j.gpu_seconds or 0.0 for j in jobs)),
                max(j.created_at for j in jobs),
            )
            for user_id, jobs in by_user.items()
        ]
        return sorted(report, key=lambda r: -r.jobs)

    async def active_jobs(
        self, *, platform: str | None = None, scope: str | None = None
    ) -> list[Job]:
        return [
            r.out()
            for r in sorted(self._rows.values(), key=lambda r: r.job.id)
            if r.job.state in ACTIVE_STATES
            and (platform is None or r.job.destination.platform == platform)
            and (scope is None or r.job.destination.scope == scope)
        ][:500]

    async def active_counts(self) -> list[StateCount]:
        groups: dict[tuple[str, JobState], list[Job]] = {}
        for row in self._rows.values():
            if row.job.state in ACTIVE_STATES:
                groups.setdefault((row.job.backend, row.job.state), []).append(row.job)
        return [
            StateCount(backend, state, len(jobs), min(j.created_at for j in jobs))
            for (backend, state), jobs in groups.items()
        ]

    async def ledger_balance(self, user_id: int) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for entry in self._ledger:
            if entry.user_id == user_id:
                totals[entry.kind] += entry.seconds
        return dict(totals)


CHAT_RULE_FIELDS = frozenset(f.name for f in dataclasses.fields(ChatRules))


def _stored_rules(rules: ChatRules) -> ChatRules:
    """As the database gives rules back: lists as tuples, role quotas as str → int."""
    return replace(
        rules,
        role_quotas={str(k): int(v) for k, v in (rules.role_quotas or {}).items()},
        allowed_channels=tuple(rules.allowed_channels or ()),
        blocked_words=tuple(rules.blocked_words or ()),
    )


@dataclass
class MemoryRulesStore:
    """The RulesStore, as :class:`storage.rules.SqlRulesStore`."""

    _chats: dict[tuple[str, str], ChatRules] = field(default_factory=dict)
    # (platform, user, scope) → override; insertion order is the order they are listed in
    _users: dict[tuple[str, str, str], UserRules] = field(default_factory=dict)

    async def chat_rules(self, platform: str, scope_id: str) -> ChatRules | None:
        return self._chats.get((platform, scope_id))

    async def rules_for(
        self, platform: str, user_id: str, scope_id: str
    ) -> tuple[ChatRules | None, list[UserRules]]:
        return self._chats.get((platform, scope_id)), self._user_rules(platform, user_id, scope_id)

    async def update_chat_rules(
        self,
        platform: str,
        scope_id: str,
        changes: Mapping[str, Any] | Callable[[ChatRules], Mapping[str, Any]],
        now: datetime,
    ) -> ChatRules:
        current = self._chats.get((platform, scope_id), ChatRules())
        resolved = changes(current) if callable(changes) else changes
        unknown = set(resolved) - CHAT_RULE_FIELDS
        if unknown:
            raise ValueError(f"unknown chat setting(s): {', '.join(sorted(unknown))}")
        updated = _stored_rules(replace(current, **resolved))
        self._chats[(platform, scope_id)] = updated
        return updated

    async def user_rules(self, platform: str, user_id: str, scope_id: str) -> list[UserRules]:
        return self._user_rules(platform, user_id, scope_id)

    def _user_rules(self, platform: str, user_id: str, scope_id: str) -> list[UserRules]:
        return [
            rules
            for (p, u, s), rules in self._users.items()
            if p == platform and u == user_id and s in (scope_id, EVERYWHERE)
        ]

    async def set_user_rules(
        self,
        platform: str,
        user_id: str,
        scope_id: str,
        now: datetime,
        *,
        quota_seconds_per_day: int | None = None,
        blocked: bool = False,
        note: str | None = None,
        operator_quota_seconds_per_day: int | None = None,
    ) -> None:
        whole = {
            "quota_seconds_per_day": quota_seconds_per_day,
            "blocked": blocked,
            "note": note,
            "operator_quota_seconds_per_day": operator_quota_seconds_per_day,
        }
        await self.update_user_rules(platform, user_id, scope_id, lambda _: whole, now)

    async def update_user_rules(
        self,
        platform: str,
        user_id: str,
        scope_id: str,
        changes: Callable[[UserRules], Mapping[str, Any]],
        now: datetime,
    ) -> UserRules:
        key = (platform, user_id, scope_id)
        current = self._users.pop(key, None) or UserRules(scope_id)
        updated = replace(current, **changes(current))
        if (
            updated.quota_seconds_per_day is not None
            or updated.operator_quota_seconds_per_day is not None
            or updated.blocked
        ):
            self._users[key] = replace(updated, scope_id=scope_id)
        return updated


def _conforms(
    jobs: MemoryJobStore, rules: MemoryRulesStore
) -> tuple[WorkerStore, ServiceStore, Reports, RulesStore]:
    """Never called: mypy checks here that the memory stores implement the ports."""
    return jobs, jobs, jobs, rules
