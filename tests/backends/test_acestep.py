"""AceStepBackend against the loopback ACE-Step API server fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.backends.acestep import AceStepBackend
from bot.domain import GenerationRequest
from bot.errors import (
    PermanentBackendError,
    TransientBackendError,
)
from bot.ports import RemoteState
from tests.fakes.acestep import FakeAceStep
from tests.fakes.audio import make_audio
from tests.kit.backends import (
    ACE_KEY,
    DownloadsFor,
    poll_until_final,
    poll_until_state,
)

SONG = GenerationRequest(tags="synthwave, driving", lyrics="[Chorus]\nneon", duration=12, seed=7)
MAX = 20_000_000


@pytest.fixture
def backend(
    http: httpx.AsyncClient, acestep: FakeAceStep, downloads_for: DownloadsFor
) -> AceStepBackend:
    return AceStepBackend(
        http, base_url=acestep.base_url, api_key=ACE_KEY, downloads=downloads_for(acestep.base_url)
    )


async def test_a_submit_reports_its_queue_and_the_engine_serves_the_output(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    task = await backend.submit(SONG)
    assert task.seed_used == 7 and task.queue_position is not None

    status = await poll_until_final(backend, task.remote_id)
    assert status.state is RemoteState.SUCCEEDED and status.seed_used == 7
    assert status.output_url and status.output_url.startswith(f"{acestep.base_url}/v1/audio?path=")


async def test_one_take_with_our_seed_is_asked_for_explicitly(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    task = await backend.submit(SONG)
    sent = acestep.submits[0]
    assert sent["batch_size"] == 1 and sent["use_random_seed"] is False and sent["seed"] == 7
    assert (sent["prompt"], sent["lyrics"], sent["audio_duration"]) == (SONG.tags, SONG.lyrics, 12)
    assert (sent["task_type"], sent["audio_format"]) == ("text2music", "mp3")
    finished = await acestep.wait_finished(task.remote_id)
    assert finished.seeds == [7] and len(finished.files) == 1


async def test_engine_options_are_passed_through(
    http: httpx.AsyncClient, acestep: FakeAceStep, downloads_for: DownloadsFor
) -> None:
    backend = AceStepBackend(
        http,
        base_url=acestep.base_url,
        api_key=ACE_KEY,
        inference_steps=8,
        thinking=True,
        downloads=downloads_for(acestep.base_url),
    )
    await backend.submit(SONG)
    assert acestep.submits[0]["inference_steps"] == 8 and acestep.submits[0]["thinking"] is True


async def test_a_random_seed_is_left_to_the_engine_and_read_back(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    task = await backend.submit(GenerationRequest(tags="ambient", duration=10))
    assert acestep.submits[0]["use_random_seed"] is True and "seed" not in acestep.submits[0]
    assert task.seed_used is None
    status = await poll_until_final(backend, task.remote_id)
    assert status.seed_used == acestep.tasks[task.remote_id].seeds[0]


async def test_several_jobs_are_polled_in_one_call(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    acestep.runtime = 25.0  # 0.5 s each, one at a time
    ids = [(await backend.submit(SONG)).remote_id for _ in range(3)]
    running = await poll_until_state(backend, ids[0], (RemoteState.RUNNING,))
    assert running.progress is not None and running.stage
    calls_before = len(acestep.query_calls)

    answer = await backend.poll(ids)

    assert len(acestep.query_calls) == calls_before + 1
    assert acestep.query_calls[-1][0] == ids
    assert answer[ids[0]].state is RemoteState.RUNNING
    assert answer[ids[1]].state is answer[ids[2]].state is RemoteState.PENDING


async def test_an_unknown_id_stays_pending_for_ever(backend: AceStepBackend) -> None:
    for _ in range(3):
        answer = await backend.poll(["forgotten-task"])
        assert answer["forgotten-task"].state is RemoteState.PENDING


async def test_a_restart_forgets_running_jobs_which_then_look_pending(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    acestep.runtime = 1000.0
    task = await backend.submit(SONG)
    await poll_until_state(backend, task.remote_id, (RemoteState.RUNNING,))
    acestep.restart()
    status = (await backend.poll([task.remote_id]))[task.remote_id]
    assert status.state is RemoteState.PENDING
    # The server works again after the restart.
    acestep.runtime = 1.0
    again = await backend.submit(SONG)
    assert (await poll_until_final(backend, again.remote_id)).state is RemoteState.SUCCEEDED


async def test_a_failure_has_no_reason_from_the_engine(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    acestep.faults.add_job(fail=True)
    task = await backend.submit(SONG)
    status = await poll_until_final(backend, task.remote_id)
    assert status.state is RemoteState.FAILED
    assert status.error_message == "the engine reported a failure"


async def test_an_unreadable_result_leaves_only_that_id_out(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    good = await backend.submit(SONG)
    acestep.faults.add_job(bad_result=True)
    garbled = await backend.submit(SONG)
    answer = await backend.poll([good.remote_id, garbled.remote_id])
    assert set(answer) == {good.remote_id}


async def test_a_full_queue_is_transient_and_queues_nothing(
    http: httpx.AsyncClient,
    downloads_for: DownloadsFor,
) -> None:
    async with FakeAceStep(time_scale=0.02, max_queue=1) as fake:
        backend = AceStepBackend(
            http, base_url=fake.base_url, downloads=downloads_for(fake.base_url)
        )
        fake.faults.add_job(hang=True)  # holds the single GPU
        busy = await backend.submit(SONG)
        await poll_until_state(backend, busy.remote_id, (RemoteState.RUNNING,))
        await backend.submit(SONG)  # waits in the queue
        with pytest.raises(TransientBackendError):
            await backend.submit(SONG)
        assert len(fake.tasks) == 2 and fake.queue_size == 1


@pytest.mark.parametrize(
    "request_",
    [
        GenerationRequest(tags="x" * 512, duration=30),
        GenerationRequest(tags="pop", lyrics="la " * 1400, duration=30),
        GenerationRequest(tags="pop", duration=5),
        GenerationRequest(tags="pop", duration=601),
    ],
    ids=["prompt-512", "lyrics-4200", "duration-5", "duration-601"],
)
async def test_requests_the_engine_would_not_check_are_refused_before_sending(
    backend: AceStepBackend, acestep: FakeAceStep, request_: GenerationRequest
) -> None:
    with pytest.raises(PermanentBackendError) as caught:
        await backend.submit(request_)
    assert caught.value.code == "invalid_request"
    assert acestep.submits == []


async def test_a_missing_key_is_permanent(
    http: httpx.AsyncClient, acestep: FakeAceStep, downloads_for: DownloadsFor
) -> None:
    backend = AceStepBackend(
        http, base_url=acestep.base_url, downloads=downloads_for(acestep.base_url)
    )
    with pytest.raises(PermanentBackendError) as caught:
        await backend.submit(SONG)
    assert caught.value.code == "auth_failed"


async def test_the_body_token_is_accepted_by_the_fake_like_the_real_server(
    http: httpx.AsyncClient, acestep: FakeAceStep
) -> None:
    answer = await http.post(
        f"{acestep.base_url}/release_task", json={"prompt": "folk", "ai_token": ACE_KEY}
    )
    assert answer.status_code == 200 and answer.json()["data"]["status"] == "queued"
    task = acestep.tasks[answer.json()["data"]["task_id"]]
    assert len(task.seeds) == 2  # the server's default batch_size


@pytest.fixture
async def mirror() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """Another origin on an allowed host, recording the headers it receives."""
    seen: list[dict[str, str]] = []

    async def song(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=make_audio(12.0, "mp3"), content_type="audio/mpeg")

    app = web.Application()
    app.router.add_get("/song.mp3", song)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/song.mp3", seen
    await runner.cleanup()


async def test_the_key_goes_only_to_the_engine_itself(
    http: httpx.AsyncClient,
    acestep: FakeAceStep,
    tmp_path: Path,
    mirror: tuple[str, list[dict[str, str]]],
    downloads_for: DownloadsFor,
) -> None:
    url, seen = mirror
    # Another port of the same loopback host is another origin: the operator must list it.
    listed = downloads_for(acestep.base_url, (httpx.URL(url).netloc.decode(),))
    backend = AceStepBackend(http, base_url=acestep.base_url, api_key=ACE_KEY, downloads=listed)
    acestep.faults.add_job(output_url=url)
    task = await backend.submit(SONG)
    status = await poll_until_final(backend, task.remote_id)
    assert status.output_url == url
    await backend.download(url, tmp_path / "song", max_bytes=MAX)
    assert seen and "Authorization" not in seen[0]


async def test_the_expected_run_time_comes_from_stats_and_is_reused(
    http: httpx.AsyncClient,
    downloads_for: DownloadsFor,
) -> None:
    async with FakeAceStep(time_scale=0.02, avg_job_seconds=8.5) as fake:
        backend = AceStepBackend(
            http, base_url=fake.base_url, downloads=downloads_for(fake.base_url)
        )
        assert await backend.expected_seconds(SONG) == 8.5
        outage = fake.faults.add("stats", status=500)
        assert await backend.expected_seconds(SONG) == 8.5  # cached: no second request
        assert outage.times == 1

        fresh = AceStepBackend(http, base_url=fake.base_url, downloads=downloads_for(fake.base_url))
        assert await fresh.expected_seconds(SONG) is None  # the 500 answers "unknown"


async def test_stats_measure_real_run_times(backend: AceStepBackend, acestep: FakeAceStep) -> None:
    task = await backend.submit(SONG)
    await acestep.wait_finished(task.remote_id)
    expected = await backend.expected_seconds(SONG)
    assert expected is not None and 0 < expected < 1.0


@pytest.mark.parametrize(
    ("item", "state", "seed"),
    [
        (
            {"status": 1, "result": '[{"file": "/v1/audio?path=a.mp3", "seed_value": "12,34"}]'},
            RemoteState.SUCCEEDED,
            12,
        ),
        (
            {"status": "1", "result": [{"file": "/v1/audio?path=a.mp3", "seed_value": 5}]},
            RemoteState.SUCCEEDED,
            5,
        ),
        ({"status": 1, "result": "[]"}, RemoteState.FAILED, None),
        (
            {"status": 0, "result": '[{"progress": 0.5, "stage": "diffusion"}]'},
            RemoteState.RUNNING,
            None,
        ),
        ({"status": 0, "result": ""}, RemoteState.PENDING, None),
    ],
)
async def test_query_items_are_read_defensively(
    item: dict[str, Any], state: RemoteState, seed: int | None, downloads_for: DownloadsFor
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"task_id": "t1", **item}], "code": 200})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        status = (
            await AceStepBackend(
                client, base_url="http://engine:8001", downloads=downloads_for("http://engine:8001")
            ).poll(["t1"])
        )["t1"]
    assert (status.state, status.seed_used) == (state, seed)
    if state is RemoteState.SUCCEEDED:
        assert status.output_url == "http://engine:8001/v1/audio?path=a.mp3"
