"""A song's whole life through the service and worker, against loopback backends."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from bot.app import open_core
from bot.domain import Destination, JobState
from bot.errors import DeliveryUnavailable
from bot.service import Accepted, Refused, Requester
from bot.worker.loop import CLAIM_BATCH
from storage.db import create_engine
from tests.fakes.acestep import FakeAceStep
from tests.fakes.audio import probe_audio
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import (
    WAVESPEED_KEY,
    RecordingDelivery,
    acestep_settings,
    running_core,
    wait_for_job,
    wavespeed_settings,
)
from tests.kit.audit import audit

ALICE = Requester("telegram", "111", "alice")
BOB = Requester("telegram", "222", "bob")


def _dest(requester: Requester, chat: str = "chat-1") -> Destination:
    return Destination(requester.platform, chat, requester.user_id)


async def _submit(core, requester=ALICE, tags="lo-fi, chill", duration=20, seed=None, key=None):  # type: ignore[no-untyped-def]
    request = core.service.validate(tags=tags, duration=duration, seed=seed)
    outcome = await core.service.submit(requester, _dest(requester), request, idempotency_key=key)
    assert isinstance(outcome, Accepted), outcome
    return outcome


async def test_wavespeed_song_is_made_and_delivered_once(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        async with running_core(wavespeed_settings(tmp_path, fake.base_url), [chat]) as core:
            accepted = await _submit(core, duration=20, seed=1234)
            assert accepted.position == 1
            job = await wait_for_job(core, accepted.job.id, {JobState.DELIVERED})
            quota = await core.service.quota(ALICE)
    assert len(fake.submits) == 1
    assert fake.submits[0]["seed"] == 1234 and fake.submits[0]["duration"] == 20
    assert job.seed_used == 1234
    assert chat.delivered == [(job.id, Path(job.audio_path or ""))]
    duration, _, _ = probe_audio(Path(job.audio_path or ""))
    assert abs(duration - 20) <= 0.1
    assert chat.kinds(job.id)[0] == "started" and "succeeded" in chat.kinds(job.id)
    assert quota.used_seconds == 20  # charged


async def test_a_random_seed_is_chosen_and_recorded_before_submit(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        async with running_core(
            wavespeed_settings(tmp_path, fake.base_url), [RecordingDelivery()]
        ) as core:
            accepted = await _submit(core)
            job = await wait_for_job(core, accepted.job.id, {JobState.DELIVERED})
    assert 0 <= fake.submits[0]["seed"] <= 2_147_483_647
    assert job.seed_used == fake.submits[0]["seed"]


async def test_acestep_song_with_one_take_and_batched_polls(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeAceStep(time_scale=0.04) as fake:
        settings = acestep_settings(tmp_path, fake.base_url, acestep_max_concurrency=2)
        async with running_core(settings, [chat]) as core:
            first = await _submit(core, ALICE, duration=30, seed=7)
            second = await _submit(core, BOB, duration=15)
            jobs = [
                await wait_for_job(core, j.job.id, {JobState.DELIVERED}) for j in (first, second)
            ]
    assert [s["batch_size"] for s in fake.submits] == [1, 1]
    assert fake.submits[0]["use_random_seed"] is False and fake.submits[0]["seed"] == 7
    assert jobs[0].seed_used == 7
    for job, asked in zip(jobs, (30, 15), strict=True):
        assert abs(probe_audio(Path(job.audio_path or ""))[0] - asked) <= 0.1
    # While both ran, single /query_result calls covered both ids.
    assert any(len(ids) == 2 for ids, _ in fake.query_calls)


async def test_upstream_failure_refunds_and_tells_the_user(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add_job(fail="GPU fell over")
        async with running_core(wavespeed_settings(tmp_path, fake.base_url), [chat]) as core:
            accepted = await _submit(core, duration=30)
            job = await wait_for_job(core, accepted.job.id, {JobState.FAILED})
            quota = await core.service.quota(ALICE)
    assert job.error_code == "upstream_failed"
    assert quota.used_seconds == 0
    failed = [e for e in chat.events if e.kind.value == "failed"]
    assert len(failed) == 1 and "quota has been given back" in (failed[0].message or "")
    assert chat.delivered == []


async def test_poll_errors_are_ridden_out_without_resubmitting(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add("poll", status=503, times=2)
        fake.faults.add("poll", status=429, times=1)
        fake.faults.add("poll", malformed=True, times=1)
        async with running_core(
            wavespeed_settings(tmp_path, fake.base_url), [RecordingDelivery()]
        ) as core:
            accepted = await _submit(core)
            await wait_for_job(core, accepted.job.id, {JobState.DELIVERED})
    assert len(fake.submits) == 1


async def test_an_ambiguous_submit_is_never_resent(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        # Upstream creates the prediction but answers after our 1 s timeout.
        fake.faults.add("submit", processed=True, delay_response=3.0)
        settings = wavespeed_settings(tmp_path, fake.base_url, http_timeout_seconds=1.0)
        async with running_core(settings, [chat]) as core:
            accepted = await _submit(core, duration=30)
            job = await wait_for_job(core, accepted.job.id, {JobState.FAILED})
            quota = await core.service.quota(ALICE)
    assert job.error_code == "submit_uncertain"
    assert len(fake.submits) == 1
    assert quota.used_seconds == 0
    # It may be running upstream, billed: the month's spending keeps counting it.
    assert job.cost_usd == accepted.job.cost_usd > 0


async def test_a_song_whose_process_died_mid_submit_fails_but_keeps_its_cost(
    tmp_path: Path,
) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url)
        async with open_core(settings) as core:  # no worker: claimed by one that then died
            accepted = await _submit(core, duration=20)
            now = datetime.now(UTC)
            claimed = await core.store.claim_for_submit(
                "wavespeed", owner="gone:1", max_in_flight=1, lease_until=now, now=now
            )
        assert [j.id for j in claimed] == [accepted.job.id]
        async with running_core(settings, [chat]) as core:
            job = await wait_for_job(core, accepted.job.id, {JobState.FAILED})
            quota = await core.service.quota(ALICE)
    assert job.error_code == "submit_uncertain" and fake.submits == []  # never sent again
    assert quota.used_seconds == 0
    # It may be running upstream, billed: the month's spending keeps counting it.
    assert job.cost_usd == accepted.job.cost_usd > 0


async def test_a_refused_submit_is_retried_and_succeeds(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add("submit", status=429, times=2)
        async with running_core(
            wavespeed_settings(tmp_path, fake.base_url), [RecordingDelivery()]
        ) as core:
            accepted = await _submit(core)
            job = await wait_for_job(core, accepted.job.id, {JobState.DELIVERED})
    assert len(fake.predictions) == 1  # two refusals created nothing upstream
    assert job.attempts == 3


async def test_a_forgotten_acestep_task_fails_after_the_timeout(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeAceStep(time_scale=0.04) as fake:
        fake.faults.add_job(hang=True)
        settings = acestep_settings(tmp_path, fake.base_url, job_timeout_seconds=1.5)
        async with running_core(settings, [chat]) as core:
            accepted = await _submit(core, duration=20)
            await wait_for_job(core, accepted.job.id, {JobState.SUBMITTED, JobState.RUNNING})
            fake.restart()  # the server forgets it: status 0 forever
            job = await wait_for_job(core, accepted.job.id, {JobState.FAILED})
    assert job.error_code == "timeout"
    assert "never finished" in next(
        e.message or "" for e in chat.events if e.kind.value == "failed"
    )


async def test_restart_mid_job_finishes_it_once(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.runtime = 40.0  # 1.6 s real: long enough to stop the bot mid-job
        settings = wavespeed_settings(tmp_path, fake.base_url)
        async with running_core(settings) as core:
            accepted = await _submit(core, duration=20)
            await wait_for_job(core, accepted.job.id, {JobState.SUBMITTED, JobState.RUNNING})
        # A fresh process on the same database takes it up.
        async with running_core(settings, [chat]) as core:
            job = await wait_for_job(core, accepted.job.id, {JobState.DELIVERED})
    assert len(fake.submits) == 1
    assert chat.delivered == [(job.id, Path(job.audio_path or ""))]


async def test_finished_but_undelivered_is_delivered_after_restart(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url)
        async with running_core(settings) as core:  # no Telegram here: can't deliver
            accepted = await _submit(core)
            await wait_for_job(core, accepted.job.id, {JobState.SUCCEEDED})
        chat = RecordingDelivery(fail_first=1)
        async with running_core(settings, [chat]) as core:
            job = await wait_for_job(core, accepted.job.id, {JobState.DELIVERED})
    assert [d[0] for d in chat.delivered] == [job.id]
    assert len(fake.submits) == 1


async def test_duplicate_event_and_quota_refusal(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url, quota_seconds_per_day=50)
        async with running_core(settings, [RecordingDelivery()]) as core:
            first = await _submit(core, duration=30, key="tg:1")
            again = await _submit(core, duration=30, key="tg:1")
            request = core.service.validate(tags="rock", duration=30)
            refused = await core.service.submit(ALICE, _dest(ALICE), request)
            await wait_for_job(core, first.job.id, {JobState.DELIVERED})
    assert again.duplicate and again.job.id == first.job.id
    assert isinstance(refused, Refused) and refused.code == "quota"
    assert "20 s of your daily 50 s left" in refused.message
    assert len(fake.submits) == 1


async def test_cancel_a_queued_song_gives_the_quota_back(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url, wavespeed_max_concurrency=1)
        fake.runtime = 1000.0
        async with running_core(settings, [chat]) as core:
            busy = await _submit(core, BOB, duration=10)
            await wait_for_job(core, busy.job.id, {JobState.SUBMITTED, JobState.RUNNING})
            waiting = await _submit(core, ALICE, duration=30)
            assert waiting.position == 1
            other = await core.service.cancel(waiting.job.id, BOB)
            done = await core.service.cancel(waiting.job.id, ALICE)
            quota = await core.service.quota(ALICE)
            running = await core.service.cancel(busy.job.id, BOB)
    assert isinstance(other, Refused) and other.code == "forbidden"
    assert not isinstance(done, Refused) and done.job.state == JobState.CANCELLED
    assert quota.used_seconds == 0
    assert not isinstance(running, Refused)
    assert len(fake.submits) == 1
    assert "cancelled" in chat.kinds(waiting.job.id)


async def test_a_cut_off_download_is_fetched_again(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add("download", truncate=True, times=1)
        async with running_core(
            wavespeed_settings(tmp_path, fake.base_url), [RecordingDelivery()]
        ) as core:
            accepted = await _submit(core, duration=10)
            job = await wait_for_job(core, accepted.job.id, {JobState.DELIVERED})
    assert len(fake.downloads) == 2 and len(fake.submits) == 1
    assert abs(probe_audio(Path(job.audio_path or ""))[0] - 10) <= 0.1


async def test_an_output_on_a_foreign_host_is_refused(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add_job(output_url="http://169.254.169.254/latest/meta-data/x.mp3")
        async with running_core(wavespeed_settings(tmp_path, fake.base_url), [chat]) as core:
            accepted = await _submit(core, duration=10)
            job = await wait_for_job(core, accepted.job.id, {JobState.FAILED})
            quota = await core.service.quota(ALICE)
    assert job.error_code == "download_refused"
    assert quota.used_seconds == 0
    assert list((tmp_path / "audio").iterdir()) == []


async def test_old_delivered_audio_is_removed_undelivered_is_kept(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url, audio_retention_days=30)
        async with running_core(settings, [RecordingDelivery()]) as core:
            delivered = await wait_for_job(
                core, (await _submit(core, ALICE)).job.id, {JobState.DELIVERED}
            )
        async with running_core(settings) as core:  # no chat: this one stays undelivered
            waiting = await wait_for_job(
                core, (await _submit(core, BOB)).job.id, {JobState.SUCCEEDED}
            )
        long_ago = time.time() - 31 * 24 * 3600
        for job in (delivered, waiting):
            os.utime(job.audio_path or "", (long_ago, long_ago))
        async with running_core(settings):  # the sweep runs at start
            async with asyncio.timeout(10):
                while Path(delivered.audio_path or "").exists():
                    await asyncio.sleep(0.05)
    assert Path(waiting.audio_path or "").exists()


async def test_waiting_songs_hear_when_the_line_moves(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.runtime = 25.0  # 1 s: the line stays put while the others join
        settings = wavespeed_settings(tmp_path, fake.base_url, wavespeed_max_concurrency=1)
        async with running_core(settings, [chat]) as core:
            users = [Requester("telegram", str(n)) for n in range(3)]
            first = await _submit(core, users[0], duration=10)
            await wait_for_job(core, first.job.id, {JobState.SUBMITTED, JobState.RUNNING})
            jobs = [first] + [await _submit(core, u, duration=10) for u in users[1:]]
            assert [j.position for j in jobs][1:] == [1, 2]
            await wait_for_job(core, jobs[2].job.id, {JobState.DELIVERED})
    third = [
        e.position for e in chat.events if e.job.id == jobs[2].job.id and e.kind.value == "queued"
    ]
    assert third[-1] == 1  # moved up from 2 once the second song started


async def test_a_stopping_adapter_leaves_the_song_for_later(tmp_path: Path) -> None:
    class Stopping(RecordingDelivery):
        async def deliver(self, job, tracks):  # type: ignore[no-untyped-def]
            raise DeliveryUnavailable("shutting down")

    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url)
        async with running_core(settings, [Stopping()]) as core:
            accepted = await _submit(core, duration=10)
            await wait_for_job(core, accepted.job.id, {JobState.SUCCEEDED})
            events = await audit(core).events(accepted.job.id)
        chat = RecordingDelivery()
        async with running_core(settings, [chat]) as core:
            job = await wait_for_job(core, accepted.job.id, {JobState.DELIVERED})
    assert ("running", "succeeded", None) in events or ("submitted", "succeeded", None) in events
    assert [d[0] for d in chat.delivered] == [job.id]


async def test_corrupt_or_empty_output_fails_and_refunds(tmp_path: Path) -> None:
    from aiohttp import web

    mp3_head = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" + bytes(range(256)) * 40

    async def serve(request: web.Request) -> web.Response:
        body = b"" if request.match_info["name"] == "empty.mp3" else mp3_head
        return web.Response(body=body, content_type="audio/mpeg")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    chat = RecordingDelivery()
    try:
        async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
            fake.faults.add_job(output_url=f"http://127.0.0.1:{port}/corrupt.mp3")
            fake.faults.add_job(output_url=f"http://127.0.0.1:{port}/empty.mp3")
            settings = wavespeed_settings(
                tmp_path,
                fake.base_url,
                max_active_jobs_per_user=3,
                download_allowed_hosts=[f"127.0.0.1:{port}"],  # a private host, listed
            )
            async with running_core(settings, [chat]) as core:
                corrupt = await _submit(core, duration=10)
                empty = await _submit(core, duration=10)
                jobs = [
                    await wait_for_job(core, j.job.id, {JobState.FAILED}) for j in (corrupt, empty)
                ]
                quota = await core.service.quota(ALICE)
    finally:
        await runner.cleanup()
    assert [j.error_code for j in jobs] == ["bad_audio", "empty_audio"]
    assert quota.used_seconds == 0
    failed = [e.message or "" for e in chat.events if e.kind.value == "failed"]
    assert len(failed) == 2 and all("quota has been given back" in m for m in failed)
    assert chat.delivered == []


async def test_song_numbers_out_of_range_are_no_such_song(
    tmp_path: Path, database_url: str
) -> None:
    # /cancel 3000000000 (past a 32-bit id) and numbers past 64 bits: "no such song", on both
    # databases, for the owner's commands and the admin's alike.
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url, database_url=database_url)
        async with running_core(settings, [RecordingDelivery()]) as core:
            operator = Requester("telegram", "op", is_admin=True, admin_scope="*")
            for number in (3_000_000_000, 2**63, 10**19, 10**40, 0, -5):
                cancelled = await core.service.cancel(number, ALICE)
                rerolled = await core.service.reroll(number, ALICE, same_seed=False)
                by_admin = await core.admin.cancel(number, operator)
                assert isinstance(cancelled, Refused) and cancelled.code == "not_found"
                assert isinstance(rerolled, Refused) and rerolled.code == "not_found"
                assert isinstance(by_admin, Refused) and by_admin.code == "not_found"
                assert await core.service.get_job(number) is None
                assert await core.admin.job(number) is None
                assert await core.service.set_context(number, status_message=1) is None


async def test_old_job_events_are_pruned_by_the_retention_sweep(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url, event_retention_days=30)
        async with running_core(settings, [RecordingDelivery()]) as core:
            old = await wait_for_job(
                core, (await _submit(core, ALICE)).job.id, {JobState.DELIVERED}
            )
            assert len(await audit(core).events(old.id)) >= 4
        engine = create_engine(settings.resolved_database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text("UPDATE job_events SET at = :then"),
                    {"then": datetime.now(UTC) - timedelta(days=31)},
                )
        finally:
            await engine.dispose()
        async with running_core(settings) as core:  # the sweep runs at start
            async with asyncio.timeout(10):
                while await audit(core).events(old.id):
                    await asyncio.sleep(0.05)
            kept = await core.store.get(old.id)
            balance = await audit(core).ledger_balance(old.user_id)
            quota = await core.service.quota(ALICE)
    assert kept is not None and kept.state == JobState.DELIVERED
    assert balance == {"reserve": 20, "commit": 20}
    assert quota.used_seconds == 20


async def test_a_burst_bigger_than_one_claim_is_sent_at_once_in_shares(tmp_path: Path) -> None:
    """One claim takes at most CLAIM_BATCH songs, so workers share a burst (one that took
    every free slot left the others idle); while more wait, the worker claims again 50 ms
    on, not at the next lease round (here 200 s away)."""
    burst = 3 * CLAIM_BATCH + 2
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add_job(hang=True, times=None)  # nothing ends: no finish wakes a claim
        settings = wavespeed_settings(
            tmp_path,
            fake.base_url,
            lease_seconds=600,
            wavespeed_max_concurrency=100,
            max_active_jobs_per_user=100,
            max_active_jobs_per_chat=100,
        )
        async with open_core(settings, generates=False) as core:  # all queued first
            for n in range(burst):
                who = Requester("telegram", str(n % 7), f"user {n % 7}")
                request = core.service.validate(tags=f"burst {n}", duration=10)
                queued = await core.service.submit(who, _dest(who), request, enforce_quota=False)
                assert isinstance(queued, Accepted)
        async with running_core(settings):
            async with asyncio.timeout(20):
                while len(fake.submits) < burst:
                    await asyncio.sleep(0.05)
        engine = create_engine(settings.resolved_database_url)
        try:
            async with engine.connect() as connection:
                claims = (
                    await connection.execute(
                        text(
                            "SELECT count(*) FROM job_events WHERE to_state = 'submitting' "
                            "GROUP BY at"  # one claim: one moment for all it took
                        )
                    )
                ).scalars()
                sizes = sorted(claims)
        finally:
            await engine.dispose()
    assert sum(sizes) == burst and max(sizes) <= CLAIM_BATCH and len(sizes) >= 4
