"""GET /metrics on the bot's listener, as Prometheus scrapes it: the counters move through
songs' lives on the WaveSpeed fake (one waits in line, is cancelled or delivered; two are
refused; on ACE-Step one fails and one is made, polled together), parsed with
prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import httpx
import pytest

from bot.app import run_bot, web_listener
from bot.domain import Destination, JobState
from bot.service import Accepted, Refused, Requester
from tests.fakes.acestep import FakeAceStep
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import (
    WAVESPEED_KEY,
    RecordingDelivery,
    acestep_settings,
    running_core,
    wait_for_job,
    wavespeed_settings,
)
from tests.kit.memory_core import Running
from tests.kit.metrics import scrape, value
from tests.kit.outage import database_outage

ALICE = Requester("telegram", "111", "alice")
BOB = Requester("telegram", "222", "bob")
WS = {"backend": "wavespeed"}
ACE = {"backend": "acestep"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _submit(core, requester: Requester, duration: int = 5):  # type: ignore[no-untyped-def]
    request = core.service.validate(tags="lo-fi", duration=duration)
    destination = Destination(requester.platform, "chat-1", requester.user_id)
    return await core.service.submit(requester, destination, request)


async def test_metrics_follow_songs_from_the_queue_to_the_chat(
    tmp_path: Path, running: Running
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(
            tmp_path,
            fake.base_url,
            web_listen=f"127.0.0.1:{port}",
            wavespeed_max_concurrency=1,  # the second song waits in line
            quota_seconds_per_day=30,
            poll_time_scale=0.01,  # polls as often as the fake allows: a fast test
        )
        fake.faults.add_job(hang=True)  # the first song never finishes upstream
        async with running(settings, [chat]) as core, web_listener(core):
            before = await scrape(base)
            first = await _submit(core, ALICE)
            second = await _submit(core, ALICE)
            assert isinstance(first, Accepted) and isinstance(second, Accepted)
            await wait_for_job(core, first.job.id, {JobState.RUNNING})
            # Two refused by the quota policy, by reason: Alice's third song, Bob's 60 s.
            assert (await _submit(core, ALICE)) == Refused(_ANY, "active_jobs")
            assert (await _submit(core, BOB, duration=60)) == Refused(_ANY, "quota")
            waiting = await scrape(base)

            cancelled = await core.service.cancel(first.job.id, ALICE)
            assert not isinstance(cancelled, Refused) and cancelled.job.state == "cancelled"
            delivered = await wait_for_job(core, second.job.id, {JobState.DELIVERED})
            # The chat was told before the job was recorded delivered: wait for the record.
            async with asyncio.timeout(5):
                while value(after := await scrape(base), "acejam_delivery_seconds_count", **WS) < 1:
                    await asyncio.sleep(0.02)

    # Before: nothing queued; the store answered.
    assert value(before, "acejam_store_up") == 1
    assert value(before, "acejam_queue_length", **WS) == 0
    # While the first song runs upstream, the second waits in line.
    assert value(waiting, "acejam_jobs", state="running", **WS) == 1
    assert value(waiting, "acejam_jobs", state="queued", **WS) == 1
    assert value(waiting, "acejam_queue_length", **WS) == 1
    assert value(waiting, "acejam_queue_oldest_age_seconds", **WS) >= 0
    assert value(waiting, "acejam_refusals_total", reason="active_jobs") == 1
    assert value(waiting, "acejam_refusals_total", reason="quota") == 1
    # After: nothing unfinished; one cancelled, one delivered, each counted once.
    assert value(after, "acejam_jobs", state="queued", **WS) == 0
    assert value(after, "acejam_jobs", state="running", **WS) == 0
    assert value(after, "acejam_jobs_finished_total", outcome="cancelled", **WS) == 1
    assert value(after, "acejam_jobs_finished_total", outcome="delivered", **WS) == 1
    assert value(after, "acejam_delivery_seconds_count", **WS) == 1
    took = (delivered.updated_at - delivered.created_at).total_seconds()
    assert abs(value(after, "acejam_delivery_seconds_sum", **WS) - took) < 0.01
    # Both reached WaveSpeed, so both are billed: 5 s each at the default price.
    assert abs(value(after, "acejam_cost_usd_total", **WS) - 2 * 5 * 0.0003) < 1e-9
    # Upstream calls by route and answer; the ids in the URLs are never a label.
    assert value(after, "acejam_upstream_requests_total", route="submit", code="200", **WS) == 2
    polls = value(after, "acejam_upstream_requests_total", route="result", code="200", **WS)
    assert 2 <= polls <= len(fake.polls)
    assert value(after, "acejam_upstream_request_seconds_count", route="result", **WS) == polls
    assert not [key for key in after if any(p.id in str(key) for p in fake.predictions.values())]
    # Every poll belongs to one of the two jobs that ended.
    assert value(after, "acejam_polls_per_job_count", **WS) == 2
    assert 2 <= value(after, "acejam_polls_per_job_sum", **WS) <= polls
    # The song came down once and went up to the chat once.
    track = Path(delivered.audio_path or "")
    assert value(after, "acejam_download_seconds_count", outcome="ok", **WS) == 1
    assert value(after, "acejam_download_bytes_total", **WS) > 0
    assert value(after, "acejam_upload_seconds_count", platform="telegram") == 1
    assert value(after, "acejam_upload_bytes_total", platform="telegram") == track.stat().st_size
    assert chat.delivered == [(second.job.id, track)]


class _Anything(str):
    """Equal to any sentence: the refusals' wording is tested elsewhere."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    __hash__ = str.__hash__


