"""WaveSpeedBackend's edits (#15) against the loopback fake: the source is uploaded to the media
endpoint, then the edit model for the task gets its URL; the result comes back from the CDN as
long as the edit makes it; a failed upload bills nothing and is never SubmitUncertain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import build_backend
from bot.backends.wavespeed import WaveSpeedBackend
from bot.backends.wavespeed_edits import (
    AUDIO_TO_AUDIO,
    EDIT_MODELS,
    INPAINT,
    OUTPAINT,
    edit_body,
    wavespeed_prices,
)
from bot.domain import Edit, GenerationRequest, Task
from bot.errors import (
    ConfigError,
    PermanentBackendError,
    SubmitUncertain,
    TransientBackendError,
)
from bot.ports import RemoteState
from tests.fakes.audio import make_audio, probe_audio
from tests.fakes.wavespeed import CDN_HOST, FakeWaveSpeed
from tests.harness import wavespeed_settings
from tests.kit.backends import WS_KEY, DownloadsFor, poll_until_final

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


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A 4-second track of ours, as DATA_DIR/sources keeps it (short: encoding is the slow
    part of these tests on a busy machine)."""
    path = tmp_path / "sources" / "job-7.mp3"
    path.parent.mkdir()
    path.write_bytes(make_audio(4.0, "mp3"))
    return path


def edit_of(source: Path, task: Task, **fields: object) -> GenerationRequest:
    edit = Edit(task=task, source_path=str(source), source_seconds=4.0, **fields)  # type: ignore[arg-type]
    duration = edit.seconds if task == Task.EXTEND else 4
    return GenerationRequest(
        tags="lo-fi, rainy piano", lyrics="[Verse]\nla la", duration=duration, seed=7, edit=edit
    )


async def test_an_extend_uploads_the_source_then_outpaints_from_its_cdn_url(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed, source: Path, tmp_path: Path
) -> None:
    task = await backend.submit(edit_of(source, Task.EXTEND, seconds=6))

    [upload] = wavespeed.uploads.values()
    assert upload.content == source.read_bytes() and upload.filename == "source.mp3"
    assert upload.declared_type == "audio/mpeg"
    [(model, body)] = wavespeed.edit_submits
    assert model == OUTPAINT and wavespeed.submits == []  # not the song model
    assert body == {
        "audio": f"{wavespeed.cdn_url}/media/{upload.id}/source.mp3",
        "tags": "lo-fi, rainy piano",
        "extend_before_duration": 0.0,
        "extend_after_duration": 6.0,
        "lyrics": "[Verse]\nla la",
        "seed": 7,
    }
    assert httpx.URL(body["audio"]).host == CDN_HOST  # where WaveSpeed keeps uploads
    assert task.seed_used == 7

    status = await poll_until_final(backend, task.remote_id)
    assert status.state is RemoteState.SUCCEEDED and status.output_url
    got = await backend.download(status.output_url, tmp_path / "out", max_bytes=MAX)
    seconds, _rate, _codec = probe_audio(got.path)
    assert seconds == pytest.approx(10.0, abs=0.1)  # the whole longer song


async def test_an_extend_at_the_start_adds_before(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed, source: Path
) -> None:
    await backend.submit(edit_of(source, Task.EXTEND, seconds=5, at_start=True))
    [(_, body)] = wavespeed.edit_submits
    assert (body["extend_before_duration"], body["extend_after_duration"]) == (5.0, 0.0)


async def test_a_repaint_goes_to_inpaint_with_its_section(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed, source: Path, tmp_path: Path
) -> None:
    task = await backend.submit(edit_of(source, Task.REPAINT, start=1.5, end=3.0))
    [(model, body)] = wavespeed.edit_submits
    assert model == INPAINT
    assert {k: body[k] for k in body if k.startswith(("start", "end"))} == {
        "start_time": 1.5,
        "start_time_relative_to": "start",
        "end_time": 3.0,
        "end_time_relative_to": "start",
    }
    status = await poll_until_final(backend, task.remote_id)
    assert status.state is RemoteState.SUCCEEDED and status.output_url
    got = await backend.download(status.output_url, tmp_path / "out", max_bytes=MAX)
    assert probe_audio(got.path)[0] == pytest.approx(4.0, abs=0.1)  # the track's own length


async def test_a_remix_goes_to_audio_to_audio_without_a_strength_it_has_no_field_for(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed, source: Path
) -> None:
    task = await backend.submit(edit_of(source, Task.REMIX, strength=0.8))
    [(model, body)] = wavespeed.edit_submits
    assert model == AUDIO_TO_AUDIO
    assert (
        body["edit_mode"] == "remix"
        and body["original_tags"] == body["tags"] == "lo-fi, rainy piano"
    )
    assert not {"strength", "variance", "audio_cover_strength"} & set(body)
    assert (await poll_until_final(backend, task.remote_id)).state is RemoteState.SUCCEEDED


