"""AceStepBackend edits (#15) against the loopback ACE-Step server: each edit's multipart
request as the server reads it, the whole song coming back, which edits the server offers
(both /v1/models shapes), and what is refused before anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.backends.acestep import AceStepBackend
from bot.backends.acestep_edits import task_types_from
from bot.backends.probe import probe_acestep
from bot.domain import Edit, GenerationRequest, Task
from bot.errors import PermanentBackendError
from bot.ports import RemoteState
from tests.fakes.acestep import FakeAceStep
from tests.fakes.audio import make_audio, probe_audio
from tests.kit.backends import ACE_KEY, TIME_SCALE, DownloadsFor, poll_until_final

MAX = 20_000_000
SOURCE_SECONDS = 12.0
ALL_EDITS = {Task.EXTEND, Task.REPAINT, Task.REMIX}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A song of ours to edit, where bot/sources.py keeps them."""
    path = tmp_path / "sources" / "job-7.mp3"
    path.parent.mkdir()
    path.write_bytes(make_audio(SOURCE_SECONDS, "mp3"))
    return path


def backend_for(
    http: httpx.AsyncClient, fake: FakeAceStep, downloads_for: DownloadsFor
) -> AceStepBackend:
    return AceStepBackend(
        http, base_url=fake.base_url, api_key=ACE_KEY, downloads=downloads_for(fake.base_url)
    )


@pytest.fixture
def backend(
    http: httpx.AsyncClient, acestep: FakeAceStep, downloads_for: DownloadsFor
) -> AceStepBackend:
    return backend_for(http, acestep, downloads_for)


def edit_request(source: Path, task: Task, **edit: Any) -> GenerationRequest:
    made = Edit(task=task, source_path=str(source), source_seconds=SOURCE_SECONDS, **edit)
    generated = made.seconds if task == Task.EXTEND else round(SOURCE_SECONDS)
    return GenerationRequest(
        tags="synthwave, driving", lyrics="[Chorus]\nneon", duration=generated, edit=made
    )


async def finished_seconds(backend: AceStepBackend, remote_id: str, into: Path) -> float:
    """Poll the job to its end and measure the song it made."""
    status = await poll_until_final(backend, remote_id)
    assert status.state is RemoteState.SUCCEEDED and status.output_url
    got = await backend.download(status.output_url, into, max_bytes=MAX)
    return probe_audio(got.path)[0]


async def test_an_extend_uploads_the_source_and_repaints_past_its_end_into_the_longer_song(
    backend: AceStepBackend, acestep: FakeAceStep, source: Path, tmp_path: Path
) -> None:
    task = await backend.submit(edit_request(source, Task.EXTEND, seconds=8))

    got = acestep.edits[0]
    assert got.task_type == "repaint" and got.source_bytes == source.stat().st_size
    assert (got.source_name, got.source_type) == ("source.mp3", "audio/mpeg")  # not our name
    assert (got.repainting_start, got.repainting_end) == (12.0, 20.0)
    assert got.audio_cover_strength is None
    sent = got.fields
    assert (sent["prompt"], sent["lyrics"]) == ("synthwave, driving", "[Chorus]\nneon")
    assert (sent["batch_size"], sent["thinking"], sent["use_random_seed"]) == ("1", "false", "true")
    assert "audio_duration" not in sent  # the source sizes the result
    assert sent["audio_format"] == "mp3"
    seconds = await finished_seconds(backend, task.remote_id, tmp_path / "out")
    assert seconds == pytest.approx(20.0, abs=0.2)  # the whole song, 8 s longer


async def test_an_extend_at_the_start_pads_before_it_and_never_sends_an_end_of_zero(
    backend: AceStepBackend, acestep: FakeAceStep, source: Path, tmp_path: Path
) -> None:
    task = await backend.submit(edit_request(source, Task.EXTEND, seconds=5, at_start=True))

    got = acestep.edits[0]
    # An end of 0 would read as "the source's end": the whole song made again.
    assert got.repainting_start == -5.0 and got.repainting_end == 0.01
    seconds = await finished_seconds(backend, task.remote_id, tmp_path / "out")
    assert seconds == pytest.approx(17.0, abs=0.2)


async def test_a_repaint_sends_its_section_and_keeps_the_songs_length(
    backend: AceStepBackend, acestep: FakeAceStep, source: Path, tmp_path: Path
) -> None:
    task = await backend.submit(edit_request(source, Task.REPAINT, start=3.5, end=7.0))
    await backend.submit(edit_request(source, Task.REPAINT, start=65 / 10, end=12.4))

    section, to_the_end = acestep.edits
    assert section.task_type == "repaint" and (
        section.repainting_start,
        section.repainting_end,
    ) == (
        3.5,
        7.0,
    )
    # A section ending at (or just past) the source's end is sent as "-1": nothing padded on.
    assert to_the_end.fields["repainting_end"] == "-1" and to_the_end.output_seconds == 12.0
    seconds = await finished_seconds(backend, task.remote_id, tmp_path / "out")
    assert seconds == pytest.approx(SOURCE_SECONDS, abs=0.2)


