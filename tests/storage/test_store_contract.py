"""One contract for every implementation of the core's stores (bot/stores.py): the same
assertions against the in-memory store of the test kit (tests/kit/memory_store.py), a real
SQLite file and, when CI provides one, PostgreSQL. Service tests that run on the memory
store lean on what this module proves it shares with the database."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import quotas
from bot.domain import (
    EVERYWHERE,
    ChatRules,
    Controls,
    Destination,
    Edit,
    GenerationRequest,
    JobState,
    Take,
    TakeState,
    Task,
    UserRules,
)
from bot.stores import Enqueued, NewJob, StateCount, UsageRow, UserKey
from storage.db import create_engine, read_session_factory, session_factory, upgrade
from storage.jobs import SqlJobStore
from storage.rules import SqlRulesStore
from tests.conftest import _create_pg_database, _drop_pg_database
from tests.kit.memory_store import MemoryJobStore, MemoryRulesStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
POLICY = quotas.QuotaPolicy(seconds_per_day=100, max_active_jobs=3)
OPEN = quotas.QuotaPolicy(seconds_per_day=quotas.UNLIMITED, max_active_jobs=500)
LEASE = NOW + timedelta(seconds=30)


@dataclass
class Stores:
    jobs: Any  # MemoryJobStore | SqlJobStore: both have the ports' methods and the audit helpers
    rules: Any


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    if request.param == "memory":
        yield Stores(MemoryJobStore(), MemoryRulesStore())
        return
    admin = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'acejam.db'}"
    else:
        url, admin, name = await _create_pg_database()
    engine = create_engine(url)
    try:
        await upgrade(engine)
        sessions, reads = session_factory(engine), read_session_factory(engine)
        yield Stores(SqlJobStore(sessions, reads), SqlRulesStore(sessions, reads))
    finally:
        await engine.dispose()
        if admin is not None:
            await _drop_pg_database(admin, name)


async def _enqueue(
    store: Any,
    user: str,
    duration: int = 30,
    *,
    key: str | None = None,
    chat: str = "c1",
    platform: str = "telegram",
    scope: str | None = None,
    policy: quotas.QuotaPolicy = POLICY,
    now: datetime = NOW,
    cost: float | None = None,
    takes: int = 1,
) -> Any:
    return await store.enqueue(
        NewJob(
            user=UserKey(platform, user, f"name {user}"),
            request=GenerationRequest(tags="lo-fi", duration=duration, takes=takes),
            destination=Destination(platform, chat, user, {"status": 1}, scope),
            backend="wavespeed",
            idempotency_key=key,
            cost_usd=cost,
        ),
        admit=lambda usage: quotas.admit(usage, duration * takes, policy),
        now=now,
    )


async def _queued(store: Any, *args: Any, **kwargs: Any) -> Enqueued:
    result = await _enqueue(store, *args, **kwargs)
    assert isinstance(result, Enqueued), result
    return result


# ---------------------------------------------------------------- JobStore
async def test_enqueue_creates_users_reserves_and_dedups_by_key(stores: Stores) -> None:
    store = stores.jobs
    assert await store.find_user("telegram", "u1") is None
    first = await _queued(store, "u1", key="k1", chat="c9")
    again = await _queued(store, "u1", key="k1")
    assert first.created and not again.created and first.position == again.position == 1
    assert again.job == first.job
    job = first.job
    assert await store.find_user("telegram", "u1") == job.user_id
    assert job.state == JobState.QUEUED and job.attempts == 0 and job.backend == "wavespeed"
    assert job.destination == Destination("telegram", "c9", "u1", {"status": 1}, "c9")
    assert job.created_at == job.updated_at == NOW
    assert await store.ledger_balance(job.user_id) == {"reserve": 30}
    assert await store.events(job.id) == [(None, "queued", None)]
    assert await store.get(job.id) == job


async def test_quota_checks_on_insert_and_concurrent_requests(stores: Stores) -> None:
    store = stores.jobs
    await _queued(store, "u1", 60)
    refused = await _enqueue(store, "u1", 60)
    assert isinstance(refused, quotas.Refusal) and refused.code == "quota"
    assert refused.frees_at == NOW + timedelta(hours=24)
    # A refused request still made the user known (its row is written first).
    results = await asyncio.gather(*(_enqueue(store, "u2", 30) for _ in range(8)))
    accepted = [r for r in results if isinstance(r, Enqueued)]
    assert len(accepted) == 3
    usage = await store.usage(accepted[0].job.user_id, NOW)
    assert usage.used_seconds == 90 and usage.active_jobs == 3
    later = await store.usage(accepted[0].job.user_id, NOW + timedelta(hours=25))
    assert later.reservations == () and later.active_jobs == 3


async def test_usage_counts_the_chat_and_the_months_cost(stores: Stores) -> None:
    store = stores.jobs
    await _queued(store, "a", 10, chat="x", scope="guild", platform="discord", cost=1.5)
    await _queued(store, "b", 10, chat="y", scope="guild", platform="discord", cost=2.0)
    old = NOW - timedelta(days=40)
    await _queued(store, "b", 10, chat="y", scope="guild", platform="discord", cost=7.0, now=old)
    other = await _queued(store, "c", 10, chat="z", platform="discord", cost=0.25)
    usage = await store.usage(other.job.user_id, NOW, platform="discord", scope="guild")
    assert usage.active_jobs == 1
    assert usage.scope_active_jobs == 3
    assert usage.scope_month_cost_usd == pytest.approx(3.5)
    assert usage.total_month_cost_usd == pytest.approx(3.75)
    budget = quotas.QuotaPolicy(
        seconds_per_day=1000, max_active_jobs=9, total_budget_usd=4.0, job_cost_usd=0.5
    )
    refused = await _enqueue(store, "d", 10, policy=budget, cost=0.5)
    assert isinstance(refused, quotas.Refusal)


async def test_transitions_are_compare_and_set_and_settle_the_ledger_once(
    stores: Stores,
) -> None:
    store = stores.jobs
    job = (await _queued(store, "u1", 40)).job
    assert await store.transition(job.id, {JobState.RUNNING}, JobState.FAILED, now=NOW) is None
    later = NOW + timedelta(seconds=5)
    failed = await store.transition(
        job.id,
        {JobState.QUEUED, JobState.SUBMITTING},
        JobState.FAILED,
        now=later,
        ledger="refund",
        detail="why",
        error_code="x",
    )
    assert failed is not None and failed.state == JobState.FAILED and failed.error_code == "x"
    assert failed.updated_at == later
    again = await store.transition(
        job.id, {JobState.FAILED}, JobState.FAILED, now=later, ledger="commit"
    )
    assert again is not None
    assert await store.ledger_balance(job.user_id) == {"reserve": 40, "refund": 40}
    assert (await store.usage(job.user_id, later)).used_seconds == 0
    assert await store.events(job.id) == [
        (None, "queued", None),
        ("queued", "failed", "why"),
        ("failed", "failed", None),
    ]
    assert await store.update_fields(job.id, {JobState.QUEUED}, now=later, progress=0.5) is None
    updated = await store.update_fields(job.id, {JobState.FAILED}, now=later, progress=0.5)
    assert updated is not None and updated.progress == 0.5
    merged = await store.merge_context(job.id, {"extra": [1, 2]}, later)
    assert merged is not None and merged.destination.context == {"status": 1, "extra": [1, 2]}
    merged.destination.context["mutated"] = True  # a returned job is a copy
    stored = await store.get(job.id)
    assert stored is not None and stored.destination.context == {"status": 1, "extra": [1, 2]}


async def test_takes_are_stored_with_their_job_and_a_failed_one_is_refunded_alone(
    stores: Stores,
) -> None:
    store = stores.jobs
    one = (await _queued(store, "u1", 10)).job
    assert one.takes == () and one.kept_take is None
    job = (await _queued(store, "u1", 20, takes=3)).job
    assert job.request.takes == 3 and job.takes == ()
    assert await store.ledger_balance(job.user_id) == {"reserve": 10 + 60}
    takes = (
        Take(1, TakeState.SUBMITTED, seed=7, remote_id="r-1"),
        Take(2, TakeState.PENDING, seed=8),
        Take(3, TakeState.PENDING, seed=9),
    )
    submitted = await store.transition(
        job.id, {JobState.QUEUED}, JobState.SUBMITTED, now=NOW, remote_id="r-1", takes=takes
    )
    assert submitted is not None and submitted.takes == takes
    ready = (
        Take(1, TakeState.READY, 7, "/a/1-1.mp3", "mp3", 20.0, remote_id="r-1"),
        Take(2, TakeState.FAILED, 8, error_code="failed", remote_id="r-2"),
        Take(3, TakeState.READY, 9, "/a/1-3.mp3", "mp3", 19.5, remote_id="r-3"),
    )
    updated = await store.update_fields(job.id, {JobState.SUBMITTED}, now=NOW, takes=ready)
    assert updated is not None and updated.takes == ready
    kept = await store.update_fields(job.id, {JobState.SUBMITTED}, now=NOW, kept_take=3)
    assert kept is not None and kept.kept_take == 3 and kept.takes == ready
    assert (await store.usage(job.user_id, NOW)).used_seconds == 70
    delivered = await store.transition(
        job.id,
        {JobState.SUBMITTED},
        JobState.DELIVERED,
        now=NOW,
        ledger="commit",
        refund_seconds=20,
    )
    assert delivered is not None and delivered.takes == ready and delivered.kept_take == 3
    assert await store.ledger_balance(job.user_id) == {"reserve": 70, "commit": 40, "refund": 20}
    assert (await store.usage(job.user_id, NOW)).used_seconds == 10 + 40
    # Settled once: neither a second split nor a refund changes it.
    for ledger, seconds in (("commit", 20), ("refund", 0)):
        await store.transition(
            job.id,
            {JobState.DELIVERED},
            JobState.DELIVERED,
            now=NOW,
            ledger=ledger,
            refund_seconds=seconds,
        )
    assert await store.ledger_balance(job.user_id) == {"reserve": 70, "commit": 40, "refund": 20}
    stored = await store.get(job.id)
    assert stored is not None and stored.takes == ready and stored.kept_take == 3
    # Until they are delivered, every take's file is kept from the retention sweep.
    other = (await _queued(store, "u2", 10, takes=2)).job
    await store.update_fields(other.id, {JobState.QUEUED}, now=NOW, takes=ready[::2])
    assert await store.kept_audio() == {"/a/1-1.mp3", "/a/1-3.mp3"}


async def test_an_edit_is_stored_with_its_task_and_source(stores: Stores) -> None:
    store = stores.jobs
    song = (await _queued(store, "u1", 10)).job
    assert song.request.edit is None and song.request.task == Task.SONG
    edits = (
        Edit(Task.EXTEND, "/data/sources/tg-1.mp3", 61.25, seconds=30, at_start=True),
        Edit(Task.REMIX, "/data/sources/tg-2.ogg", 12.5, own_audio=True, strength=0.8),
        Edit(Task.REPAINT, "/data/sources/job-3.flac", 90.0, start=65.0, end=80.5),
    )
    for edit in edits:
        enqueued = await store.enqueue(
            NewJob(
                user=UserKey("telegram", "u1", "name u1"),
                request=GenerationRequest(
                    tags="jazz", lyrics="[Verse]\nla", duration=30, edit=edit
                ),
                destination=Destination("telegram", "c1", "u1"),
                backend="acestep",
                parent_id=song.id,
            ),
            admit=lambda usage: None,
            now=NOW,
        )
        assert isinstance(enqueued, Enqueued)
        stored = await store.get(enqueued.job.id)
        assert stored is not None
        for job in (enqueued.job, stored):
            assert job.request.edit == edit and job.request.task == edit.task
            assert job.parent_id == song.id
        moved = await store.transition(stored.id, {JobState.QUEUED}, JobState.SUBMITTED, now=NOW)
        assert moved is not None and moved.request.edit == edit
    # A source is kept from the retention sweep until its job ends.
    assert await store.kept_audio() == {e.source_path for e in edits}
    ended = (await store.list_jobs(states={JobState.SUBMITTED}, newest_first=False))[0]
    await store.transition(ended.id, {JobState.SUBMITTED}, JobState.FAILED, now=NOW)
    assert await store.kept_audio() == {e.source_path for e in edits[1:]}


async def test_an_uploaded_source_is_recorded_while_the_job_is_submitting(stores: Stores) -> None:
    store = stores.jobs
    edit = Edit(Task.EXTEND, "/data/sources/tg-1.mp3", 20.0, own_audio=True, seconds=10)
    request = GenerationRequest(tags="jazz", duration=10, edit=edit)
    enqueued = await store.enqueue(
        NewJob(
            user=UserKey("telegram", "u1", "name u1"),
            request=request,
            destination=Destination("telegram", "c1", "u1"),
            backend="wavespeed",
        ),
        admit=lambda usage: None,
        now=NOW,
    )
    assert isinstance(enqueued, Enqueued)
    job_id = enqueued.job.id
    uploaded = replace(edit, uploaded_url="https://cdn.example/media/1/source.mp3")
    # Only while it is being submitted: a cancelled job keeps what it had.
    assert (
        await store.record_prepared(job_id, {JobState.SUBMITTING}, edit=uploaded, now=NOW) is None
    )
    await store.transition(job_id, {JobState.QUEUED}, JobState.SUBMITTING, now=NOW)
    recorded = await store.record_prepared(job_id, {JobState.SUBMITTING}, edit=uploaded, now=NOW)
    stored = await store.get(job_id)
    assert recorded is not None and stored is not None
    assert recorded.request.edit == stored.request.edit == uploaded
    assert stored.state == JobState.SUBMITTING and stored.request.tags == "jazz"


async def test_what_a_language_model_wrote_becomes_the_jobs_request(stores: Stores) -> None:
    store = stores.jobs
    job = (await _queued(store, "u1", 40)).job
    written = {
        "tags": "melancholic fado, portuguese guitar",
        "lyrics": "[Verse]\nChuva em Lisboa",
        "duration": 95,
        "controls": Controls(bpm=72, key_scale="D minor", time_signature=3, vocal_language="pt"),
    }
    later = NOW + timedelta(seconds=7)
    assert await store.record_written(job.id, {JobState.RUNNING}, now=later, **written) is None
    recorded = await store.record_written(job.id, {JobState.QUEUED}, now=later, **written)
    assert recorded is not None and recorded.updated_at == later
    stored = await store.get(job.id)
    assert stored is not None
    for job_seen in (recorded, stored):
        request = job_seen.request
        assert (request.tags, request.lyrics, request.duration) == (
            written["tags"],
            written["lyrics"],
            95,
        )
        assert request.controls == written["controls"]
        assert job_seen.state == JobState.QUEUED
    # What was reserved is what settles: the written length changes no quota row.
    assert await store.ledger_balance(job.user_id) == {"reserve": 40}


async def test_reads_by_id_user_and_state(stores: Stores) -> None:
    store = stores.jobs
    jobs = [(await _queued(store, f"u{n % 2}", 10, policy=OPEN)).job for n in range(5)]
    assert await store.get(0) is None and await store.get(2**64) is None
    assert await store.get(10_000) is None
    assert await store.merge_context(10_000, {"x": 1}, NOW) is None
    assert sorted(j.id for j in await store.get_many([jobs[3].id, jobs[1].id, 999, -1])) == [
        jobs[1].id,
        jobs[3].id,
    ]
    assert [j.id for j in await store.list_jobs(limit=3)] == [j.id for j in jobs[::-1][:3]]
    mine = await store.list_jobs(user_id=jobs[0].user_id, newest_first=False)
    assert [j.id for j in mine] == [jobs[0].id, jobs[2].id, jobs[4].id]
    done = jobs[1]
    await store.transition(
        done.id,
        {JobState.QUEUED},
        JobState.SUCCEEDED,
        now=NOW,
        remote_seconds=12.5,
        audio_path="/a/1.mp3",
    )
    await store.transition(
        jobs[2].id, {JobState.QUEUED}, JobState.FAILED, now=NOW, remote_seconds=3.0
    )
    await store.transition(
        jobs[3].id, {JobState.QUEUED}, JobState.DELIVERED, now=NOW, audio_path="/a/3.mp3"
    )
    assert [j.id for j in await store.list_jobs(states={JobState.SUCCEEDED})] == [done.id]
    assert await store.recent_runtimes("wavespeed") == [(10, 12.5)]
    assert await store.recent_runtimes("acestep") == []
    assert await store.kept_audio() == {"/a/1.mp3"}


async def test_a_users_jobs_come_in_pages_newest_first_with_their_total(stores: Stores) -> None:
    store = stores.jobs
    mine = [(await _queued(store, "pager", 10, policy=OPEN)).job for _ in range(7)]
    await _queued(store, "someone else", 10, policy=OPEN)
    for job in mine[:6]:
        await store.transition(job.id, {JobState.QUEUED}, JobState.DELIVERED, now=NOW)
    done = {JobState.DELIVERED, JobState.SUCCEEDED}
    user = mine[0].user_id
    first = await store.page_of_jobs(user, states=done, offset=0, limit=4)
    assert [j.id for j in first.jobs] == [j.id for j in mine[5::-1][:4]]
    assert first.total == 6  # the queued one and the other user's are not counted
    second = await store.page_of_jobs(user, states=done, offset=4, limit=4)
    assert [j.id for j in second.jobs] == [mine[1].id, mine[0].id]
    assert second.total == 6
    past = await store.page_of_jobs(user, states=done, offset=40, limit=4)
    assert past.jobs == [] and past.total == 6
    nobody = await store.page_of_jobs(10_000, states=done, offset=0, limit=4)
    assert nobody.jobs == [] and nobody.total == 0


# ---------------------------------------------------------------- FairQueue
async def test_claims_are_fair_and_respect_the_concurrency_limit(stores: Stores) -> None:
    store = stores.jobs
    for _ in range(3):
        await _queued(store, "flooder", 10)
    quiet = await _queued(store, "quiet", 10)
    assert quiet.position == 2
    claimed = await store.claim_for_submit(
        "wavespeed", owner="w1", max_in_flight=2, lease_until=LEASE, now=NOW
    )
    assert [j.destination.user_id for j in claimed] == ["flooder", "quiet"]
    assert all(j.state == JobState.SUBMITTING and j.attempts == 1 for j in claimed)
    assert await store.events(claimed[0].id) == [
        (None, "queued", None),
        ("queued", "submitting", None),
    ]
    assert (
        await store.claim_for_submit(
            "wavespeed", owner="w1", max_in_flight=2, lease_until=LEASE, now=NOW
        )
        == []
    )
    assert (
        await store.claim_for_submit(
            "acestep", owner="w1", max_in_flight=2, lease_until=LEASE, now=NOW
        )
        == []
    )
    assert await store.live_owners(NOW) == {"w1"}
    # Past the queue: no place in line.
    assert await store.positions(claimed) == {}


async def test_two_claimers_never_take_the_same_job(stores: Stores) -> None:
    store = stores.jobs
    for n in range(12):
        await _queued(store, f"user{n}", 10)
    batches = await asyncio.gather(
        *(
            store.claim_for_submit(
                "wavespeed", owner=f"w{n}", max_in_flight=12, lease_until=LEASE, now=NOW
            )
            for n in range(4)
        )
    )
    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == len(set(ids)) == 12


async def test_the_queue_order_is_the_same_in_memory_and_in_the_database(
    stores: Stores,
) -> None:
    # Users in several chats, some with songs in flight, some served at the same moment, some
    # never, some jobs put back in line: the order (and every place) is pinned as a list, so
    # each store must produce exactly it: the stored order of bot/scheduler.py, which
    # tests/storage/test_fair_queue.py also holds the database to.
    store = stores.jobs
    rng = random.Random(11)
    for n in range(40):
        user = f"u{rng.randrange(6)}"
        chat = f"chat{rng.randrange(3)}"
        await _queued(store, user, 10, chat=chat, policy=OPEN, now=NOW + timedelta(seconds=n))
    for slots, moment in ((2, NOW), (4, NOW), (6, NOW + timedelta(seconds=5))):
        await store.claim_for_submit(
            "wavespeed", owner="w", max_in_flight=slots, lease_until=LEASE, now=moment
        )
    for job in (await store.list_jobs(states={JobState.SUBMITTING}))[3:]:
        await store.transition(job.id, {JobState.SUBMITTING}, JobState.QUEUED, now=NOW)
    whole = await store.queue_order("wavespeed")
    assert whole == EXPECTED_ORDER
    for first in (1, 4, 50):
        assert await store.queue_order("wavespeed", first=first) == whole[:first]
    queued = await store.get_many(whole)
    assert await store.positions(queued) == {i: n for n, i in enumerate(whole, start=1)}
    assert await store.position(queued[5]) == whole.index(queued[5].id) + 1
    claimed = await store.claim_for_submit(
        "wavespeed", owner="w", max_in_flight=6, lease_until=LEASE, now=NOW
    )
    assert [j.id for j in claimed] == whole[:3]


# Written down from the SQL store when the fair order became stored (migration 0004): the
# rounds and turns each song got when it was queued (bot/scheduler.py).
EXPECTED_ORDER = [
    1,
    4,
    3,
    2,
    7,
    5,
    31,
    26,
    11,
    8,
    9,
    10,
    14,
    27,
    33,
    12,
    13,
    15,
    19,
    30,
    16,
    21,
    23,
    28,
    34,
    17,
    22,
    35,
    24,
    20,
    29,
    36,
    32,
    37,
    38,
    40,
    39,
]


# ---------------------------------------------------------------- Leases
async def test_leases_expire_are_renewed_released_and_adopted(stores: Stores) -> None:
    store = stores.jobs
    for n in range(3):
        await _queued(store, f"user{n}", 10)
    soon = NOW + timedelta(seconds=5)
    claimed = await store.claim_for_submit(
        "wavespeed", owner="dead", max_in_flight=2, lease_until=soon, now=NOW
    )
    ids = [j.id for j in claimed]
    for job in claimed:
        await store.transition(
            job.id, {JobState.SUBMITTING}, JobState.SUBMITTED, now=NOW, remote_id=f"r{job.id}"
        )
    kwargs: dict[str, Any] = dict(
        backend="wavespeed", deliver_platforms=(), lease_until=NOW + timedelta(minutes=1)
    )
    assert await store.adopt(owner="new", now=NOW, **kwargs) == []
    assert await store.live_owners(soon) == {"dead"}
    assert await store.adopt(owner="new", now=NOW, dead_owners=["dead"], **kwargs) != []
    assert await store.release("new", ids) is None
    assert await store.live_owners(NOW) == set()
    assert await store.renew_leases("dead", ids, soon) == set()
    adopted = await store.adopt(owner="w2", now=NOW, **kwargs)
    assert sorted(j.remote_id for j in adopted) == sorted(f"r{i}" for i in ids)
    assert await store.renew_leases("w2", [*ids, 999], soon) == set(ids)
    later = soon + timedelta(seconds=1)
    assert await store.live_owners(later) == set()
    assert (
        await store.adopt(
            owner="w3", now=later, backend="acestep", deliver_platforms=(), lease_until=later
        )
        == []
    )
    # Finished, undelivered jobs go to a process that delivers to their platform.
    done = await store.transition(ids[0], {JobState.SUBMITTED}, JobState.SUCCEEDED, now=later)
    assert done is not None
    none = await store.adopt(
        owner="w3", now=later, backend=None, deliver_platforms=["discord"], lease_until=later
    )
    assert none == []
    taken = await store.adopt(
        owner="w3", now=later, backend=None, deliver_platforms=["telegram"], lease_until=later
    )
    assert [j.id for j in taken] == [ids[0]]
    # A final state clears the lease.
    await store.transition(ids[0], {JobState.SUCCEEDED}, JobState.DELIVERED, now=later)
    assert await store.renew_leases("w3", [ids[0]], later) == set()


# ---------------------------------------------------------------- EventFeed
async def test_the_event_feed_has_growing_ids_per_platform_and_is_pruned(
    stores: Stores,
) -> None:
    store = stores.jobs
    assert await store.last_event_id() == 0
    tg = (await _queued(store, "u1", 10)).job
    start = await store.last_event_id()
    dc = (await _queued(store, "u2", 10, platform="discord")).job
    later = NOW + timedelta(days=31)
    await store.transition(tg.id, {JobState.QUEUED}, JobState.CANCELLED, now=later)
    feed = await store.events_after(0, platforms=["telegram"])
    assert [(j.id, s) for _, j, s in feed] == [
        (tg.id, JobState.QUEUED),
        (tg.id, JobState.CANCELLED),
    ]
    assert feed[0][1].state == JobState.CANCELLED  # the job as it is now
    ids = [e for e, _, _ in feed]
    assert ids == sorted(ids) and ids[0] == start
    both = await store.events_after(start, platforms=["telegram", "discord"], limit=1)
    assert [(j.id, s) for _, j, s in both] == [(dc.id, JobState.QUEUED)]
    assert await store.last_event_id() == ids[-1]
    assert await store.prune_events(before=later - timedelta(days=30), batch=1) == 2
    assert [e[1] for e in await store.events(tg.id)] == ["cancelled"]
    assert await store.prune_events(before=later - timedelta(days=30)) == 0
    assert await store.last_event_id() == ids[-1]


# ---------------------------------------------------------------- Reports
async def test_usage_reports_and_active_jobs(stores: Stores) -> None:
    store = stores.jobs
    a1 = (
        await _queued(store, "a", 10, chat="x", scope="g1", platform="discord", cost=1.0, takes=2)
    ).job
    a2 = (await _queued(store, "a", 20, chat="x", scope="g1", platform="discord")).job
    b1 = (await _queued(store, "b", 30, chat="y", platform="telegram")).job
    await _queued(store, "c", 40, chat="z", platform="telegram", now=NOW - timedelta(days=9))
    await store.transition(a1.id, {JobState.QUEUED}, JobState.DELIVERED, now=NOW, gpu_seconds=2.5)
    await store.transition(b1.id, {JobState.QUEUED}, JobState.FAILED, now=NOW)
    report = await store.usage_report(since=NOW - timedelta(days=1))
    assert report[0] == _usage_row("discord", "a", 2, 20, 1.0, 2.5)  # its 2 takes
    assert report[1:] == [_usage_row("telegram", "b", 1, 0, 0.0, 0.0)]
    assert await store.usage_report(since=NOW, platform="telegram", scope="x") == []
    assert [r.user_id for r in await store.usage_report(since=NOW, scope="g1")] == ["a"]
    assert [j.id for j in await store.active_jobs()] == [a2.id, a2.id + 2]
    assert [j.id for j in await store.active_jobs(platform="discord", scope="g1")] == [a2.id]
    assert await store.active_jobs(platform="telegram", scope="y") == []
    # What /metrics reads: unfinished jobs per backend and state, each group's oldest.
    await store.transition(a2.id, {JobState.QUEUED}, JobState.RUNNING, now=NOW)
    assert sorted(await store.active_counts(), key=lambda c: c.state) == [
        StateCount("wavespeed", JobState.QUEUED, 1, NOW - timedelta(days=9)),
        StateCount("wavespeed", JobState.RUNNING, 1, NOW),
    ]


def _usage_row(
    platform: str, user: str, jobs: int, seconds: int, cost: float, gpu: float
) -> UsageRow:
    return UsageRow(platform, user, f"name {user}", jobs, seconds, cost, gpu, NOW)


# ---------------------------------------------------------------- RulesStore
async def test_chat_rules_are_created_changed_and_checked(stores: Stores) -> None:
    rules = stores.rules
    assert await rules.chat_rules("discord", "g1") is None
    changed = await rules.update_chat_rules(
        "discord",
        "g1",
        {"quota_seconds_per_day": 300, "blocked_words": ("a", "b"), "role_quotas": {"dj": 9}},
        NOW,
    )
    assert changed == ChatRules(
        quota_seconds_per_day=300, blocked_words=("a", "b"), role_quotas={"dj": 9}
    )
    appended = await rules.update_chat_rules(
        "discord", "g1", lambda now: {"blocked_words": (*now.blocked_words, "c")}, NOW
    )
    assert appended.blocked_words == ("a", "b", "c") and appended.quota_seconds_per_day == 300
    assert await rules.chat_rules("discord", "g1") == appended
    assert await rules.chat_rules("telegram", "g1") is None
    with pytest.raises(ValueError, match="unknown chat setting"):
        await rules.update_chat_rules("discord", "g1", {"colour": "red"}, NOW)
    assert await rules.chat_rules("discord", "g1") == appended
    assert appended.own_audio is None  # the default: on in direct messages, off in groups
    for switch in (True, False, None):
        turned = await rules.update_chat_rules("discord", "g1", {"own_audio": switch}, NOW)
        assert turned.own_audio is switch
        assert await rules.chat_rules("discord", "g1") == turned


async def test_user_overrides_per_scope_and_everywhere(stores: Stores) -> None:
    rules = stores.rules
    assert await rules.rules_for("telegram", "u1", "c1") == (None, [])
    await rules.set_user_rules("telegram", "u1", "c1", NOW, quota_seconds_per_day=60)
    await rules.set_user_rules("telegram", "u1", EVERYWHERE, NOW, blocked=True, note="spam")
    await rules.set_user_rules("telegram", "u1", "c2", NOW, quota_seconds_per_day=5)
    found = await rules.user_rules("telegram", "u1", "c1")
    assert sorted(found, key=lambda r: r.scope_id) == [
        UserRules(EVERYWHERE, blocked=True, note="spam"),
        UserRules("c1", quota_seconds_per_day=60),
    ]
    granted = await rules.update_user_rules(
        "telegram", "u1", "c1", lambda now: {"operator_quota_seconds_per_day": -1}, NOW
    )
    assert granted == UserRules("c1", 60, operator_quota_seconds_per_day=-1)
    # Nothing left set: the override is gone.
    await rules.set_user_rules("telegram", "u1", "c1", NOW)
    chat, users = await rules.rules_for("telegram", "u1", "c1")
    assert chat is None and users == [UserRules(EVERYWHERE, blocked=True, note="spam")]
    assert await rules.user_rules("discord", "u1", "c1") == []
