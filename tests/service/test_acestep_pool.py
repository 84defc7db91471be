"""Songs on a pool of ACE-Step servers (#20), worker and all: a server killed with songs in
flight has them made on another, one track each, without anyone asking again; once it is
back it gets songs again; a server that restarts (forgetting its queue) likewise."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.backends.acestep_pool import AceStepPool
from bot.backends.acestep_routing import server_key, server_of
from bot.domain import Destination, JobState
from bot.service import Accepted, Requester
from tests.fakes.acestep import FakeAceStep
from tests.harness import RecordingDelivery, acestep_settings, running_core, wait_for_job
from tests.kit.metrics import rendered, value

ALICE = Requester("telegram", "111", "alice")
BOB = Requester("telegram", "222", "bob")
SCALE = 0.04
IN_FLIGHT = {JobState.SUBMITTED, JobState.RUNNING}


async def _submit(core, requester: Requester) -> Accepted:  # type: ignore[no-untyped-def]
    request = core.service.validate(tags="lo-fi", duration=10)
    destination = Destination(requester.platform, "chat-1", requester.user_id)
    accepted = await core.service.submit(requester, destination, request)
    assert isinstance(accepted, Accepted)
    return accepted


async def _probe_due(pool: object, url: str) -> None:
    """Until the pool's next look at the server (its back-off after the failures) is due."""
    assert isinstance(pool, AceStepPool)
    member = pool.member(server_key(url))
    async with asyncio.timeout(5):
        while not (member.in_rotation or member.probe_due(time.monotonic())):
            await asyncio.sleep(0.02)


async def test_a_killed_server_s_songs_finish_on_another_once(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with (
        FakeAceStep(time_scale=SCALE, runtime=10) as dies,
        FakeAceStep(time_scale=SCALE, runtime=10) as lives,
    ):
        urls = [dies.base_url, lives.base_url]
        settings = acestep_settings(
            tmp_path,
            ",".join(urls),
            acestep_max_concurrency=2,
            acestep_failover_seconds=0.3,
        )
        async with running_core(settings, [chat]) as core:
            songs = [await _submit(core, who) for who in (ALICE, BOB, ALICE, BOB)]
            sent = [await wait_for_job(core, s.job.id, IN_FLIGHT) for s in songs]
            on_dying = [
                j.id for j in sent if (server_of(j.remote_id, urls) or ("", ""))[1] == urls[0]
            ]
            assert len(on_dying) == 2  # two each: equally loaded servers share the work
            await dies.crash()
            done = [await wait_for_job(core, s.job.id, {JobState.DELIVERED}) for s in songs]
            # One track per song, each made by the server that lived.
            assert sorted(job_id for job_id, _ in chat.delivered) == sorted(j.id for j in done)
            assert {(server_of(j.remote_id, urls) or ("", ""))[1] for j in done} == {urls[1]}
            for job_id in on_dying:
                assert chat.kinds(job_id).count("failed") == 0
            # Back again: it takes songs again.
            await dies.come_back()
            await _probe_due(core.backend, urls[0])
            later = [await _submit(core, who) for who in (ALICE, BOB)]
            made = [await wait_for_job(core, s.job.id, {JobState.DELIVERED}) for s in later]
        assert urls[0] in {(server_of(j.remote_id, urls) or ("", ""))[1] for j in made}
        assert dies.completed_at  # it made some of them


async def test_a_restarted_server_s_songs_are_made_again_elsewhere(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with (
        FakeAceStep(time_scale=SCALE, runtime=40) as restarts,
        FakeAceStep(time_scale=SCALE, runtime=40) as steady,
    ):
        urls = [restarts.base_url, steady.base_url]
        settings = acestep_settings(tmp_path, ",".join(urls), acestep_max_concurrency=2)
        async with running_core(settings, [chat]) as core:
            songs = [await _submit(core, who) for who in (ALICE, BOB)]
            sent = [await wait_for_job(core, s.job.id, IN_FLIGHT) for s in songs]
            assert {(server_of(j.remote_id, urls) or ("", ""))[1] for j in sent} == set(urls)
            restarts.restart()  # both of its songs' tasks forgotten: "queued" for ever
            done = [await wait_for_job(core, s.job.id, {JobState.DELIVERED}) for s in songs]
            samples = await rendered(core.metrics)
    # The metrics count each server's calls under its key.
    for url in urls:
        labels = {"server": server_key(url), "route": "release_task", "code": "200"}
        assert value(samples, "acejam_acestep_server_requests_total", **labels) >= 1
    assert sorted(job_id for job_id, _ in chat.delivered) == sorted(j.id for j in done)
    assert len(chat.delivered) == 2
