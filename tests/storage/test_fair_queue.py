"""The fair queue's stored order (bot/scheduler.py) on both databases: the order a history of
songs queued, claimed, finished and handed back produces, and that claims and places read the
index instead of computing the order over everyone waiting."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, text

from bot import quotas
from bot.domain import Destination, GenerationRequest, JobState
from bot.scheduler import fair_round
from storage.db import create_engine, session_factory
from storage.jobs import Enqueued, NewJob, SqlJobStore, UserKey

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
POLICY = quotas.QuotaPolicy(seconds_per_day=quotas.UNLIMITED, max_active_jobs=500)
LEASE = NOW + timedelta(minutes=5)


async def _queue(store: SqlJobStore, user: str, chat: str = "g", at: datetime = NOW) -> int:
    outcome = await store.enqueue(
        NewJob(
            user=UserKey("telegram", user, user),
            request=GenerationRequest(tags="lo-fi", duration=10),
            destination=Destination("telegram", chat, user),
            backend="wavespeed",
        ),
        admit=lambda usage: quotas.admit(usage, 10, POLICY),
        now=at,
    )
    assert isinstance(outcome, Enqueued)
    return outcome.job.id


async def _claim(store: SqlJobStore, slots: int, at: datetime = NOW) -> list[int]:
    jobs = await store.claim_for_submit(
        "wavespeed", owner="w", max_in_flight=slots, lease_until=LEASE, now=at
    )
    return [job.id for job in jobs]


@dataclass
class Model:
    """The rule of bot/scheduler.py, kept by hand: what the store must agree with."""

    # id -> (round, served mark, turn, id, user, chat): served in that order
    queued: dict[int, tuple[int, int, int, int, str, str]] = field(default_factory=dict)
    flying: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (round, user)
    kept: dict[int, tuple[int, int, int, int, str, str]] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)  # user -> claimed at (µs)

    def order(self) -> list[int]:
        return [key[3] for key in sorted(self.queued.values())]

    def serving(self) -> int:
        if self.flying:
            return max(r for r, _ in self.flying.values())
        return min((key[0] for key in self.queued.values()), default=0)

    def add(self, job_id: int, user: str, chat: str) -> None:
        mine = [k[0] for k in self.queued.values() if k[4] == user]
        mine += [r for r, u in self.flying.values() if u == user]
        round_ = fair_round(max(mine, default=None), self.serving())
        turn = sum(1 for k in self.queued.values() if k[0] == round_ and k[5] == chat)
        self.queued[job_id] = (round_, self.served.get(user, 0), turn, job_id, user, chat)

    def claim(self, slots: int, at: datetime) -> list[int]:
        taken = self.order()[: max(0, slots - len(self.flying))]
        for job_id in taken:
            key = self.kept[job_id] = self.queued.pop(job_id)
            self.flying[job_id] = (key[0], key[4])
            self.served[key[4]] = mark = int(at.timestamp() * 1_000_000)
            theirs = [k for k in self.queued.values() if k[4] == key[4]]
            if theirs:  # their next song's mark becomes the moment they were served
                following = min(theirs, key=lambda k: k[3])
                self.queued[following[3]] = (following[0], mark, *following[2:])
        return taken


async def test_a_history_of_songs_is_served_in_the_stored_fair_order(store: SqlJobStore) -> None:
    # Users in three chats queue songs while others are claimed, finish, are cancelled or
    # handed back (a refused submit): after every step the store's order and places are the
    # rule's, and what is handed back keeps its place.
    rng = random.Random(23)
    model = Model()
    for step in range(120):
        roll = rng.random()
        if roll < 0.55 or not model.queued:
            user, chat = f"u{rng.randrange(8)}", f"chat{rng.randrange(3)}"
            model.add(await _queue(store, user, chat), user, chat)
        elif roll < 0.7:
            slots, at = len(model.flying) + rng.randrange(1, 4), NOW + timedelta(seconds=step)
            assert await _claim(store, slots, at) == model.claim(slots, at)
        elif roll < 0.8 and model.flying:
            job_id = rng.choice(sorted(model.flying))
            del model.flying[job_id]
            await store.transition(job_id, {JobState.SUBMITTING}, JobState.FAILED, now=NOW)
        elif roll < 0.9 and model.flying:
            job_id = rng.choice(sorted(model.flying))
            del model.flying[job_id]
            model.queued[job_id] = model.kept[job_id]
            await store.transition(job_id, {JobState.SUBMITTING}, JobState.QUEUED, now=NOW)
        else:
            job_id = rng.choice(sorted(model.queued))
            del model.queued[job_id]
            await store.transition(job_id, {JobState.QUEUED}, JobState.CANCELLED, now=NOW)
        if step % 10 == 9:
            expected = model.order()
            assert await store.queue_order("wavespeed") == expected
            assert await store.queue_order("wavespeed", first=3) == expected[:3]
            places = await store.positions(await store.get_many(expected))
            assert places == {job_id: n for n, job_id in enumerate(expected, start=1)}


async def test_a_newcomer_waits_only_for_the_round_being_served(store: SqlJobStore) -> None:
    # A flood of three, one of them upstream: a newcomer goes before the flood's next song,
    # and someone whose song just finished queues at the back of the current round, not
    # ahead of people who waited.
    flood = [await _queue(store, "flooder") for _ in range(3)]
    assert await _claim(store, 1) == flood[:1]
    newcomer = await _queue(store, "newcomer")
    assert await store.queue_order("wavespeed") == [newcomer, *flood[1:]]
    await store.transition(flood[0], {JobState.SUBMITTING}, JobState.FAILED, now=NOW)
    assert await _claim(store, 1) == [newcomer]
    again = await _queue(store, "newcomer")  # their first song is upstream: the next round
    assert await store.queue_order("wavespeed") == [flood[1], again, flood[2]]


async def test_claims_and_places_read_the_index_not_every_waiting_user(
    store: SqlJobStore, database_url: str
) -> None:
    # With many users waiting, the statements a claim, the head of the line and a place run
    # use `ix_jobs_fair` and never group or join over the waiting users (the order used to
    # be computed per user: ~50 µs each on every claim, docs/performance.md).
    for n in range(30):
        await _queue(store, f"u{n}", chat=f"chat{n % 4}")
    last = await _queue(store, "u0")
    engine = create_engine(database_url)
    seen: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    try:
        watched = SqlJobStore(session_factory(engine))
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        assert await watched.position((await watched.get_many([last]))[0]) == 31
        assert len(await watched.queue_order("wavespeed", first=5)) == 5
        assert len(await _claim(watched, 2)) == 2
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
        queue_reads = [s for s in seen if "jobs.fair_round" in s or "FROM jobs" in s]
        assert queue_reads
        for statement in seen:
            assert "users.id =" not in statement and "RECURSIVE" not in statement.upper()
            # Grouping only the jobs asked about (the backends of /queue's songs).
            assert "GROUP BY" not in statement or "jobs.id IN" in statement, statement
            assert "PARTITION BY" not in statement, statement
        if database_url.startswith("sqlite"):
            async with engine.connect() as connection:
                for statement in (
                    "SELECT id FROM jobs WHERE state = 'queued' AND backend = 'wavespeed'"
                    " ORDER BY fair_round, fair_served, chat_turn, id LIMIT 2",
                    "SELECT id, row_number() OVER (ORDER BY fair_round, fair_served, chat_turn,"
                    " id) FROM jobs WHERE state = 'queued' AND backend = 'wavespeed'"
                    " AND fair_round <= 1",
                ):
                    plan = " ".join(
                        str(row[-1])
                        for row in await connection.execute(text("EXPLAIN QUERY PLAN " + statement))
                    )
                    assert "ix_jobs_fair" in plan and "TEMP B-TREE" not in plan, plan
    finally:
        await engine.dispose()