@pytest.mark.parametrize(
    ("edit", "section"),
    [
        # Within 240 s of the start: counted from it.
        (Edit(Task.REPAINT, "s.mp3", 300.0, start=10, end=200), ((10, "start"), (200, "start"))),
        # Past 240 s: counted back from the end, as the inpaint schema allows.
        (Edit(Task.REPAINT, "s.mp3", 300.0, start=200, end=290), ((200, "start"), (10, "end"))),
    ],
)
def test_a_section_bound_past_240_s_is_counted_from_the_end(
    edit: Edit, section: tuple[tuple[float, str], tuple[float, str]]
) -> None:
    body = edit_body(GenerationRequest(tags="x", duration=300, edit=edit), "https://cdn/x.mp3")
    assert (
        (body["start_time"], body["start_time_relative_to"]),
        (body["end_time"], body["end_time_relative_to"]),
    ) == section


async def test_an_edit_the_schema_cannot_say_is_refused_before_any_upload(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed, source: Path
) -> None:
    far = Edit(Task.REPAINT, str(source), 600.0, start=250, end=300)  # 300+ s from either end
    with pytest.raises(PermanentBackendError) as refused:
        await backend.submit(GenerationRequest(tags="x", duration=600, edit=far))
    assert refused.value.code == "invalid_request" and wavespeed.upload_requests == 0


async def test_a_failed_upload_is_transient_and_creates_nothing(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed, source: Path
) -> None:
    wavespeed.faults.add("upload", status=503)
    with pytest.raises(TransientBackendError) as failed:
        await backend.submit(edit_of(source, Task.EXTEND, seconds=5))
    assert not isinstance(failed.value, SubmitUncertain)
    assert wavespeed.edit_submits == [] and wavespeed.predictions == {}

    # Nothing was billed, so the worker may simply try again: upload and submit, once each.
    await backend.submit(edit_of(source, Task.EXTEND, seconds=5))
    assert len(wavespeed.edit_submits) == len(wavespeed.predictions) == 1


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"drop": True}, TransientBackendError),  # connection closed, no answer
        ({"malformed": True}, TransientBackendError),  # 200 with a body that is not JSON
        ({"status": 429}, TransientBackendError),
        ({"status": 401}, PermanentBackendError),
    ],
)
async def test_an_upload_that_goes_wrong_is_never_submit_uncertain(
    backend: WaveSpeedBackend,
    wavespeed: FakeWaveSpeed,
    source: Path,
    fault: dict[str, Any],
    kind: type[Exception],
) -> None:
    wavespeed.faults.add("upload", **fault)
    with pytest.raises(kind) as failed:
        await backend.submit(edit_of(source, Task.REMIX))
    assert not isinstance(failed.value, SubmitUncertain)
    assert wavespeed.edit_submits == []


async def test_a_submit_after_the_upload_keeps_the_never_twice_rule(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed, source: Path
) -> None:
    wavespeed.faults.add("submit", status=502, processed=True)  # created, then a 502
    with pytest.raises(SubmitUncertain):
        await backend.submit(edit_of(source, Task.EXTEND, seconds=5))
    assert len(wavespeed.predictions) == 1


async def test_a_file_that_is_not_audio_is_refused_by_the_upload(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed, tmp_path: Path
) -> None:
    renamed = tmp_path / "notes.mp3"
    renamed.write_text("just some text, renamed")
    with pytest.raises(PermanentBackendError) as refused:
        await backend.submit(edit_of(renamed, Task.REMIX))
    assert refused.value.code == "invalid_request" and wavespeed.uploads == {}


async def test_a_source_that_is_gone_fails_without_a_request(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed, tmp_path: Path
) -> None:
    with pytest.raises(PermanentBackendError) as gone:
        await backend.submit(edit_of(tmp_path / "swept.mp3", Task.REMIX))
    assert gone.value.code == "source_missing" and wavespeed.upload_requests == 0


