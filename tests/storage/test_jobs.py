"""The job store on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, text

from bot import quotas
from bot.domain import Destination, GenerationRequest, JobState
from storage.db import create_engine, session_factory
from storage.jobs import Enqueued, NewJob, SqlJobStore, UserKey

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
POLICY = quotas.QuotaPolicy(seconds_per_day=100, max_active_jobs=3)


def _admit(duration: int):  # type: ignore[no-untyped-def]
    return lambda usage: quotas.admit(usage, duration, POLICY)


async def _enqueue(
    store: SqlJobStore, user: str, duration: int = 30, key: str | None = None, chat: str = "c1"
) -> object:
    return await store.enqueue(
        NewJob(
            user=UserKey("telegram", user, user),
            request=GenerationRequest(tags="lo-fi", duration=duration),
            destination=Destination("telegram", chat, user),
            backend="wavespeed",
            idempotency_key=key,
        ),
        admit=_admit(duration),
        now=NOW,
    )


async def test_a_redelivered_event_does_not_queue_a_second_job(store: SqlJobStore) -> None:
    first = await _enqueue(store, "u1", key="telegram:update:1")
    again = await _enqueue(store, "u1", key="telegram:update:1")
    assert isinstance(first, Enqueued) and first.created
    assert isinstance(again, Enqueued) and not again.created
    assert again.job.id == first.job.id
    assert await store.ledger_balance(first.job.user_id) == {"reserve": 30}


async def test_over_quota_is_refused_with_when_it_frees_up(store: SqlJobStore) -> None:
    assert isinstance(await _enqueue(store, "u1", 60), Enqueued)
    refused = await _enqueue(store, "u1", 60)
    assert isinstance(refused, quotas.Refusal)
    assert refused.code == "quota"
    assert "40 s" in refused.message
    assert refused.frees_at == NOW + timedelta(hours=24)


async def test_concurrent_requests_never_exceed_the_quota(store: SqlJobStore) -> None:
    results = await asyncio.gather(*(_enqueue(store, "u1", 30) for _ in range(8)))
    accepted = [r for r in results if isinstance(r, Enqueued)]
    # 3 active jobs at most, and 3 × 30 s fits the 100 s quota.
    assert len(accepted) == 3
    usage = await store.usage(accepted[0].job.user_id, NOW)
    assert usage.used_seconds == 90


async def test_failing_twice_refunds_once(store: SqlJobStore) -> None:
    queued = await _enqueue(store, "u1", 40)
    assert isinstance(queued, Enqueued)
    job_id = queued.job.id
    first = await store.transition(
        job_id, {JobState.QUEUED}, JobState.FAILED, now=NOW, ledger="refund", error_code="x"
    )
    second = await store.transition(
        job_id, {JobState.QUEUED, JobState.FAILED}, JobState.FAILED, now=NOW, ledger="refund"
    )
    cancel = await store.transition(
        job_id, {JobState.QUEUED}, JobState.CANCELLED, now=NOW, ledger="refund"
    )
    assert first is not None and first.state == JobState.FAILED
    assert second is not None  # same state again is allowed, but no second refund row
    assert cancel is None
    assert await store.ledger_balance(queued.job.user_id) == {"reserve": 40, "refund": 40}
    assert (await store.usage(queued.job.user_id, NOW)).used_seconds == 0


async def test_claims_are_fair_and_respect_the_concurrency_limit(store: SqlJobStore) -> None:
    for _ in range(3):
        await _enqueue(store, "flooder", 10)
    quiet = await _enqueue(store, "quiet", 10)
    assert isinstance(quiet, Enqueued)
    lease = NOW + timedelta(seconds=30)
    claimed = await store.claim_for_submit(
        "wavespeed", owner="w1", max_in_flight=2, lease_until=lease, now=NOW
    )
    assert [j.destination.user_id for j in claimed] == ["flooder", "quiet"]
    assert all(j.state == JobState.SUBMITTING for j in claimed)
    # Both slots are taken: nothing more until one finishes.
    assert (
        await store.claim_for_submit(
            "wavespeed", owner="w1", max_in_flight=2, lease_until=lease, now=NOW
        )
        == []
    )


async def test_two_claimers_never_take_the_same_job(store: SqlJobStore) -> None:
    for n in range(12):
        await _enqueue(store, f"user{n}", 10)
    lease = NOW + timedelta(seconds=30)
    batches = await asyncio.gather(
        *(
            store.claim_for_submit(
                "wavespeed", owner=f"w{n}", max_in_flight=12, lease_until=lease, now=NOW
            )
            for n in range(4)
        )
    )
    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == len(set(ids)) == 12


async def test_expired_leases_are_adopted_live_ones_are_not(store: SqlJobStore) -> None:
    for n in range(2):
        await _enqueue(store, f"user{n}", 10)
    claimed = await store.claim_for_submit(
        "wavespeed", owner="dead", max_in_flight=2, lease_until=NOW + timedelta(seconds=5), now=NOW
    )
    for job in claimed:
        await store.transition(
            job.id, {JobState.SUBMITTING}, JobState.SUBMITTED, now=NOW, remote_id=f"r{job.id}"
        )
    kwargs = dict(backend="wavespeed", deliver_platforms=(), lease_until=NOW + timedelta(minutes=1))
    assert await store.adopt(owner="new", now=NOW, **kwargs) == []  # type: ignore[arg-type]
    later = NOW + timedelta(seconds=6)
    adopted = await store.adopt(owner="new", now=later, **kwargs)  # type: ignore[arg-type]
    assert sorted(j.remote_id or "" for j in adopted) == sorted(f"r{j.id}" for j in claimed)
    # The old owner can no longer renew what it lost.
    assert await store.renew_leases("dead", [j.id for j in claimed], later) == set()


async def test_positions_and_the_head_of_the_queue_match_the_whole_fair_order(
    store: SqlJobStore,
) -> None:
    # Users with several songs, in two chats, some already served: the cheap queries (each
    # user's first few jobs only) must agree with the order computed over the whole queue.
    rng = random.Random(7)
    policy = quotas.QuotaPolicy(seconds_per_day=quotas.UNLIMITED, max_active_jobs=50)
    for n in range(40):
        user = f"u{rng.randrange(6)}"
        await store.enqueue(
            NewJob(
                user=UserKey("telegram", user, user),
                request=GenerationRequest(tags="lo-fi", duration=10),
                destination=Destination("telegram", f"chat{n % 2}", user),
                backend="wavespeed",
            ),
            admit=lambda usage: quotas.admit(usage, 10, policy),
            now=NOW + timedelta(seconds=n),
        )
    lease = NOW + timedelta(minutes=1)
    for slots in range(1, 6):  # claimed one by one, at different times: served at different times
        served = NOW + timedelta(seconds=rng.randrange(100))
        for job in await store.claim_for_submit(
            "wavespeed", owner="w", max_in_flight=slots, lease_until=lease, now=served
        ):
            await store.transition(job.id, {JobState.SUBMITTING}, JobState.SUBMITTED, now=served)
    whole = await store.queue_order("wavespeed")
    assert len(whole) == 35
    for first in (1, 3, 10, 50):
        assert await store.queue_order("wavespeed", first=first) == whole[:first]
    for job in await store.get_many(whole):
        assert await store.position(job) == whole.index(job.id) + 1
    claimed = await store.claim_for_submit(
        "wavespeed", owner="w", max_in_flight=8, lease_until=lease, now=NOW
    )
    assert [job.id for job in claimed] == whole[:3]


async def test_concurrent_requests_never_exceed_a_chats_limit(store: SqlJobStore) -> None:
    # Different users, one chat: the chat's limit must hold even though each user is alone.
    policy = quotas.QuotaPolicy(
        seconds_per_day=quotas.UNLIMITED, max_active_jobs=5, max_active_jobs_per_scope=3
    )

    async def ask(n: int) -> object:
        return await store.enqueue(
            NewJob(
                user=UserKey("telegram", f"member{n}"),
                request=GenerationRequest(tags="lo-fi", duration=10),
                destination=Destination("telegram", "group", f"member{n}"),
                backend="wavespeed",
            ),
            admit=lambda usage: quotas.admit(usage, 10, policy),
            needs=quotas.usage_needs(policy),
            now=NOW,
        )

    outcomes = await asyncio.gather(*(ask(n) for n in range(10)))
    accepted = [o for o in outcomes if isinstance(o, Enqueued)]
    assert len(accepted) == 3
    assert all(
        isinstance(o, quotas.Refusal) and o.code == "scope_busy"
        for o in outcomes
        if not isinstance(o, Enqueued)
    )


async def _ask_with_cost(
    store: SqlJobStore, policy: quotas.QuotaPolicy, user: str, chat: str
) -> object:
    return await store.enqueue(
        NewJob(
            user=UserKey("telegram", user),
            request=GenerationRequest(tags="lo-fi", duration=10),
            destination=Destination("telegram", chat, user),
            backend="wavespeed",
            cost_usd=policy.job_cost_usd,
        ),
        admit=lambda usage: quotas.admit(usage, 10, policy),
        needs=quotas.usage_needs(policy),
        now=NOW,
    )


async def test_thirty_chats_at_once_never_exceed_the_monthly_budget(store: SqlJobStore) -> None:
    # $0.30 fits three songs of $0.10 exactly (and 0.1 + 0.1 + 0.1 > 0.3 in floating point).
    policy = quotas.QuotaPolicy(
        seconds_per_day=quotas.UNLIMITED,
        max_active_jobs=5,
        total_budget_usd=0.3,
        job_cost_usd=0.1,
    )
    outcomes = await asyncio.gather(
        *(_ask_with_cost(store, policy, f"user{n}", f"chat{n}") for n in range(30))
    )
    accepted = [o for o in outcomes if isinstance(o, Enqueued)]
    refused = [o for o in outcomes if not isinstance(o, Enqueued)]
    assert len(accepted) == 3
    assert all(isinstance(o, quotas.Refusal) and o.code == "budget" for o in refused)


async def test_thirty_members_at_once_never_exceed_a_chats_budget(store: SqlJobStore) -> None:
    policy = quotas.QuotaPolicy(
        seconds_per_day=quotas.UNLIMITED,
        max_active_jobs=5,
        scope_budget_usd=0.3,
        job_cost_usd=0.1,
    )
    outcomes = await asyncio.gather(
        *(_ask_with_cost(store, policy, f"member{n}", "group") for n in range(30))
    )
    assert sum(isinstance(o, Enqueued) for o in outcomes) == 3


async def test_job_ids_past_32_bits_work_and_ids_out_of_range_are_not_found(
    store: SqlJobStore, database_url: str
) -> None:
    first = await _enqueue(store, "u1", 10)
    assert isinstance(first, Enqueued)
    # The next job gets an id past 2**31 - 1 (as after three billion songs).
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT setval(pg_get_serial_sequence('jobs', 'id'), 3000000000)")
                )
            else:  # SQLite numbers a row after the largest id so far
                await connection.execute(
                    text(
                        "INSERT INTO jobs (id, user_id, platform, chat_id, scope_id,"
                        " platform_user_id, context, tags, lyrics, duration, seed, state,"
                        " backend, attempts, nsfw, created_at, updated_at) VALUES (3000000000,"
                        " :user, 'telegram', 'c1', 'c1', 'u1', '{}', 'lo-fi', '', 10, -1,"
                        " 'cancelled', 'wavespeed', 0, false, :now, :now)"
                    ),
                    {"user": first.job.user_id, "now": NOW},
                )
    finally:
        await engine.dispose()
    second = await _enqueue(store, "u2", 10)
    assert isinstance(second, Enqueued) and second.job.id == 3_000_000_001
    done = await store.transition(
        second.job.id, {JobState.QUEUED}, JobState.CANCELLED, now=NOW, ledger="refund"
    )
    assert done is not None
    assert await store.ledger_balance(second.job.user_id) == {"reserve": 10, "refund": 10}
    assert [e[1] for e in await store.events(second.job.id)] == ["queued", "cancelled"]
    for missing in (3_000_000_002, 2**63, 10**19, 10**30, 0, -1):
        assert await store.get(missing) is None
        assert await store.get_many([missing]) == []
        assert await store.merge_context(missing, {"x": 1}, NOW) is None


async def test_old_job_events_are_pruned_and_jobs_and_the_ledger_kept(store: SqlJobStore) -> None:
    old = await _enqueue(store, "u1", 10)
    assert isinstance(old, Enqueued)
    await store.transition(
        old.job.id, {JobState.QUEUED}, JobState.CANCELLED, now=NOW, ledger="refund"
    )
    later = NOW + timedelta(days=31)
    recent = await store.enqueue(
        NewJob(
            user=UserKey("telegram", "u2"),
            request=GenerationRequest(tags="lo-fi", duration=10),
            destination=Destination("telegram", "c1", "u2"),
            backend="wavespeed",
        ),
        admit=_admit(10),
        now=later,
    )
    assert isinstance(recent, Enqueued)

    removed = await store.prune_events(before=later - timedelta(days=30), batch=1)

    assert removed == 2
    assert await store.events(old.job.id) == []
    assert [e[1] for e in await store.events(recent.job.id)] == ["queued"]
    kept = await store.get(old.job.id)
    assert kept is not None and kept.state == JobState.CANCELLED
    assert await store.ledger_balance(old.job.user_id) == {"reserve": 10, "refund": 10}
    assert await store.prune_events(before=later - timedelta(days=30)) == 0


async def test_a_chat_s_songs_in_the_works_are_counted_from_the_index_not_its_history(
    store: SqlJobStore, database_url: str
) -> None:
    # A chat's limit of songs in the works (without a chat budget) is read for every new song:
    # from the index entries of its songs in the works, however long the chat's history.
    policy = quotas.QuotaPolicy(
        seconds_per_day=quotas.UNLIMITED, max_active_jobs=10, max_active_jobs_per_scope=2
    )

    async def ask(on: SqlJobStore, user: str) -> object:
        return await on.enqueue(
            NewJob(
                user=UserKey("telegram", user, user),
                request=GenerationRequest(tags="lo-fi", duration=30),
                destination=Destination("telegram", "busy", user),
                backend="wavespeed",
            ),
            admit=lambda usage: quotas.admit(usage, 30, policy),
            now=NOW,
            needs=quotas.usage_needs(policy),
        )

    history = [await ask(store, f"past{n}") for n in range(2)]
    for done in history:  # the chat's past songs, over
        assert isinstance(done, Enqueued)
        await store.transition(done.job.id, {JobState.QUEUED}, JobState.CANCELLED, now=NOW)
    first, second = await ask(store, "ann"), await ask(store, "bob")
    assert isinstance(first, Enqueued) and isinstance(second, Enqueued)

    engine = create_engine(database_url)
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    try:
        watched = SqlJobStore(session_factory(engine))
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        refused = await ask(watched, "cy")
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
        assert isinstance(refused, quotas.Refusal) and refused.code == "scope_busy"
        await store.transition(first.job.id, {JobState.QUEUED}, JobState.CANCELLED, now=NOW)
        assert isinstance(await ask(store, "cy"), Enqueued)  # one done: room again

        [(counted, parameters)] = [(s, p) for s, p in seen if "scope_id" in s]
        assert "cost_usd" not in counted  # no budget: the chat's spending is not read
        if database_url.startswith("sqlite"):
            async with engine.connect() as connection:
                plan = " ".join(
                    str(row[-1])
                    for row in await connection.exec_driver_sql(
                        "EXPLAIN QUERY PLAN " + counted, parameters
                    )
                )
            assert "ix_jobs_scope_state (platform=? AND scope_id=? AND state=?)" in plan, plan
    finally:
        await engine.dispose()
