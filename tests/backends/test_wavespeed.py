"""WaveSpeedBackend against the loopback WaveSpeed fake: real HTTP, real audio, real faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.backends.wavespeed import WaveSpeedBackend
from bot.domain import GenerationRequest
from bot.errors import (
    PermanentBackendError,
    SubmitUncertain,
    TransientBackendError,
)
from bot.ports import RemoteState
from tests.fakes.wavespeed import FakeWaveSpeed, sign_webhook
from tests.kit.backends import (
    WS_KEY,
    DownloadsFor,
    assert_secret_absent,
    poll_until_final,
    poll_until_state,
)

SONG = GenerationRequest(tags="lo-fi, rainy piano", lyrics="[Verse]\nla la", duration=10, seed=42)
MAX = 20_000_000


@pytest.fixture
def backend(
    http: httpx.AsyncClient, wavespeed: FakeWaveSpeed, downloads_for: DownloadsFor
) -> WaveSpeedBackend:
    return WaveSpeedBackend(
        http,
        api_key=WS_KEY,
        base_url=wavespeed.base_url,
        downloads=downloads_for(wavespeed.base_url),
    )


async def test_the_submitted_body_is_the_documented_one(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed
) -> None:
    task = await backend.submit(SONG)
    assert task.seed_used == 42
    assert wavespeed.submits == [
        {"tags": SONG.tags, "lyrics": SONG.lyrics, "duration": 10, "seed": 42}
    ]

    status = await poll_until_final(backend, task.remote_id)
    assert status.state is RemoteState.SUCCEEDED and status.output_url and not status.nsfw


async def test_a_random_seed_is_sent_as_minus_one_and_not_reported(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed
) -> None:
    task = await backend.submit(GenerationRequest(tags="jazz", duration=10))
    assert wavespeed.submits[0]["seed"] == -1 and task.seed_used is None


async def test_polling_shows_the_job_moving_from_pending_to_running(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed
) -> None:
    wavespeed.runtime = 40.0  # 0.8 s real: "created" for the first nominal second
    task = await backend.submit(SONG)
    first = (await backend.poll([task.remote_id]))[task.remote_id]
    assert first.state is RemoteState.PENDING
    await poll_until_state(backend, task.remote_id, (RemoteState.RUNNING,), within=2)


async def test_an_output_given_as_an_object_is_understood(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed
) -> None:
    wavespeed.faults.add_job(output_as_object=True)
    task = await backend.submit(SONG)
    status = await poll_until_final(backend, task.remote_id)
    assert status.output_url == wavespeed.output_url(task.remote_id)


async def test_a_failed_prediction_is_failed_with_its_reason_and_code(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed
) -> None:
    wavespeed.faults.add_job(fail="Content flagged by moderation", error_code=1200)
    task = await backend.submit(SONG)
    status = await poll_until_final(backend, task.remote_id)
    assert status.state is RemoteState.FAILED
    assert status.error_code == "1200"
    assert status.error_message and "Content flagged" in status.error_message


@pytest.mark.parametrize("terminal", ["timeout", "cancelled"])
async def test_other_terminal_statuses_are_failures(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed, terminal: str
) -> None:
    wavespeed.faults.add_job(fail="gave up", fail_status=terminal)
    task = await backend.submit(SONG)
    status = await poll_until_final(backend, task.remote_id)
    assert (status.state, status.error_code) == (RemoteState.FAILED, terminal)


async def test_nsfw_outputs_are_flagged(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed
) -> None:
    wavespeed.faults.add_job(nsfw=True)
    task = await backend.submit(SONG)
    status = await poll_until_final(backend, task.remote_id)
    assert status.state is RemoteState.SUCCEEDED and status.nsfw


async def test_a_poll_timeout_is_transient(
    wavespeed: FakeWaveSpeed,
    make_client: Callable[..., httpx.AsyncClient],
    downloads_for: DownloadsFor,
) -> None:
    async with make_client(read=0.2) as impatient:
        backend = WaveSpeedBackend(
            impatient,
            api_key=WS_KEY,
            base_url=wavespeed.base_url,
            downloads=downloads_for(wavespeed.base_url),
        )
        task = await backend.submit(SONG)
        wavespeed.faults.add("poll", delay=1.0)
        with pytest.raises(TransientBackendError):
            await backend.poll([task.remote_id])


async def test_one_failing_id_is_left_out_while_the_others_answer(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed
) -> None:
    good = await backend.submit(SONG)
    flaky = await backend.submit(SONG)
    wavespeed.faults.add("poll", status=503, about=flaky.remote_id)
    answer = await backend.poll([good.remote_id, flaky.remote_id])
    assert set(answer) == {good.remote_id}
    assert {pid for pid, _t in wavespeed.polls} == {good.remote_id, flaky.remote_id}


async def test_an_unknown_prediction_is_failed(backend: WaveSpeedBackend) -> None:
    answer = await backend.poll(["no-such-prediction"])
    status = answer["no-such-prediction"]
    assert (status.state, status.error_code) == (RemoteState.FAILED, "not_found")


async def test_a_poll_with_a_revoked_key_is_permanent(
    backend: WaveSpeedBackend,
    http: httpx.AsyncClient,
    wavespeed: FakeWaveSpeed,
    downloads_for: DownloadsFor,
) -> None:
    task = await backend.submit(SONG)
    revoked = WaveSpeedBackend(
        http,
        api_key="ws-revoked-key",
        base_url=wavespeed.base_url,
        downloads=downloads_for(wavespeed.base_url),
    )
    with pytest.raises(PermanentBackendError) as caught:
        await revoked.poll([task.remote_id])
    assert caught.value.code == "auth_failed"
    assert_secret_absent(caught.value, "ws-revoked-key")


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 502, "processed": True},
        {"status": 503},
        {"malformed": True},
        {"drop": True},
    ],
)
async def test_a_submit_answered_ambiguously_is_uncertain(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed, fault: dict[str, Any]
) -> None:
    wavespeed.faults.add("submit", **fault)
    with pytest.raises(SubmitUncertain):
        await backend.submit(SONG)
    assert len(wavespeed.submits) == 1


async def test_a_rate_limited_submit_is_transient_and_created_nothing(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed
) -> None:
    wavespeed.faults.add("submit", status=429)
    with pytest.raises(TransientBackendError):
        await backend.submit(SONG)
    assert wavespeed.predictions == {}


async def test_a_wrong_key_answer_keeps_the_upstream_reason(
    http: httpx.AsyncClient, wavespeed: FakeWaveSpeed, downloads_for: DownloadsFor
) -> None:
    backend = WaveSpeedBackend(
        http,
        api_key="ws-wrong-key",
        base_url=wavespeed.base_url,
        downloads=downloads_for(wavespeed.base_url),
    )
    with pytest.raises(PermanentBackendError) as caught:
        await backend.submit(SONG)
    assert caught.value.code == "auth_failed"
    assert "invalid or inactive API key" in caught.value.detail
    assert_secret_absent(caught.value, "ws-wrong-key")


async def test_a_key_echoed_back_by_upstream_is_scrubbed(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed
) -> None:
    wavespeed.faults.add("submit", status=403, message=f"key {WS_KEY} is suspended")
    with pytest.raises(PermanentBackendError) as caught:
        await backend.submit(SONG)
    assert "suspended" in caught.value.detail
    assert_secret_absent(caught.value, WS_KEY)


async def test_a_request_upstream_rejects_is_permanent_with_its_message(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed
) -> None:
    with pytest.raises(PermanentBackendError) as caught:
        await backend.submit(GenerationRequest(tags="rock", duration=300))
    assert caught.value.code == "invalid_request"
    assert "duration must be between 5 and 240" in caught.value.detail
    assert wavespeed.predictions == {}


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, asyncio.Queue[tuple[dict[str, str], bytes]]]]:
    received: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received
    await runner.cleanup()


async def test_a_webhook_url_is_sent_and_receives_a_signed_prediction(
    http: httpx.AsyncClient,
    wavespeed: FakeWaveSpeed,
    receiver: tuple[str, asyncio.Queue[tuple[dict[str, str], bytes]]],
    downloads_for: DownloadsFor,
) -> None:
    url, received = receiver
    backend = WaveSpeedBackend(
        http,
        api_key=WS_KEY,
        base_url=wavespeed.base_url,
        webhook_url=url,
        downloads=downloads_for(wavespeed.base_url),
    )
    task = await backend.submit(SONG)
    headers, body = await asyncio.wait_for(received.get(), 5)
    prediction = json.loads(body)
    assert prediction["id"] == task.remote_id and prediction["status"] == "completed"
    expected = sign_webhook(
        wavespeed.webhook_secret, headers["webhook-id"], headers["webhook-timestamp"], body
    )
    assert headers["webhook-signature"] == expected


async def test_the_fake_speaks_the_documented_envelopes(
    http: httpx.AsyncClient, wavespeed: FakeWaveSpeed
) -> None:
    submit_url = f"{wavespeed.base_url}/api/v3/wavespeed-ai/ace-step-1.5"
    auth = {"Authorization": f"Bearer {WS_KEY}"}
    no_tags = await http.post(submit_url, json={"duration": 30}, headers=auth)
    assert no_tags.status_code == 400 and no_tags.json()["message"] == "tags is required"
    wrong = await http.post(submit_url, json={"tags": "pop"}, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401 and wrong.json()["code"] == 401

    wavespeed.faults.add_job(fail="out of memory")
    created = (await http.post(submit_url, json={"tags": "pop"}, headers=auth)).json()
    assert created["data"]["status"] == "created"
    await wavespeed.wait_finished(created["data"]["id"])
    result = await http.get(created["data"]["urls"]["get"], headers=auth)
    assert result.status_code == 200 and result.json()["code"] == 200
    assert result.json()["data"]["status"] == "failed"
    assert result.json()["data"]["error"] == "out of memory"


def _answering(data: dict[str, Any], *, code: int = 200) -> httpx.AsyncClient:
    """A client whose every request gets this prediction back (parsing cases only)."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": code, "message": "m", "data": data})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("data", "state", "extra"),
    [
        (
            {"status": "completed", "outputs": ["https://x/a.mp3"], "has_nsfw_contents": True},
            RemoteState.SUCCEEDED,
            {"nsfw": True},
        ),
        (
            {"status": "completed", "outputs": [], "has_nsfw_contents": []},
            RemoteState.FAILED,
            {"error_code": "no_output"},
        ),
        (
            {"status": "failed", "error": "[5001] GPU lost"},
            RemoteState.FAILED,
            {"error_code": "5001"},
        ),
        ({"status": "failed", "error": None}, RemoteState.FAILED, {"error_code": "failed"}),
        ({"status": "warming-up"}, RemoteState.PENDING, {}),
        ({"status": "processing"}, RemoteState.RUNNING, {}),
    ],
)
async def test_prediction_fields_are_read_defensively(
    data: dict[str, Any], state: RemoteState, extra: dict[str, Any], downloads_for: DownloadsFor
) -> None:
    async with _answering({"id": "p1", **data}) as client:
        status = (
            await WaveSpeedBackend(
                client, api_key=WS_KEY, downloads=downloads_for("https://api.wavespeed.ai")
            ).poll(["p1"])
        )["p1"]
    assert status.state is state
    for field, value in extra.items():
        assert getattr(status, field) == value


async def test_an_error_code_inside_a_200_envelope_is_honoured(downloads_for: DownloadsFor) -> None:
    async with _answering({}, code=500) as client:
        backend = WaveSpeedBackend(
            client, api_key=WS_KEY, downloads=downloads_for("https://api.wavespeed.ai")
        )
        with pytest.raises(TransientBackendError):
            await backend.poll(["p1"])
        with pytest.raises(SubmitUncertain):
            await backend.submit(SONG)
