"""What /queue, queue positions and claims cost with a long queue (SQLite).

    .venv/bin/python bench/queue_length.py [--quick] [--shape USERSxSONGS ...] [--reps N]

For each shape a fresh SQLite file is filled with USERS × SONGS queued songs (arriving in a
shuffled order, as they would), as many songs already delivered (history), and one song in
flight for every fourth user (so users are in different rounds of the fair queue), each
queued song with the round and turn it would have been given (bot/scheduler.py). Then
each operation runs ``--reps`` times through the real service and store, and the table gives
its wall time (on SQLite, how long it holds the process's only connection)
and CPU time, median and p95 in milliseconds:

* ``/queue``: ``GenerationService.queue_of`` for a user with SONGS songs queued (and for one
  with none);
* ``new song``: ``GenerationService.submit`` (chat rules, quota checks, insert, ledger, audit
  row and the song's place in line) for a user new to the queue, and for one who already has
  SONGS queued (their song is at the back); each is cancelled again, untimed;
* ``claim 2``: ``SqlJobStore.claim_for_submit`` with two free slots (the claimed songs are
  put back in the queue, untimed);
* ``announce``: the worker's read of the first 5 places (``queue_order(first=5)``);
* ``admin queue``: ``acejam admin queue`` (the first 500 unfinished songs, with places).

The fill is written with bulk inserts, not through the service: what is measured is the cost
with the queue in place, not how it got there.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _common as c
from sqlalchemy import insert, update

from bot.app import Core, open_core
from bot.domain import Destination, JobState
from bot.scheduler import fair_round
from bot.service import Accepted, Requester
from storage.models import JobEventRow, JobRow, LedgerRow, UserRow

BACKEND = "wavespeed"
START = datetime(2026, 12, 1, tzinfo=UTC)


def _job(user_id: int, n: int, state: JobState, at: datetime) -> dict[str, Any]:
    platform_user = str(1000 + user_id)
    return {
        "user_id": user_id,
        "platform": "telegram",
        "chat_id": f"chat-{user_id % 50}",  # 50 group chats
        "scope_id": f"chat-{user_id % 50}",
        "platform_user_id": platform_user,
        "context": {},
        "tags": f"bench {n}, lo-fi",
        "lyrics": "",
        "duration": 30,
        "seed": -1,
        "state": state.value,
        "backend": BACKEND,
        "attempts": 0 if state == JobState.QUEUED else 1,
        "nsfw": False,
        "created_at": at,
        "updated_at": at,
    }


def _fair_places(plan: list[tuple[int, JobState]]) -> dict[int, dict[str, int]]:
    """Each queued song's stored round and turn (bot/scheduler.py), as if queued one after
    the other while round 0 is served, the songs in flight holding their users' round 0."""
    latest: dict[int, int] = {u: 0 for u, state in plan if state == JobState.SUBMITTED}
    turns: Counter[tuple[int, int]] = Counter()
    places: dict[int, dict[str, int]] = {}
    for n, (u, state) in enumerate(plan):
        if state != JobState.QUEUED:
            continue
        round_ = latest[u] = fair_round(latest.get(u), 0)
        chat = u % 50
        places[n] = {"fair_round": round_, "chat_turn": turns[round_, chat]}
        turns[round_, chat] += 1
    return places


