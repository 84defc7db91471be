"""AceStepBackend for #14: takes as ``batch_size``, musical controls as parameters, a song
from one sentence through the server's language model, and knowing whether it has one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.backends.acestep import AceStepBackend
from bot.domain import Controls, GenerationRequest
from bot.errors import PermanentBackendError
from bot.ports import RemoteState, WrittenSong
from tests.fakes.acestep import FakeAceStep
from tests.kit.backends import ACE_KEY, TIME_SCALE, DownloadsFor, poll_until_final

MAX = 20_000_000
CONTROLS = Controls(bpm=120, key_scale="F# minor", time_signature=3, vocal_language="pt")
SENTENCE = "a sad song about rain in Lisbon"


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


@pytest.fixture
async def no_lm() -> AsyncIterator[FakeAceStep]:
    async with FakeAceStep(time_scale=TIME_SCALE, api_key=ACE_KEY, lm_model=None) as fake:
        yield fake


async def test_takes_are_one_batch_and_each_comes_back_with_its_own_seed_and_file(
    backend: AceStepBackend, acestep: FakeAceStep, tmp_path: Path
) -> None:
    task = await backend.submit(GenerationRequest(tags="synthwave", duration=12, takes=3))

    assert acestep.submits[0]["batch_size"] == 3
    status = await poll_until_final(backend, task.remote_id, within=15)
    seeds = acestep.tasks[task.remote_id].seeds
    assert status.state is RemoteState.SUCCEEDED
    assert [out.seed for out in status.outputs] == seeds and len(set(seeds)) == 3
    assert len({out.url for out in status.outputs}) == 3
    assert status.output_url == status.outputs[0].url and status.seed_used == seeds[0]
    for number, out in enumerate(status.outputs, 1):
        got = await backend.download(out.url, tmp_path / f"take-{number}", max_bytes=MAX)
        assert got.size > 0


async def test_controls_are_sent_as_the_servers_parameters(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    await backend.submit(GenerationRequest(tags="fado", duration=12, controls=CONTROLS))
    await backend.submit(GenerationRequest(tags="fado", duration=12))

    given, plain = acestep.submits
    assert (given["bpm"], given["key_scale"]) == (120, "F# minor")
    assert (given["time_signature"], given["vocal_language"]) == ("3", "pt")  # a string upstream
    assert given["prompt"] == "fado"  # nothing written into the tags
    for name in ("bpm", "key_scale", "time_signature", "vocal_language", "sample_mode"):
        assert name not in plain  # the server (or its language model) chooses


async def test_a_sentence_becomes_a_song_the_language_model_wrote(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    assert (await backend.refresh_capabilities()).describes

    task = await backend.submit(GenerationRequest(tags="", describe=SENTENCE, takes=2))

    sent = acestep.submits[0]
    assert sent["sample_mode"] is True and sent["sample_query"] == SENTENCE
    assert sent["batch_size"] == 2 and "use_format" not in sent
    status = await poll_until_final(backend, task.remote_id, within=15)
    assert status.state is RemoteState.SUCCEEDED and len(status.outputs) == 2
    written = status.outputs[0].written
    assert written == WrittenSong(
        tags=acestep.lm_writes.caption,
        lyrics=acestep.lm_writes.lyrics,
        bpm=72,
        key_scale="D minor",
        time_signature=3,
        duration=10.0,
    )
    assert status.outputs[1].written == written  # the batch shares one text


async def test_tags_with_a_sentence_join_the_query_and_lyrics_turn_it_into_polishing(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    await backend.refresh_capabilities()
    await backend.submit(GenerationRequest(tags="fado, guitar", describe=SENTENCE))
    with_lyrics = GenerationRequest(
        tags="fado", lyrics="[Verse]\nchove", describe=SENTENCE, duration=12, controls=CONTROLS
    )
    task = await backend.submit(with_lyrics)

    query, polish = acestep.submits
    assert query["sample_query"] == f"{SENTENCE} (style: fado, guitar)"
    assert polish["use_format"] is True and "sample_mode" not in polish
    assert polish["prompt"] == f"fado. {SENTENCE}" and polish["lyrics"] == "[Verse]\nchove"
    assert (polish["audio_duration"], polish["bpm"], polish["time_signature"]) == (12, 120, "3")
    status = await poll_until_final(backend, task.remote_id, within=15)
    written = status.outputs[0].written
    assert written is not None and written.lyrics.startswith("[Verse]\nchove")
    assert (written.bpm, written.key_scale, written.duration) == (120, "F# minor", 12.0)


async def test_without_a_language_model_a_sentence_is_refused_before_anything_is_sent(
    http: httpx.AsyncClient, no_lm: FakeAceStep, downloads_for: DownloadsFor
) -> None:
    backend = backend_for(http, no_lm, downloads_for)
    assert not (await backend.refresh_capabilities()).describes
    assert no_lm.format_calls == []  # /health said so: no need to ask the model itself

    with pytest.raises(PermanentBackendError) as refused:
        await backend.submit(GenerationRequest(tags="", describe=SENTENCE))

    assert refused.value.code == "no_language_model" and no_lm.submits == []
    # Songs from tags still work on it.
    task = await backend.submit(GenerationRequest(tags="fado", duration=12))
    assert (
        await poll_until_final(backend, task.remote_id, within=15)
    ).state is RemoteState.SUCCEEDED


async def test_a_sentence_probes_first_when_nothing_is_known_yet(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    task = await backend.submit(GenerationRequest(tags="", describe=SENTENCE))
    assert acestep.submits[0]["sample_query"] == SENTENCE and task.remote_id


@pytest.mark.parametrize("lm_model", ["acestep-5Hz-lm-0.6B", None])
async def test_a_server_that_does_not_say_is_asked_through_format_input(
    http: httpx.AsyncClient, downloads_for: DownloadsFor, lm_model: str | None
) -> None:
    async with FakeAceStep(
        time_scale=TIME_SCALE, api_key=ACE_KEY, lm_model=lm_model, old_server=True
    ) as old:
        backend = backend_for(http, old, downloads_for)
        assert (await backend.refresh_capabilities()).describes is (lm_model is not None)
        assert len(old.format_calls) == 1 and old.submits == []


async def test_a_job_that_finds_the_model_gone_fails_saying_so_and_stops_the_offer(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    assert (await backend.refresh_capabilities()).describes
    acestep.lm_model = None  # restarted without it since the probe

    task = await backend.submit(GenerationRequest(tags="", describe=SENTENCE))
    status = await poll_until_final(backend, task.remote_id, within=15)

    assert status.state is RemoteState.FAILED and status.error_code == "no_language_model"
    assert not backend.capabilities.describes


async def test_reading_stale_capabilities_probes_in_the_background(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    assert not backend.capabilities.describes  # nothing known yet: not offered, probe started
    async with asyncio.timeout(5):
        while not backend.capabilities.describes:
            await asyncio.sleep(0.01)
    assert acestep.format_calls == []


async def test_a_published_server_without_a_model_fails_every_job_without_a_reason(
    http: httpx.AsyncClient, downloads_for: DownloadsFor
) -> None:
    async with FakeAceStep(
        time_scale=TIME_SCALE, api_key=ACE_KEY, lm_model=None, old_server=True
    ) as old:
        backend = backend_for(http, old, downloads_for)
        task = await backend.submit(GenerationRequest(tags="fado", duration=12))
        status = await poll_until_final(backend, task.remote_id, within=15)
        assert status.state is RemoteState.FAILED and status.error_code == "failed"


@pytest.mark.parametrize("takes", [0, 9])
async def test_takes_beyond_the_servers_batch_are_refused_before_sending(
    backend: AceStepBackend, acestep: FakeAceStep, takes: int
) -> None:
    with pytest.raises(PermanentBackendError) as refused:
        await backend.submit(GenerationRequest(tags="fado", duration=12, takes=takes))
    assert refused.value.code == "invalid_request" and acestep.submits == []


async def test_a_hung_server_holds_the_probe_only_briefly_and_offers_nothing(
    http: httpx.AsyncClient, acestep: FakeAceStep, downloads_for: DownloadsFor
) -> None:
    backend = AceStepBackend(
        http,
        base_url=acestep.base_url,
        api_key=ACE_KEY,
        downloads=downloads_for(acestep.base_url),
        probe_timeout=0.2,
    )
    acestep.faults.add("health", delay=500)  # 10 s at this time scale
    async with asyncio.timeout(2):
        assert not (await backend.refresh_capabilities()).describes


async def test_a_long_sentence_with_long_tags_keeps_the_sentence_and_what_fits_of_the_tags(
    backend: AceStepBackend, acestep: FakeAceStep
) -> None:
    await backend.refresh_capabilities()
    sentence = "a slow sad song about rain " * 10  # 270 characters
    tags = ", ".join(f"style{i}" for i in range(50))  # 438 characters
    await backend.submit(GenerationRequest(tags=tags, describe=sentence.strip()))
    await backend.submit(GenerationRequest(tags=tags, describe=sentence.strip(), lyrics="la"))

    query, polish = acestep.submits
    assert len(query["sample_query"]) < 512 and len(polish["prompt"]) < 512
    assert query["sample_query"].startswith(f"{sentence.strip()} (style: style0, style1,")
    assert query["sample_query"].endswith(")") and ", )" not in query["sample_query"]
    assert polish["prompt"].startswith(f"{tags}. a slow sad song")