async def test_a_remix_is_a_cover_with_the_strength_asked_and_its_own_seed(
    backend: AceStepBackend, acestep: FakeAceStep, source: Path, tmp_path: Path
) -> None:
    request = edit_request(source, Task.REMIX, strength=0.3)
    request = GenerationRequest(tags="bossa nova", duration=12, seed=7, edit=request.edit)
    task = await backend.submit(request)

    got = acestep.edits[0]
    assert got.task_type == "cover" and got.audio_cover_strength == 0.3
    assert got.repainting_start is None and got.repainting_end is None
    assert (got.fields["prompt"], got.fields["lyrics"]) == ("bossa nova", "")
    assert (got.fields["use_random_seed"], got.fields["seed"]) == ("false", "7")
    seconds = await finished_seconds(backend, task.remote_id, tmp_path / "out")
    assert seconds == pytest.approx(SOURCE_SECONDS, abs=0.2)


async def test_a_big_source_is_streamed_whole(
    backend: AceStepBackend, acestep: FakeAceStep, tmp_path: Path
) -> None:
    big = tmp_path / "sources" / "long.wav"
    big.parent.mkdir()
    big.write_bytes(make_audio(60.0, "wav"))  # 11.5 MB, past a default 1 MB body limit
    acestep.runtime = 10_000.0  # never made: only the upload matters here
    await backend.submit(edit_request(big, Task.REMIX))
    (got,) = acestep.edits
    assert got.source_bytes == big.stat().st_size and got.source_type == "audio/x-wav"
    assert got.source_seconds == pytest.approx(60.0)


async def test_a_missing_source_file_fails_for_good_before_anything_is_sent(
    backend: AceStepBackend, acestep: FakeAceStep, tmp_path: Path
) -> None:
    gone = tmp_path / "sources" / "swept.mp3"
    with pytest.raises(PermanentBackendError) as caught:
        await backend.submit(edit_request(gone, Task.REMIX))
    assert caught.value.code == "source_missing"
    assert acestep.submits == []


@pytest.mark.parametrize(
    ("task", "edit"),
    [
        (Task.EXTEND, {"seconds": 589}),  # 601 s: longer than the engine makes
        (Task.EXTEND, {"seconds": 0}),
        (Task.REPAINT, {"start": 8.0, "end": 4.0}),
        (Task.REPAINT, {"start": 10.0, "end": 30.0}),  # past the end: that is an extend
        (Task.REPAINT, {"start": -2.0, "end": 4.0}),
        (Task.REMIX, {"strength": 1.5}),
    ],
)
async def test_an_edit_the_engine_would_not_make_is_refused_unsent(
    backend: AceStepBackend, acestep: FakeAceStep, source: Path, task: Task, edit: dict[str, Any]
) -> None:
    with pytest.raises(PermanentBackendError) as caught:
        await backend.submit(edit_request(source, task, **edit))
    assert caught.value.code == "invalid_request"
    assert acestep.submits == []


@pytest.mark.parametrize(
    ("fake_says", "offered"),
    [
        ({}, ALL_EDITS),  # the inventory at /v1/models, turbo
        ({"models_shape": "openrouter"}, ALL_EDITS),  # read from /v1/model_inventory
        ({"task_types": ("text2music", "cover")}, {Task.REMIX}),
        ({"task_types": ("text2music", "cover"), "models_shape": "openrouter"}, {Task.REMIX}),
        ({"task_types": None}, ALL_EDITS),  # says nothing: the turbo default
        ({"task_types": None, "models_shape": "openrouter"}, ALL_EDITS),
    ],
)
async def test_the_edits_offered_are_the_servers_default_model_tasks(
    http: httpx.AsyncClient,
    downloads_for: DownloadsFor,
    fake_says: dict[str, Any],
    offered: set[Task],
) -> None:
    async with FakeAceStep(time_scale=TIME_SCALE, api_key=ACE_KEY, **fake_says) as fake:
        backend = backend_for(http, fake, downloads_for)
        assert backend.capabilities.edits == ALL_EDITS  # before any probe: the default
        assert (await backend.refresh_capabilities()).edits == offered