async def fill(core: Core, users: int, songs: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    sessions = core.store._sessions  # type: ignore[attr-defined]  # the SQL store, filled directly
    async with sessions.begin() as session:
        await session.execute(
            insert(UserRow),
            [
                {
                    "id": u,
                    "platform": "telegram",
                    "platform_user_id": str(1000 + u),
                    "display_name": f"bench-user-{u}",
                    "created_at": START,
                    "last_served_at": START + timedelta(seconds=rng.randrange(10_000))
                    if u % 2
                    else None,
                }
                for u in range(1, users + 1)
            ],
        )
    # History first (older ids), then the queue in a shuffled arrival order, then in flight.
    plan: list[tuple[int, JobState]] = [
        (u, JobState.DELIVERED) for u in range(1, users + 1) for _ in range(songs)
    ]
    arrivals = [(u, JobState.QUEUED) for u in range(1, users + 1) for _ in range(songs)]
    rng.shuffle(arrivals)
    plan += arrivals
    plan += [(u, JobState.SUBMITTED) for u in range(1, users + 1, 4)]
    places = _fair_places(plan)
    for start in range(0, len(plan), 2000):
        chunk = plan[start : start + 2000]
        rows = [
            _job(u, start + i, state, START + timedelta(seconds=start + i))
            | places.get(start + i, {})
            for i, (u, state) in enumerate(chunk)
        ]
        async with sessions.begin() as session:
            inserted = await session.execute(insert(JobRow).returning(JobRow.id), rows)
            ids = list(inserted.scalars())
            await session.execute(
                insert(LedgerRow),
                [
                    {
                        "user_id": r["user_id"],
                        "job_id": i,
                        "kind": "reserve",
                        "seconds": 30,
                        "created_at": r["created_at"],
                    }
                    for i, r in zip(ids, rows, strict=True)
                ],
            )
            await session.execute(
                insert(JobEventRow),
                [
                    {"job_id": i, "at": r["created_at"], "from_state": None, "to_state": "queued"}
                    for i, r in zip(ids, rows, strict=True)
                ],
            )


def requester(user_id: int) -> Requester:
    return Requester("telegram", str(1000 + user_id), f"bench-user-{user_id}")


async def timed(
    reps: int,
    op: Callable[[], Awaitable[Any]],
    after: Callable[[Any], Awaitable[Any]] | None = None,
) -> tuple[float, float, float]:
    walls, cpus = [], []
    for _ in range(reps):
        w0, c0 = time.perf_counter(), time.process_time()
        result = await op()
        walls.append((time.perf_counter() - w0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
        if after is not None:
            await after(result)
    return c.pct(walls, 50), c.pct(walls, 95), c.pct(cpus, 50)


async def measure(
    users: int, songs: int, reps: int
) -> list[tuple[str, tuple[float, float, float]]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = c.settings_for("wavespeed", Path(tmp), "http://127.0.0.1:9")
        async with open_core(settings) as core:
            await fill(core, users, songs)
            service, store = core.service, core.store
            deep, fresh = requester(2), requester(users + 1)  # user 2: nothing in flight
            queued = await service.queue_of(deep)
            assert len(queued) == songs and all(e.position > 0 for e in queued), queued[:3]

            async def ask(who: Requester) -> Any:
                request = service.validate(tags="lo-fi, bench", duration=30)
                where = Destination("telegram", "chat-x", who.user_id)
                return await service.submit(who, where, request)

            async def take_back(outcome: Any) -> None:
                assert isinstance(outcome, Accepted) and outcome.position > 0, outcome
                await store.transition(
                    outcome.job.id,
                    {JobState.QUEUED},
                    JobState.CANCELLED,
                    now=datetime.now(UTC),
                    ledger="refund",
                )

            in_flight = (users + 3) // 4

            async def claim() -> Any:
                return await store.claim_for_submit(
                    BACKEND,
                    owner="bench",
                    max_in_flight=in_flight + 2,
                    lease_until=datetime.now(UTC) + timedelta(minutes=1),
                    now=datetime.now(UTC),
                )

            async def requeue(jobs: Any) -> None:
                assert len(jobs) == 2, jobs
                async with store._sessions.begin() as session:  # type: ignore[attr-defined]
                    await session.execute(
                        update(JobRow)
                        .where(JobRow.id.in_([j.id for j in jobs]))
                        .values(state="queued", lease_owner=None, lease_expires_at=None)
                    )

            results = [
                (
                    f"/queue, {songs} songs queued",
                    await timed(reps, lambda: service.queue_of(deep)),
                ),
                ("/queue, none queued", await timed(reps, lambda: service.queue_of(fresh))),
                ("new song, new user", await timed(reps, lambda: ask(fresh), take_back)),
                (
                    f"new song, {songs} already queued",
                    await timed(reps, lambda: ask(deep), take_back),
                ),
                ("claim 2", await timed(reps, claim, requeue)),
                (
                    "announce (first 5)",
                    await timed(reps, lambda: store.queue_order(BACKEND, first=5)),
                ),
                (
                    "admin queue (500 shown)",
                    await timed(max(3, reps // 5), lambda: core.admin.queue()),
                ),
            ]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller queues, fewer repetitions")
    parser.add_argument("--shape", action="append", help="USERSxSONGS, e.g. 100x50 (repeatable)")
    parser.add_argument("--reps", type=int)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    shapes = args.shape or (["100x10", "100x50"] if args.quick else ["100x10", "100x50", "2500x2"])
    reps = args.reps or (10 if args.quick else 20)
    c.console.print(c.machine())
    for shape in shapes:
        users, songs = (int(x) for x in shape.lower().split("x"))
        rows = asyncio.run(measure(users, songs, reps))
        c.table(
            f"{users * songs:,} queued ({users:,} users × {songs}), "
            f"{users * songs:,} delivered, {(users + 3) // 4} in flight; {reps} runs",
            ["operation", "wall p50 ms", "wall p95 ms", "CPU p50 ms"],
            [[name, c.fmt(p50), c.fmt(p95), c.fmt(cpu)] for name, (p50, p95, cpu) in rows],
        )


if __name__ == "__main__":
    main()
