"""#16 through the core, on a real SQLite file, the ACE-Step fake and a fake clock: a jam of
three members collects, renders its takes through the normal queue, opens voting when they
are posted, closes with the winner credited, and a second round extends the winner; a crash
between "rendering" and the submits is made up without a second job; votes count once
however often pressed; who pays (jam_pays); the board link and its revocation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import Core, open_core
from bot.domain import Destination, Job, JobState, Task
from bot.jams import texts
from bot.jams.clock import JamClock
from bot.jams.model import Added, Jam, JamChanged, JamNews, JamNewsKind, JamState, Part, Voted
from bot.jams.service import JamService
from bot.service import Accepted, Refused, Requester
from tests.fakes.acestep import FakeAceStep
from tests.harness import RecordingDelivery, acestep_settings, wait_for_job

START = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
PLACE = Destination("telegram", "chat-1", "host")
HOST = Requester("telegram", "host", "Hana")
ANN = Requester("telegram", "ann", "Ann")
BOB = Requester("telegram", "bob", "Bob")
CY = Requester("telegram", "cy", "Cy")
ADMIN = Requester("telegram", "boss", "Boss", is_admin=True, admin_scope="chat-1")
ENDED = {JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED}


class FakeTime:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


@dataclass
class Listener:
    platform: str = "telegram"
    news: list[JamNews] = field(default_factory=list)

    async def on_jam(self, news: JamNews) -> None:
        self.news.append(news)

    def kinds(self) -> list[JamNewsKind]:
        return [n.kind for n in self.news if n.kind != JamNewsKind.CHANGED]


@dataclass
class Jamming:
    core: Core
    jams: JamService
    clock: JamClock
    time: FakeTime
    listener: Listener
    chat: RecordingDelivery

    async def takes_ended(self, jam: Jam) -> list[Job]:
        fresh = await self.jams.get(jam.id)
        assert fresh is not None
        return [await wait_for_job(self.core, t.job_id, ENDED) for t in fresh.current.takes]

    async def now(self, jam: Jam) -> Jam:
        fresh = await self.jams.get(jam.id)
        assert fresh is not None
        return fresh


@contextlib.asynccontextmanager
async def jamming(
    tmp_path: Path, *, public_url: str | None = None, **settings: object
) -> AsyncIterator[Jamming]:
    async with FakeAceStep(time_scale=0.02) as fake:
        settings = {"poll_time_scale": 0.01, **settings}
        async with open_core(acestep_settings(tmp_path, fake.base_url, **settings)) as core:
            await core.backend.refresh_capabilities()  # as `acejam run` does: extend offered
            chat = RecordingDelivery()
            core.service.register_delivery(chat)
            # Short songs: the takes follow the chat's default length.
            await core.service.admin.update_chat_rules("telegram", "chat-1", default_duration=10)
            time = FakeTime()
            jams = JamService(
                core.service, core.service.jams.store, core.rules, public_url=public_url, now=time
            )
            core.service.attach_jams(jams)
            clock = JamClock(jams)
            listener = Listener()
            jams.register_listener(listener)
            stop = asyncio.Event()
            worker = asyncio.create_task(core.worker.run(stop))
            try:
                yield Jamming(core, jams, clock, time, listener, chat)
            finally:
                stop.set()
                await worker


async def _start(j: Jamming, **options: int) -> Jam:
    started = await j.jams.start(HOST, PLACE, "rainy city", **options)
    assert isinstance(started, JamChanged), started
    return started.jam


async def test_a_jam_of_three_runs_from_start_to_a_winner_and_a_second_round(
    tmp_path: Path,
) -> None:
    async with jamming(tmp_path) as j:
        jam = await _start(j, takes=2, minutes=5, vote_minutes=3)
        assert isinstance(await j.jams.add(ANN, jam.id, Part.TAG, "synthwave"), Added)
        assert isinstance(await j.jams.add(BOB, jam.id, Part.LINE, "[Verse] neon rain"), Added)
        assert isinstance(await j.jams.add(CY, jam.id, Part.LINE, "we run at night"), Added)
        other = await j.jams.start(ANN, PLACE, "another")
        assert isinstance(other, Refused) and other.code == "open_jam"

        j.time.advance(4)
        await j.clock.tick()
        assert (await j.now(jam)).state == JamState.COLLECTING  # not yet
        j.time.advance(1)
        await j.clock.tick()  # collecting time is up: rendered as the host
        rendering = await j.now(jam)
        assert rendering.state == JamState.RENDERING and len(rendering.current.takes) == 2
        jobs = await j.takes_ended(rendering)
        assert [job.state for job in jobs] == [JobState.DELIVERED] * 2
        assert {job.request.tags for job in jobs} == {"rainy city, synthwave"}
        assert {job.request.lyrics for job in jobs} == {"[Verse] neon rain\nwe run at night"}
        assert all(job.request.takes == 1 and job.destination.user_id == "host" for job in jobs)
        assert len({job.request.seed for job in jobs}) == 2  # each take a seed of its own
        assert all(job.destination.context["jam_id"] == jam.id for job in jobs)
        assert await j.jams.take_of(jobs[1].id) is not None

        await j.clock.tick()  # every take is in
        assert (await j.now(jam)).state == JamState.VOTING
        assert j.listener.kinds() == [JamNewsKind.RENDERING, JamNewsKind.VOTING]
        assert isinstance(await j.jams.vote(ANN, jam.id, 1, 2), Voted)
        assert isinstance(await j.jams.vote(BOB, jam.id, 1, 2), Voted)
        assert isinstance(await j.jams.vote(CY, jam.id, 1, 1), Voted)
        again = await j.jams.vote(BOB, jam.id, 1, 2)
        assert isinstance(again, Voted) and not again.changed
        assert isinstance(await j.jams.vote(CY, jam.id, 1, 3), Refused)  # no take 3

        j.time.advance(3)
        await j.clock.tick()  # voting time is up
        closed = await j.now(jam)
        assert closed.state == JamState.CLOSED and closed.current.winner_take == 2
        announcement = j.listener.news[-1]
        assert announcement.kind == JamNewsKind.CLOSED and "take 2 wins" in announcement.message
        assert all(name in announcement.message for name in ("Hana", "Ann", "Bob", "Cy"))
        late = await j.jams.vote(CY, jam.id, 1, 2)
        assert isinstance(late, Refused) and late.code == "vote_closed"

        assert isinstance(await j.jams.next_round(ANN, jam.id), Refused)  # host or admin only
        second = await j.jams.next_round(HOST, jam.id)
        assert isinstance(second, JamChanged) and second.jam.round == 2
        assert second.jam.current.base_job_id == jobs[1].id and second.jam.current.extended
        assert isinstance(await j.jams.add(CY, jam.id, Part.LINE, "[Chorus] lights out"), Added)
        rendered = await j.jams.render(ADMIN, jam.id)  # an admin may render too
        assert isinstance(rendered, JamChanged) and rendered.jam.state == JamState.RENDERING
        extends = await j.takes_ended(rendered.jam)
        assert [job.state for job in extends] == [JobState.DELIVERED] * 2
        for job in extends:  # the winner, 30 s longer, with this round's new line
            assert job.request.edit is not None and job.request.edit.task == Task.EXTEND
            assert job.parent_id == jobs[1].id and job.request.lyrics == "[Chorus] lights out"
            assert job.request.tags == "rainy city, synthwave"  # no new tags: the last ones
        await j.clock.tick()
        assert isinstance(await j.jams.vote(ANN, jam.id, 2, 1), Voted)
        done = await j.jams.close(HOST, jam.id)
        assert isinstance(done, JamChanged) and done.jam.current.winner_take == 1
        assert [r.winner_take for r in done.jam.rounds] == [2, 1]

        stats = await j.jams.stats("telegram", "chat-1")
        rows = {r.user_id: (r.contributions, r.wins) for r in stats.rows}
        assert stats.jams == 1 and rows == {"ann": (1, 1), "bob": (1, 1), "cy": (2, 2)}
        ended = await j.jams.close(HOST, jam.id)  # closing a closed jam ends it
        assert isinstance(ended, JamChanged) and ended.jam.state == JamState.ENDED
        assert await j.jams.jam_at("telegram", "chat-1") is None


async def test_a_crash_between_rendering_and_the_submits_is_made_up_once(tmp_path: Path) -> None:
    async with jamming(tmp_path) as j:
        jam = await _start(j, takes=2)
        await j.jams.add(ANN, jam.id, Part.TAG, "dub")
        # The crash: the round was moved to rendering, take 1 was queued but not recorded,
        # take 2 was not queued at all.
        moved = await j.jams.store.advance(
            jam.id, 1, {JamState.COLLECTING}, JamState.RENDERING, now=j.time()
        )
        assert moved is not None
        request = j.core.service.validate(tags="rainy city, dub")
        lost = await j.core.service.submit(
            HOST, PLACE, request, idempotency_key=f"jam:{jam.id}:1:1"
        )
        assert isinstance(lost, Accepted)
        await asyncio.gather(j.clock.tick(), j.clock.tick())  # two looks at once
        await j.clock.tick()
        fresh = await j.now(jam)
        assert [t.take for t in fresh.current.takes] == [1, 2]
        assert fresh.current.takes[0].job_id == lost.job.id  # the same job, not a second
        jobs = await j.core.store.list_jobs(limit=10)
        assert len(jobs) == 2
        await j.takes_ended(fresh)
        await j.clock.tick()
        assert (await j.now(jam)).state == JamState.VOTING
        assert len(await j.core.store.list_jobs(limit=10)) == 2


async def test_votes_count_once_under_concurrent_presses(tmp_path: Path) -> None:
    async with jamming(tmp_path) as j:
        jam = await _start(j, takes=2)
        await j.jams.render(HOST, jam.id)
        await j.takes_ended(jam)
        await j.clock.tick()
        members = [ANN, BOB, CY]
        presses = [j.jams.vote(m, jam.id, 1, 1 + i % 2) for i in range(10) for m in members]
        results = await asyncio.gather(*presses)
        assert all(isinstance(r, Voted) for r in results)
        counted = await j.now(jam)
        assert counted.current.votes_cast == 3
        assert sum(t.votes for t in counted.current.takes) == 3


async def test_who_pays_for_the_takes(tmp_path: Path) -> None:
    async with jamming(tmp_path) as j:
        admin = j.core.service.admin
        with pytest.raises(ValueError, match="monthly_budget_usd"):
            await admin.update_chat_rules("telegram", "chat-1", jam_pays="chat")
        jam = await _start(j, takes=2)
        await j.jams.render(HOST, jam.id)
        await j.takes_ended(jam)
        assert (await j.core.service.quota(HOST, "chat-1")).used_seconds == 20  # the host's
        await j.jams.close(HOST, jam.id)  # voting isn't open yet: refused
        await j.clock.tick()
        await j.jams.close(HOST, jam.id)
        await j.jams.close(HOST, jam.id)  # ends it

        await admin.update_chat_rules("telegram", "chat-1", monthly_budget_usd=5.0, jam_pays="chat")
        paid = await _start(j, takes=2)
        rendered = await j.jams.render(HOST, paid.id)
        assert isinstance(rendered, JamChanged)
        jobs = await j.takes_ended(rendered.jam)
        assert [job.state for job in jobs] == [JobState.DELIVERED] * 2
        assert (await j.core.service.quota(HOST, "chat-1")).used_seconds == 20  # no more


async def test_render_close_and_remove_need_the_right_person(tmp_path: Path) -> None:
    async with jamming(tmp_path) as j:
        jam = await _start(j)
        added = await j.jams.add(ANN, jam.id, Part.LINE, "line one")
        assert isinstance(added, Added) and added.contribution.number == 1
        refused = await j.jams.remove(BOB, jam.id, 1)
        assert isinstance(refused, Refused) and refused.message == texts.REMOVE_WHO
        assert isinstance(await j.jams.remove(ANN, jam.id, 1), JamChanged)
        assert isinstance(await j.jams.remove(ANN, jam.id, 1), Refused)  # already gone
        for act in (j.jams.render, j.jams.close, j.jams.revoke_board):
            outcome = await act(BOB, jam.id)
            assert isinstance(outcome, Refused) and outcome.code == "forbidden"
        assert [n.kind for n in j.listener.news] == [JamNewsKind.CHANGED] * 2


async def test_the_board_link_is_made_revoked_and_made_again(tmp_path: Path) -> None:
    async with jamming(tmp_path, public_url="https://jams.example.org/") as j:
        jam = await _start(j)
        url = await j.jams.board_url(BOB, jam.id)  # any member may post the link
        assert isinstance(url, str) and url.startswith("https://jams.example.org/jam/")
        token = url.rsplit("/", 1)[1]
        assert len(token) >= 30 and (await j.jams.by_token(token)) is not None
        revoked = await j.jams.revoke_board(HOST, jam.id)
        assert isinstance(revoked, JamChanged) and revoked.message == texts.BOARD_REVOKED
        assert await j.jams.by_token(token) is None
        again = await j.jams.board_url(BOB, jam.id)
        assert isinstance(again, str) and again != url
        assert await j.jams.by_token(again.rsplit("/", 1)[1]) is not None
    async with jamming(tmp_path / "off") as j:
        jam = await _start(j)
        off = await j.jams.board_url(HOST, jam.id)
        assert isinstance(off, Refused) and off.message == texts.BOARD_OFF


async def test_words_are_checked_like_a_request_and_must_fit_the_engine(tmp_path: Path) -> None:
    async with jamming(tmp_path) as j:
        await j.core.service.admin.update_chat_rules("telegram", "chat-1", blocked_words=("grim",))
        blocked = await j.jams.start(HOST, PLACE, "grim city")
        assert isinstance(blocked, Refused) and blocked.code == "blocked"
        jam = await _start(j)
        refused = await j.jams.add(ANN, jam.id, Part.TAG, "Grim, dark")
        assert isinstance(refused, Refused) and refused.code == "blocked"
        assert isinstance(await j.jams.add(ANN, jam.id, Part.TAG, "grimace"), Added)
        limits = j.core.service.limits
        verse = "la " * 150
        while True:
            outcome = await j.jams.add(BOB, jam.id, Part.LINE, verse)
            if isinstance(outcome, Refused):
                break
            assert outcome.lyrics_left >= 0
        assert outcome.code == "too_long" and "are left" in outcome.message
        fresh = await j.now(jam)
        lyrics = "\n".join(c.text for c in fresh.lines_of(1))
        assert len(lyrics) <= limits.max_lyrics_chars < len(lyrics) + 1 + len(verse.strip())