async def test_a_server_without_repaint_offers_no_extend_and_refuses_one_unsent(
    http: httpx.AsyncClient, downloads_for: DownloadsFor, source: Path
) -> None:
    async with FakeAceStep(
        time_scale=TIME_SCALE, api_key=ACE_KEY, task_types=("text2music", "cover")
    ) as fake:
        backend = backend_for(http, fake, downloads_for)
        await backend.refresh_capabilities()
        with pytest.raises(PermanentBackendError) as caught:
            await backend.submit(edit_request(source, Task.EXTEND, seconds=10))
        assert caught.value.code == "edit_unsupported" and fake.submits == []
        await backend.submit(edit_request(source, Task.REMIX))  # a cover still goes
        assert [got.task_type for got in fake.edits] == ["cover"]


async def test_what_the_server_said_is_kept_while_it_is_down(
    http: httpx.AsyncClient, downloads_for: DownloadsFor
) -> None:
    async with FakeAceStep(
        time_scale=TIME_SCALE, api_key=ACE_KEY, task_types=("text2music", "cover")
    ) as fake:
        backend = backend_for(http, fake, downloads_for)
        await backend.refresh_capabilities()
        fake.faults.add("health", times=None, drop=True)
        assert (await backend.refresh_capabilities()).edits == {Task.REMIX}


@pytest.mark.parametrize(
    ("payload", "types"),
    [
        (
            {
                "data": {
                    "models": [
                        {"name": "base", "is_default": False, "supported_task_types": ["lego"]},
                        {"name": "turbo", "is_default": True, "supported_task_types": ["cover"]},
                    ]
                },
                "code": 200,
            },
            {"cover"},
        ),
        (
            {
                "data": {
                    "models": [{"name": "turbo", "supported_task_types": ["repaint"]}],
                    "default_model": "turbo",
                }
            },
            {"repaint"},
        ),
        (  # an OpenRouter list that says them: the primary model comes first
            {"object": "list", "data": [{"id": "a/t", "supported_task_types": ["cover"]}, {}]},
            {"cover"},
        ),
        ({"object": "list", "data": [{"id": "acemusic/turbo", "name": "ACE-Step turbo"}]}, None),
        ({"data": {"models": [{"name": "turbo", "is_default": True}]}}, None),  # documented
        ({"data": {"models": [{"name": "t", "supported_task_types": "repaint"}]}}, None),
        ({"detail": "Not Found"}, None),
        ([], None),
    ],
)
def test_task_types_are_read_from_either_models_shape(payload: Any, types: set[str] | None) -> None:
    assert task_types_from(payload) == (frozenset(types) if types is not None else None)


async def test_the_fake_refuses_a_field_or_task_the_server_would_silently_ignore(
    http: httpx.AsyncClient, acestep: FakeAceStep, source: Path
) -> None:
    """So a typo in our client fails these tests instead of making the wrong song upstream."""
    auth = {"Authorization": f"Bearer {ACE_KEY}"}
    audio = ("source.mp3", source.read_bytes(), "audio/mpeg")
    url = f"{acestep.base_url}/release_task"
    cases: list[tuple[dict[str, str], str]] = [
        ({"task_type": "repaint", "repaint_start": "3"}, "src_audio"),
        ({"task_type": "extend"}, "src_audio"),
        ({"task_type": "cover", "audio_cover_strength": "half"}, "src_audio"),
        ({"task_type": "cover"}, "source_audio"),
    ]
    for fields, file_field in cases:
        answer = await http.post(url, data=fields, files={file_field: audio}, headers=auth)
        assert answer.status_code == 400, fields
    json_repaint = {"prompt": "x", "task_type": "repaint", "src_audio_path": "/tmp/a.mp3"}
    assert (await http.post(url, json=json_repaint, headers=auth)).status_code == 400
    assert acestep.tasks == {}


@pytest.mark.parametrize(
    ("fake_says", "detail"),
    [
        ({}, "extend, remix, repaint (its model's task types)"),
        ({"models_shape": "openrouter"}, "extend, remix, repaint (its model's task types)"),
        ({"task_types": ("text2music", "cover")}, "remix (its model's task types)"),
        ({"task_types": ("text2music",)}, "none: its model does neither repaint nor cover"),
        (
            {"task_types": None, "models_shape": "openrouter"},
            "extend, remix, repaint (not reported by this server version: assuming a turbo "
            "model's)",
        ),
    ],
)
async def test_doctor_says_which_edits_the_server_offers(
    http: httpx.AsyncClient, fake_says: dict[str, Any], detail: str
) -> None:
    async with FakeAceStep(time_scale=TIME_SCALE, api_key=ACE_KEY, **fake_says) as fake:
        found = await probe_acestep(http, base_url=fake.base_url, api_key=ACE_KEY)
    edits = {f.name: f for f in found}["ACE-Step edits"]
    assert edits.ok and edits.detail == detail
