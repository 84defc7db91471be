"""WaveSpeedBackend for #14: its model has no control fields and no language model, so the
controls are written into its tags, one prediction is one take, and a sentence is refused."""

from __future__ import annotations

import httpx
import pytest

from bot.backends.wavespeed import WaveSpeedBackend
from bot.domain import Controls, GenerationRequest
from bot.errors import PermanentBackendError
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.kit.backends import WS_KEY, DownloadsFor


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


@pytest.mark.parametrize(
    ("tags", "controls", "sent"),
    [
        ("lo-fi, chill", Controls(bpm=120, key_scale="C major"), "lo-fi, chill, 120 bpm, C major"),
        ("waltz,", Controls(time_signature=3), "waltz, 3/4 time"),
        ("fado", Controls(time_signature=6, vocal_language="pt"), "fado, 6/8 time, sung in pt"),
        ("lo-fi, chill", Controls(), "lo-fi, chill"),
    ],
)
async def test_controls_are_written_into_the_tags_as_its_examples_write_them(
    backend: WaveSpeedBackend,
    wavespeed: FakeWaveSpeed,
    tags: str,
    controls: Controls,
    sent: str,
) -> None:
    await backend.submit(GenerationRequest(tags=tags, duration=30, seed=5, controls=controls))
    body = wavespeed.submits[0]
    assert body["tags"] == sent
    assert not {"bpm", "key_scale", "time_signature", "vocal_language"} & set(body)


async def test_one_submit_is_one_prediction_whatever_the_takes(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed
) -> None:
    await backend.submit(GenerationRequest(tags="lo-fi", duration=30, seed=5, takes=3))
    assert len(wavespeed.submits) == 1 and "batch_size" not in wavespeed.submits[0]
    assert wavespeed.submits[0]["seed"] == 5


async def test_a_sentence_is_refused_without_a_prediction(
    backend: WaveSpeedBackend, wavespeed: FakeWaveSpeed
) -> None:
    assert not backend.capabilities.describes
    assert (await backend.refresh_capabilities()) == backend.capabilities
    with pytest.raises(PermanentBackendError) as refused:
        await backend.submit(GenerationRequest(tags="", describe="a sad song about rain"))
    assert refused.value.code == "no_language_model" and wavespeed.submits == []
