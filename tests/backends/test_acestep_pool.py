"""A pool of ACE-Step servers (#20) against two or three loopback ACE-Step fakes at once:
jobs placed by load, one ``/query_result`` per server per round, servers leaving the rotation
and coming back, forgotten and unreachable jobs reported lost, capability routing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.app import build_downloader
from bot.backends.acestep_build import build_acestep
from bot.backends.acestep_pool import AceStepPool
from bot.backends.acestep_routing import server_key, split_pool_id
from bot.domain import Edit, GenerationRequest, Task
from bot.errors import PermanentBackendError
from bot.ports import RemoteState
from tests.fakes.acestep import FakeAceStep
from tests.fakes.audio import make_audio
from tests.harness import acestep_settings
from tests.kit.backends import poll_until_final

SCALE = 0.02


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A song of ours to remix."""
    path = tmp_path / "sources" / "job-7.mp3"
    path.parent.mkdir()
    path.write_bytes(make_audio(4.0, "mp3"))
    return path


@contextlib.asynccontextmanager
async def pool_of(
    tmp_path: Path, *fakes: FakeAceStep, **overrides: object
) -> AsyncIterator[AceStepPool]:
    """The pool the app builds for these servers (one client, one downloader)."""
    urls = ",".join(fake.base_url for fake in fakes)
    values: dict[str, object] = {"poll_time_scale": SCALE, "acestep_max_concurrency": 4}
    settings = acestep_settings(tmp_path, urls, **(values | overrides))
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(2.0)) as http,
        build_downloader(settings, http.timeout) as downloads,
    ):
        pool = build_acestep(settings, http, downloads)
        assert isinstance(pool, AceStepPool)
        yield pool


def song(**fields: object) -> GenerationRequest:
    values: dict[str, object] = {"tags": "lo-fi", "duration": 10}
    return GenerationRequest(**(values | fields))  # type: ignore[arg-type]


def where(pool: AceStepPool, remote_id: str) -> str:
    key, _ = split_pool_id(remote_id, [m.key for m in pool.members])
    assert key is not None
    return key


async def test_jobs_go_where_they_finish_soonest(tmp_path: Path) -> None:
    async with (
        FakeAceStep(time_scale=SCALE, runtime=50) as busy,
        FakeAceStep(time_scale=SCALE, runtime=50) as idle,
    ):
        async with httpx.AsyncClient() as other_client:  # another client fills the first
            for _ in range(5):
                await other_client.post(
                    f"{busy.base_url}/release_task", json={"prompt": "x", "audio_duration": 10}
                )
        async with pool_of(tmp_path, busy, idle) as pool:
            ids = [(await pool.submit(song())).remote_id for _ in range(4)]
            placed = Counter(where(pool, remote_id) for remote_id in ids)
        # Six ahead on the busy one (five queued, one running): the idle one finishes any
        # of the four sooner.
        assert placed == {server_key(idle.base_url): 4}
        assert len(busy.tasks) == 5


async def test_equal_servers_share_the_work(tmp_path: Path) -> None:
    async with (
        FakeAceStep(time_scale=SCALE, runtime=50) as one,
        FakeAceStep(time_scale=SCALE, runtime=50) as two,
        FakeAceStep(time_scale=SCALE, runtime=50) as three,
    ):
        async with pool_of(tmp_path, one, two, three) as pool:
            ids = [(await pool.submit(song())).remote_id for _ in range(6)]
            placed = Counter(where(pool, remote_id) for remote_id in ids)
            assert sorted(placed.values()) == [2, 2, 2]
            # One /query_result per server for all its jobs.
            calls_before = [len(fake.query_calls) for fake in (one, two, three)]
            answered = await pool.poll(ids)
        assert set(answered) == set(ids)
        for fake, before in zip((one, two, three), calls_before, strict=True):
            assert len(fake.query_calls) == before + 1
            assert len(fake.query_calls[-1][0]) == 2


async def test_a_server_that_refuses_leaves_the_rotation_and_comes_back(tmp_path: Path) -> None:
    async with (
        FakeAceStep(time_scale=SCALE) as flaky,
        FakeAceStep(time_scale=SCALE, runtime=50) as steady,
    ):
        async with pool_of(tmp_path, flaky, steady) as pool:
            flaky.faults.add("submit", status=503, times=1)
            first = await pool.submit(song())
            # Refused by the first (tried: it was empty), made by the other at once.
            assert where(pool, first.remote_id) == server_key(steady.base_url)
            out = pool.member(server_key(flaky.base_url))
            assert not out.in_rotation
            # Probed again after its back-off (2 s x the time scale): used again.
            await asyncio.sleep(2.5 * SCALE)
            again = await pool.submit(song())
            assert where(pool, again.remote_id) == server_key(flaky.base_url)
            assert out.in_rotation


