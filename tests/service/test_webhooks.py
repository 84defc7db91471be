"""WaveSpeed webhooks: finished songs are noticed at once, without polling; forged or
replayed deliveries are refused."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.app import webhook_receiver
from bot.domain import Destination, JobState
from bot.service import Accepted, Requester
from bot.webhooks import verify_signature
from tests.fakes.wavespeed import FakeWaveSpeed, sign_webhook
from tests.harness import (
    WAVESPEED_KEY,
    RecordingDelivery,
    wait_for_job,
    wavespeed_settings,
)
from tests.kit.memory_core import Running

ALICE = Requester("telegram", "111", "alice")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_webhook_delivers_without_polling(tmp_path: Path, running: Running) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/hooks/wavespeed"
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.runtime = 10.0
        settings = wavespeed_settings(
            tmp_path,
            fake.base_url,
            wavespeed_webhook_url=url,
            wavespeed_webhook_listen=f"127.0.0.1:{port}",
        )
        async with running(settings, [chat]) as core, webhook_receiver(core):
            request = core.service.validate(tags="lo-fi", duration=10)
            outcome = await core.service.submit(ALICE, Destination("telegram", "c", "111"), request)
            assert isinstance(outcome, Accepted)
            job = await wait_for_job(core, outcome.job.id, {JobState.DELIVERED})
            noticed = time.monotonic()
    remote = job.remote_id or ""
    assert fake.polls == []  # the safety-net poll never had to run
    assert [d.status for d in fake.webhook_deliveries] == [204]
    assert noticed - fake.completed_at[remote] < 2.0  # download and delivery included
    assert chat.delivered and chat.delivered[0][0] == job.id


async def test_without_the_webhook_secret_songs_are_polled_until_it_can_be_fetched(
    tmp_path: Path, running: Running
) -> None:
    """WaveSpeed won't hand over the signing secret at start-up: the bot starts anyway, polls
    at its usual pace meanwhile, and uses webhooks once a retry gets the secret."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/hook"
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add("secret", status=503, times=None)
        # A slower poll clock than elsewhere, so the safety net's pace (first poll after
        # ~6 s here) and the usual one (every 0.4 s) can't be mistaken for each other.
        settings = wavespeed_settings(
            tmp_path,
            fake.base_url,
            wavespeed_webhook_url=url,
            wavespeed_webhook_listen=f"127.0.0.1:{port}",
            poll_time_scale=0.2,
        )
        async with running(settings, [chat]) as core, webhook_receiver(core):
            request = core.service.validate(tags="lo-fi", duration=10)
            first = await core.service.submit(ALICE, Destination("telegram", "c", "111"), request)
            assert isinstance(first, Accepted)
            polled = await wait_for_job(core, first.job.id, {JobState.DELIVERED})
            polled_noticed = time.monotonic()
            fake.faults.clear()  # WaveSpeed hands the secret over from now on
            async with asyncio.timeout(30):
                while not core.backend.uses_webhook:  # type: ignore[attr-defined]
                    await asyncio.sleep(0.05)
            second = await core.service.submit(
                ALICE, Destination("telegram", "c", "111"), request, idempotency_key="2"
            )
            assert isinstance(second, Accepted)
            pushed = await wait_for_job(core, second.job.id, {JobState.DELIVERED})
    assert polled_noticed - fake.completed_at[polled.remote_id or ""] < 3.0
    assert [d.status for d in fake.webhook_deliveries] == [503, 204]
    assert [p for p, _ in fake.polls if p == pushed.remote_id] == []  # the webhook sufficed
    assert [d[0] for d in chat.delivered] == [polled.id, pushed.id]


async def test_forged_and_replayed_webhooks_are_refused(tmp_path: Path, running: Running) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/hook"
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(
            tmp_path,
            fake.base_url,
            wavespeed_webhook_url=url,
            wavespeed_webhook_listen=f"127.0.0.1:{port}",
        )
        async with running(settings) as core, webhook_receiver(core):
            body = json.dumps(
                {"id": "p1", "status": "completed", "outputs": ["http://x/y.mp3"]}
            ).encode()
            now = str(int(time.time()))
            stale = str(int(time.time()) - 600)
            async with httpx.AsyncClient() as client:
                forged = await client.post(
                    url,
                    content=body,
                    headers={
                        "webhook-id": "m1",
                        "webhook-timestamp": now,
                        "webhook-signature": sign_webhook("whsec_wrong", "m1", now, body),
                    },
                )
                replayed = await client.post(
                    url,
                    content=body,
                    headers={
                        "webhook-id": "m1",
                        "webhook-timestamp": stale,
                        "webhook-signature": sign_webhook(fake.webhook_secret, "m1", stale, body),
                    },
                )
                good = await client.post(
                    url,
                    content=body,
                    headers={
                        "webhook-id": "m1",
                        "webhook-timestamp": now,
                        "webhook-signature": sign_webhook(fake.webhook_secret, "m1", now, body),
                    },
                )
    assert forged.status_code == 401 and replayed.status_code == 401
    assert good.status_code == 204  # unknown prediction: accepted and ignored


def test_signature_checks_are_exact() -> None:
    body = b'{"id":"p"}'
    headers = {
        "webhook-id": "m",
        "webhook-timestamp": "1000",
        "webhook-signature": sign_webhook("s", "m", "1000", body),
    }
    assert verify_signature("s", headers, body, now=1000)
    assert not verify_signature("s", headers, body + b" ", now=1000)
    assert not verify_signature("s", headers, body, now=1301)
    assert not verify_signature("s", {**headers, "webhook-signature": "v1,abc"}, body, now=1000)


async def test_malformed_webhook_headers_are_a_400_never_a_500(
    tmp_path: Path, running: Running
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/hook"
    body = json.dumps({"id": "p1", "status": "completed", "outputs": []}).encode()
    now = str(int(time.time()))
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(
            tmp_path,
            fake.base_url,
            wavespeed_webhook_url=url,
            wavespeed_webhook_listen=f"127.0.0.1:{port}",
        )
        good = {
            "webhook-id": "m1",
            "webhook-timestamp": now,
            "webhook-signature": sign_webhook(fake.webhook_secret, "m1", now, body),
        }
        malformed = [
            {**good, "webhook-timestamp": "9" * 5000},
            {**good, "webhook-timestamp": "-1"},
            {**good, "webhook-timestamp": "1.5e9"},
            {**good, "webhook-signature": "v3," + "é" * 64},  # sent as UTF-8
            {**good, "webhook-signature": "garbage"},
            {**good, "webhook-id": ""},
            {k: v for k, v in good.items() if k != "webhook-timestamp"},
            {k: v for k, v in good.items() if k != "webhook-signature"},
        ]
        async with running(settings) as core, webhook_receiver(core):
            async with httpx.AsyncClient() as client:
                answers = [
                    (await client.post(url, content=body, headers=_raw(headers))).status_code
                    for headers in malformed
                ]
                accepted = await client.post(url, content=body, headers=good)
    assert answers == [400] * len(malformed)
    assert accepted.status_code == 204


def _raw(headers: dict[str, str]) -> dict[bytes, bytes]:
    return {name.encode(): value.encode() for name, value in headers.items()}


@settings(max_examples=200, deadline=None)
@given(
    webhook_id=st.text(max_size=300),
    timestamp=st.one_of(st.text(max_size=30), st.text(alphabet="0123456789", max_size=6000)),
    signature=st.text(max_size=300),
)
def test_signature_checks_never_raise(webhook_id: str, timestamp: str, signature: str) -> None:
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
    }
    assert verify_signature("s", headers, b"{}", now=time.time()) is False