_ANY = _Anything()


async def test_acestep_calls_are_counted_by_route_and_batched_polls_per_job(
    tmp_path: Path, running: Running
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    chat = RecordingDelivery()
    async with FakeAceStep(time_scale=0.04) as fake:
        fake.faults.add_job(fail=True)  # the first song fails upstream
        settings = acestep_settings(
            tmp_path, fake.base_url, web_listen=f"127.0.0.1:{port}", acestep_max_concurrency=2
        )
        async with running(settings, [chat]) as core, web_listener(core):
            failed, made = await _submit(core, ALICE, 10), await _submit(core, BOB, 10)
            assert isinstance(failed, Accepted) and isinstance(made, Accepted)
            await wait_for_job(core, failed.job.id, {JobState.FAILED})
            await wait_for_job(core, made.job.id, {JobState.DELIVERED})
            async with asyncio.timeout(5):
                while value(after := await scrape(base), "acejam_polls_per_job_count", **ACE) < 2:
                    await asyncio.sleep(0.02)
    assert value(after, "acejam_jobs_finished_total", outcome="failed", **ACE) == 1
    assert value(after, "acejam_jobs_finished_total", outcome="delivered", **ACE) == 1
    assert value(after, "acejam_cost_usd_total", **ACE) == 0  # our own GPU: nothing billed
    assert (
        value(after, "acejam_upstream_requests_total", route="release_task", code="200", **ACE) == 2
    )
    queries = value(
        after, "acejam_upstream_requests_total", route="query_result", code="200", **ACE
    )
    assert 1 <= queries <= len(fake.query_calls)
    # A query may ask about both songs at once: it counts as a poll of each.
    asked = sum(len(ids) for ids, _ in fake.query_calls)
    assert 2 <= value(after, "acejam_polls_per_job_sum", **ACE) <= asked
    assert value(after, "acejam_download_seconds_count", outcome="ok", **ACE) == 1
    assert value(after, "acejam_delivery_seconds_count", **ACE) == 1


@pytest.mark.postgres
async def test_a_scrape_answers_while_the_database_is_away(
    tmp_path: Path, postgres_url: str
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    async with FakeWaveSpeed(api_key=WAVESPEED_KEY) as ws:
        settings = wavespeed_settings(
            tmp_path, ws.base_url, web_listen=f"127.0.0.1:{port}", database_url=postgres_url
        )
        async with running_core(settings) as core, web_listener(core):
            before = await scrape(base)
            async with database_outage(postgres_url):
                during = await scrape(base)
            after = await scrape(base)
    assert value(before, "acejam_store_up") == 1
    assert value(before, "acejam_queue_length", **WS) == 0
    # The store's gauges are left out rather than shown as 0; the scrape itself answers.
    assert value(during, "acejam_store_up") == 0
    assert not [name for name, _ in during if name.startswith(("acejam_jobs", "acejam_queue"))]
    assert value(after, "acejam_store_up") == 1


async def test_acejam_run_serves_metrics_on_web_listen(tmp_path: Path) -> None:
    port = _free_port()
    async with FakeTelegram() as tg, FakeWaveSpeed(api_key=WAVESPEED_KEY) as ws:
        settings = wavespeed_settings(
            tmp_path,
            ws.base_url,
            web_listen=f"127.0.0.1:{port}",
            telegram_token=tg.token,
            telegram_api_base_url=tg.base_url,
        )
        stop = asyncio.Event()
        bot = asyncio.create_task(run_bot(settings, stop))
        try:
            async with asyncio.timeout(30):
                while True:
                    with contextlib.suppress(httpx.ConnectError):  # not listening yet
                        samples = await scrape(f"http://127.0.0.1:{port}")
                        break
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await bot
    assert value(samples, "acejam_store_up") == 1
    assert value(samples, "acejam_queue_length", **WS) == 0