async def test_the_upload_is_served_back_from_the_cdn_host_only(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed, source: Path, http: httpx.AsyncClient
) -> None:
    await backend.submit(edit_of(source, Task.EXTEND, seconds=5))
    url = wavespeed.edit_submits[0][1]["audio"]
    assert (await http.get(url)).content == source.read_bytes()
    on_api_host = url.replace(wavespeed.cdn_url, wavespeed.base_url)
    assert (await http.get(on_api_host)).status_code == 404


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (OUTPAINT, {"tags": "x"}, "audio is required"),
        (AUDIO_TO_AUDIO, {"audio": "https://a/b.mp3", "tags": "x"}, "original_tags is required"),
        (
            OUTPAINT,
            {"audio": "https://a/b.mp3", "tags": "x", "extend_after_duration": 300},
            "between 0 and 240",
        ),
        (
            INPAINT,
            {"audio": "https://a/b.mp3", "tags": "x", "end_time_relative_to": "middle"},
            "start, end",
        ),
    ],
)
async def test_the_fake_refuses_a_bad_field_as_the_api_does(
    wavespeed: FakeWaveSpeed,
    http: httpx.AsyncClient,
    model: str,
    body: dict[str, object],
    message: str,
) -> None:
    answer = await http.post(
        f"{wavespeed.base_url}/api/v3/{model}",
        json=body,
        headers={"Authorization": f"Bearer {WS_KEY}"},
    )
    envelope = answer.json()
    assert answer.status_code == envelope["code"] == 400 and message in envelope["message"]
    assert wavespeed.predictions == {}


async def test_capabilities_are_the_edit_models_switched_on(
    http: httpx.AsyncClient, wavespeed: FakeWaveSpeed, downloads_for: DownloadsFor, source: Path
) -> None:
    every = WaveSpeedBackend(
        http,
        api_key=WS_KEY,
        base_url=wavespeed.base_url,
        downloads=downloads_for(wavespeed.base_url),
    )
    assert every.capabilities.edits == {Task.EXTEND, Task.REPAINT, Task.REMIX}
    assert every.capabilities.edit_models == {
        Task.EXTEND: OUTPAINT,
        Task.REPAINT: INPAINT,
        Task.REMIX: AUDIO_TO_AUDIO,
    }

    extend_only = WaveSpeedBackend(
        http,
        api_key=WS_KEY,
        base_url=wavespeed.base_url,
        downloads=downloads_for(wavespeed.base_url),
        edit_models=[OUTPAINT],
    )
    assert extend_only.capabilities.edits == {Task.EXTEND}
    with pytest.raises(PermanentBackendError) as off:
        await extend_only.submit(edit_of(source, Task.REMIX))
    assert off.value.code == "edit_unsupported" and wavespeed.upload_requests == 0


async def test_the_setting_switches_models_and_names_a_wrong_one(
    http: httpx.AsyncClient, wavespeed: FakeWaveSpeed, downloads_for: DownloadsFor, tmp_path: Path
) -> None:
    downloads = downloads_for(wavespeed.base_url)
    default = wavespeed_settings(tmp_path, wavespeed.base_url)
    assert default.wavespeed_edit_models == list(EDIT_MODELS)  # the three this bot can speak
    assert build_backend(default, http, downloads).capabilities.edits == {
        Task.EXTEND,
        Task.REPAINT,
        Task.REMIX,
    }
    none = wavespeed_settings(tmp_path, wavespeed.base_url, wavespeed_edit_models="")
    assert build_backend(none, http, downloads).capabilities.edits == frozenset()

    wrong = wavespeed_settings(
        tmp_path, wavespeed.base_url, wavespeed_edit_models="wavespeed-ai/ace-step-1.5/repaint"
    )
    with pytest.raises(ConfigError, match=r"WAVESPEED_EDIT_MODELS.*ace-step-1\.5/repaint"):
        build_backend(wrong, http, downloads)


def test_an_edit_costs_its_own_models_price(tmp_path: Path, source: Path) -> None:
    settings = wavespeed_settings(
        tmp_path,
        "http://127.0.0.1:9",
        wavespeed_price_per_second=0.0003,
        wavespeed_outpaint_price_per_second=0.001,
        wavespeed_audio_to_audio_price_per_second=0.002,
    )
    prices = wavespeed_prices(settings, {Task.EXTEND: OUTPAINT, Task.REMIX: AUDIO_TO_AUDIO})
    assert prices.cost(edit_of(source, Task.EXTEND, seconds=5)) == pytest.approx(0.005)
    assert prices.cost(edit_of(source, Task.REMIX)) == pytest.approx(0.008)  # 4 s at 0.002
    song = GenerationRequest(tags="jazz", duration=30, takes=2)
    assert prices.cost(song) == pytest.approx(0.018)  # every take at the song model's price
    # An edit whose model is switched off is never run; were it asked, the song price stands.
    assert prices.per_second(edit_of(source, Task.REPAINT, start=1, end=2)) == 0.0003