async def test_a_restarted_server_s_jobs_are_reported_lost(tmp_path: Path) -> None:
    async with (
        FakeAceStep(time_scale=SCALE, runtime=100) as restarts,
        FakeAceStep(time_scale=SCALE, runtime=100) as other,
    ):
        async with pool_of(tmp_path, restarts, other) as pool:
            ids = [(await pool.submit(song())).remote_id for _ in range(4)]
            mine = [i for i in ids if where(pool, i) == server_key(restarts.base_url)]
            assert len(mine) == 2
            assert all(s.state != RemoteState.LOST for s in (await pool.poll(ids)).values())
            restarts.restart()  # forgets both; they would read "queued" for ever
            first = await pool.poll(ids)
            assert all(first[i].state == RemoteState.PENDING for i in mine)  # one strike
            second = await pool.poll(ids)
        assert {i for i, s in second.items() if s.state == RemoteState.LOST} == set(mine)
        assert "no longer knows" in (second[mine[0]].error_message or "")


async def test_a_dead_server_s_jobs_are_lost_after_the_grace(tmp_path: Path) -> None:
    async with (
        FakeAceStep(time_scale=SCALE, runtime=100) as dies,
        FakeAceStep(time_scale=SCALE, runtime=100) as other,
    ):
        async with pool_of(tmp_path, dies, other, acestep_failover_seconds=0.2) as pool:
            ids = [(await pool.submit(song())).remote_id for _ in range(2)]
            [gone] = [i for i in ids if where(pool, i) == server_key(dies.base_url)]
            await dies.crash()
            assert gone not in await pool.poll(ids)  # no answer yet: within the grace
            await asyncio.sleep(0.25)
            answered = await pool.poll(ids)
            assert answered[gone].state == RemoteState.LOST
            # Meanwhile new jobs go to the one that answers.
            later = await pool.submit(song())
            assert where(pool, later.remote_id) == server_key(other.base_url)
            await dies.come_back()
            # Probed again once its back-off (doubled by each failure while it was down) ends.
            out_until = pool.member(server_key(dies.base_url)).out_until
            assert out_until is not None
            await asyncio.sleep(max(0.0, out_until - time.monotonic()))
            back = [(await pool.submit(song())).remote_id for _ in range(2)]
        assert server_key(dies.base_url) in {where(pool, i) for i in back}


async def test_jobs_go_only_to_servers_that_can_make_them(tmp_path: Path, source: Path) -> None:
    async with (
        FakeAceStep(time_scale=SCALE, lm_model=None, task_types=("text2music",)) as plain,
        FakeAceStep(time_scale=SCALE, runtime=50) as full,
    ):
        async with pool_of(tmp_path, plain, full) as pool:
            offered = await pool.refresh_capabilities()
            assert offered.describes and offered.edits == {Task.EXTEND, Task.REPAINT, Task.REMIX}
            for _ in range(3):  # the plain one is idle, yet gets none of these
                described = await pool.submit(song(tags="", describe="a song about rain"))
                assert where(pool, described.remote_id) == server_key(full.base_url)
            remix = song(edit=Edit(Task.REMIX, source_path=str(source), source_seconds=4.0))
            made = await pool.submit(remix)
            assert where(pool, made.remote_id) == server_key(full.base_url)
            assert plain.submits == []
            status = await poll_until_final(pool, made.remote_id)
            assert status.state == RemoteState.SUCCEEDED
            got = await pool.download(
                status.output_url or "", tmp_path / "remix.mp3", max_bytes=10**7
            )
            assert got.size > 0


async def test_none_can_make_it_is_said(tmp_path: Path) -> None:
    async with (
        FakeAceStep(time_scale=SCALE, lm_model=None) as one,
        FakeAceStep(time_scale=SCALE, lm_model=None, task_types=("text2music",)) as two,
    ):
        async with pool_of(tmp_path, one, two) as pool:
            offered = await pool.refresh_capabilities()
            assert not offered.describes
            with pytest.raises(PermanentBackendError) as caught:
                await pool.submit(song(tags="", describe="a song about rain"))
            assert caught.value.code == "no_language_model"


async def test_an_old_plain_id_belongs_to_the_first_server(tmp_path: Path) -> None:
    async with FakeAceStep(time_scale=SCALE) as first, FakeAceStep(time_scale=SCALE) as second:
        async with httpx.AsyncClient() as before_the_pool:
            sent = await before_the_pool.post(
                f"{first.base_url}/release_task", json={"prompt": "x", "audio_duration": 10}
            )
        plain_id = sent.json()["data"]["task_id"]
        async with pool_of(tmp_path, first, second) as pool:
            status = await poll_until_final(pool, plain_id)
        assert status.state == RemoteState.SUCCEEDED
