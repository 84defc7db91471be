"""#16: the jam store on a real SQLite file and a real PostgreSQL server: one open jam per
place, compare-and-set rounds (a second render or close changes nothing), contributions
numbered in order under concurrent adds, one vote per member however often pressed (and
after a restart), takes recorded once, board tokens, stats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain import Destination, GenerationRequest, JobId, JobState
from bot.jams.model import Contribution, Jam, JamState, NewJam, Part
from storage.db import create_engine, read_session_factory, session_factory, upgrade
from storage.jams import SqlJamStore
from storage.jobs import Enqueued, NewJob, SqlJobStore, UserKey

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)


def _new(place: str = "chat-1", token: str = "tok-1") -> NewJam:
    return NewJam(
        platform="telegram",
        chat_id=place,
        scope_id=place,
        host_id="host",
        host_name="Host",
        theme="rainy city",
        takes=2,
        collect_minutes=10,
        vote_minutes=5,
        token=token,
    )


def _ok(jam: Jam, added: Contribution) -> str | None:
    return None if jam.state == JamState.COLLECTING else "not collecting"


class Stores:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        sessions, reads = session_factory(self.engine), read_session_factory(self.engine)
        self.jams = SqlJamStore(sessions, reads)
        self.jobs = SqlJobStore(sessions, reads)

    async def job(self, key: str) -> JobId:
        made = await self.jobs.enqueue(
            NewJob(
                user=UserKey("telegram", "host", "Host"),
                request=GenerationRequest(tags="rainy city", duration=10),
                destination=Destination("telegram", "chat-1", "host"),
                backend="acestep",
                idempotency_key=key,
            ),
            admit=lambda usage: None,
            now=NOW,
        )
        assert isinstance(made, Enqueued)
        return made.job.id


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[Stores]:
    opened = Stores(database_url)
    await upgrade(opened.engine)
    try:
        yield opened
    finally:
        await opened.engine.dispose()


async def _voting(stores: Stores) -> Jam:
    """A jam whose round 1 has two made takes and is open for votes."""
    jam = await stores.jams.create_jam(_new(), now=NOW, collect_ends_at=LATER)
    assert jam is not None
    rendering = await stores.jams.advance(
        jam.id, 1, {JamState.COLLECTING}, JamState.RENDERING, now=NOW
    )
    assert rendering is not None
    for take in (1, 2):
        job_id = await stores.job(f"jam:{jam.id}:1:{take}")
        await stores.jobs.transition(job_id, {JobState.QUEUED}, JobState.SUCCEEDED, now=NOW)
        await stores.jams.record_take(jam.id, 1, take, job_id)
    voting = await stores.jams.advance(
        jam.id, 1, {JamState.RENDERING}, JamState.VOTING, now=NOW, vote_ends_at=LATER
    )
    assert voting is not None and [t.take for t in voting.current.takes] == [1, 2]
    return voting


async def test_one_open_jam_per_place_and_a_closed_one_is_superseded(stores: Stores) -> None:
    first = await stores.jams.create_jam(_new(), now=NOW, collect_ends_at=LATER)
    assert first is not None and first.state == JamState.COLLECTING and first.round == 1
    assert await stores.jams.create_jam(_new(token="t2"), now=NOW, collect_ends_at=LATER) is None
    elsewhere = await stores.jams.create_jam(_new("chat-2", "t3"), now=NOW, collect_ends_at=LATER)
    assert elsewhere is not None
    # Two starts at once in a third place: one jam.
    racing = await asyncio.gather(
        *(
            stores.jams.create_jam(_new("chat-3", f"r{i}"), now=NOW, collect_ends_at=LATER)
            for i in range(5)
        )
    )
    assert len([j for j in racing if j is not None]) == 1
    # Moved into a thread, the jam is found from both places.
    moved = await stores.jams.update_jam(first.id, now=NOW, chat_id="thread-9", context={"m": 1})
    assert moved is not None and moved.origin_id == "chat-1" and moved.context == {"m": 1}
    assert (await stores.jams.jam_at("telegram", "thread-9")).id == first.id  # type: ignore[union-attr]
    assert (await stores.jams.jam_at("telegram", "chat-1")).id == first.id  # type: ignore[union-attr]
    # Once closed, a new start in the place ends it.
    await stores.jams.end_jam(first.id, now=NOW)
    assert await stores.jams.jam_at("telegram", "chat-1") is None
    again = await stores.jams.create_jam(_new(token="t9"), now=NOW, collect_ends_at=LATER)
    assert again is not None and again.id != first.id


async def test_contributions_are_numbered_in_order_under_concurrent_adds(stores: Stores) -> None:
    jam = await stores.jams.create_jam(_new(), now=NOW, collect_ends_at=LATER)
    assert jam is not None
    added = await asyncio.gather(
        *(
            stores.jams.add_contribution(
                jam.id,
                part=Part.LINE,
                text=f"line {i}",
                author_id=f"u{i}",
                author_name=None,
                now=NOW,
                check=_ok,
            )
            for i in range(12)
        )
    )
    numbers = sorted(a[1].number for a in added if isinstance(a, tuple))
    assert numbers == list(range(1, 13))
    fresh = await stores.jams.get_jam(jam.id)
    assert fresh is not None and [c.number for c in fresh.contributions] == numbers
    removed = await stores.jams.remove_contribution(jam.id, 3, now=NOW, check=_ok)
    assert isinstance(removed, Jam) and [c.number for c in removed.lines_of(1)][:3] == [1, 2, 4]
    assert await stores.jams.remove_contribution(jam.id, 99, now=NOW, check=_ok) is None


async def test_a_round_moves_once_however_many_try(stores: Stores) -> None:
    jam = await stores.jams.create_jam(_new(), now=NOW, collect_ends_at=LATER)
    assert jam is not None
    moves = await asyncio.gather(
        *(
            stores.jams.advance(jam.id, 1, {JamState.COLLECTING}, JamState.RENDERING, now=NOW)
            for _ in range(6)
        )
    )
    assert len([m for m in moves if m is not None]) == 1
    job_id = await stores.job("k1")
    await stores.jams.record_take(jam.id, 1, 1, job_id)
    again = await stores.jams.record_take(jam.id, 1, 1, job_id)  # a submit repeated
    assert again is not None and [t.job_id for t in again.current.takes] == [job_id]
    assert await stores.jams.take_of(job_id) is not None
    assert await stores.jams.take_of(10**30) is None


async def test_votes_count_once_per_member_under_concurrent_presses(stores: Stores) -> None:
    jam = await _voting(stores)

    def open_(jam: Jam) -> str | None:
        return None if jam.state == JamState.VOTING else "closed"

    presses = [("ann", 1)] * 10 + [("bob", 2)] * 10 + [("cy", 2)] * 5 + [("ann", 2)]
    results = await asyncio.gather(
        *(stores.jams.vote(jam.id, 1, take, who, now=NOW, check=open_) for who, take in presses)
    )
    assert all(isinstance(r, tuple) for r in results)
    counted = await stores.jams.get_jam(jam.id)
    assert counted is not None and counted.current.votes_cast == 3
    by_take = {t.take: t.votes for t in counted.current.takes}
    assert sum(by_take.values()) == 3 and by_take[2] >= 2  # ann's last press may come first
    closed = await stores.jams.advance(
        jam.id, 1, {JamState.VOTING}, JamState.CLOSED, now=NOW, pick_winner=True
    )
    assert closed is not None and closed.current.winner_take == max(
        by_take, key=lambda t: (by_take[t], -t)
    )
    late = await stores.jams.vote(jam.id, 1, 1, "dee", now=NOW, check=open_)
    assert late == "closed"


async def test_votes_survive_a_restart(database_url: str) -> None:
    first = Stores(database_url)
    await upgrade(first.engine)
    try:
        jam = await _voting(first)
        for who in ("ann", "bob", "ann"):
            await first.jams.vote(jam.id, 1, 2, who, now=NOW, check=lambda j: None)
    finally:
        await first.engine.dispose()
    second = Stores(database_url)  # a new engine on the same database: a restarted bot
    try:
        again = await second.jams.get_jam(jam.id)
        assert again is not None and again.current.votes_cast == 2
        outcome = await second.jams.vote(jam.id, 1, 2, "ann", now=NOW, check=lambda j: None)
        assert isinstance(outcome, tuple) and outcome[1] is False  # the same vote again
        assert (await second.jams.get_jam(jam.id)).current.votes_cast == 2  # type: ignore[union-attr]
    finally:
        await second.engine.dispose()


async def test_board_tokens_are_kept_revoked_and_made_again(stores: Stores) -> None:
    jam = await stores.jams.create_jam(_new(), now=NOW, collect_ends_at=LATER)
    assert jam is not None
    assert (await stores.jams.jam_by_token("tok-1")).id == jam.id  # type: ignore[union-attr]
    kept = await stores.jams.update_jam(jam.id, now=NOW, token="other")
    assert kept is not None and kept.token == "tok-1"  # a link already made stays
    await stores.jams.update_jam(jam.id, now=NOW, revoke_token=True)
    assert await stores.jams.jam_by_token("tok-1") is None
    made = await stores.jams.update_jam(jam.id, now=NOW, token="tok-2")
    assert made is not None and made.token == "tok-2"
    assert await stores.jams.jam_by_token("tok-1") is None


async def test_stats_count_contributions_and_the_rounds_they_won(stores: Stores) -> None:
    jam = await _voting(stores)
    # Contributions are added while collecting; here straight into the rows' round 1.
    for who, part in (("ann", Part.TAG), ("ann", Part.LINE), ("bob", Part.LINE)):
        await stores.jams.add_contribution(
            jam.id,
            part=part,
            text="x",
            author_id=who,
            author_name=who.title(),
            now=NOW,
            check=lambda j, c: None,
        )
    await stores.jams.advance(
        jam.id, 1, {JamState.VOTING}, JamState.CLOSED, now=NOW, pick_winner=True
    )
    other = await stores.jams.create_jam(_new("chat-1", "t2"), now=NOW, collect_ends_at=LATER)
    assert other is not None  # the closed jam ended
    await stores.jams.add_contribution(
        other.id, part=Part.TAG, text="y", author_id="bob", author_name="Bob", now=NOW, check=_ok
    )
    stats = await stores.jams.jam_stats("telegram", "chat-1")
    assert stats.jams == 2
    rows = {r.user_id: (r.name, r.contributions, r.wins) for r in stats.rows}
    assert rows == {"ann": ("Ann", 2, 1), "bob": ("Bob", 2, 1)}
    assert await stores.jams.jam_stats("telegram", "elsewhere") == type(stats)((), 0)
