"""What every backend must do, run against both: AceStepBackend and WaveSpeedBackend, each
against its loopback fake. Only vendor quirks stay in test_acestep.py and test_wavespeed.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.backends.acestep import AceStepBackend
from bot.backends.wavespeed import WaveSpeedBackend
from bot.domain import GenerationRequest
from bot.errors import AudioError, PermanentBackendError, SubmitUncertain, TransientBackendError
from bot.ports import Backend, RemoteState
from tests.fakes.acestep import FakeAceStep
from tests.fakes.audio import probe_audio
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.kit.backends import (
    ACE_KEY,
    WS_KEY,
    DownloadsFor,
    assert_secret_absent,
    leftovers,
    poll_until_final,
)

SONG = GenerationRequest(tags="synthwave, driving", lyrics="[Chorus]\nneon", duration=12, seed=7)
MAX = 20_000_000


@dataclass
class Vendor:
    """One backend and its fake, with what differs between vendors spelled out."""

    fake: FakeAceStep | FakeWaveSpeed
    key: str
    downloads_for: DownloadsFor
    limits: tuple[str, int, float, bool, int]  # name, min_duration, min_poll, resubmit, max_conc
    formats: tuple[str, ...]  # output formats besides mp3

    def backend(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        fmt: str = "mp3",
    ) -> Backend:
        url = base_url or self.fake.base_url
        downloads = self.downloads_for(url)
        if isinstance(self.fake, FakeAceStep):
            return AceStepBackend(
                http, base_url=url, api_key=api_key, downloads=downloads, audio_format=fmt
            )
        self.fake.output_format = fmt  # WaveSpeed picks the format, not the client
        return WaveSpeedBackend(http, api_key=api_key or "", base_url=url, downloads=downloads)

    @property
    def jobs_upstream(self) -> int:
        fake = self.fake
        return len(fake.tasks) if isinstance(fake, FakeAceStep) else len(fake.predictions)

    async def wait_finished(self, remote_id: str) -> None:
        await self.fake.wait_finished(remote_id)


@pytest.fixture(params=["acestep", "wavespeed"])
def vendor(request: pytest.FixtureRequest, downloads_for: DownloadsFor) -> Vendor:
    if request.param == "acestep":
        ace: FakeAceStep = request.getfixturevalue("acestep")
        return Vendor(ace, ACE_KEY, downloads_for, ("acestep", 10, 1.0, True, 1), ("flac",))
    ws: FakeWaveSpeed = request.getfixturevalue("wavespeed")
    return Vendor(ws, WS_KEY, downloads_for, ("wavespeed", 5, 2.0, False, 2), ("wav",))


@pytest.fixture
def backend(http: httpx.AsyncClient, vendor: Vendor) -> Backend:
    return vendor.backend(http, api_key=vendor.key)


def test_it_is_a_backend_with_the_documented_limits(backend: Backend, vendor: Vendor) -> None:
    limits = (
        backend.name,
        backend.min_duration,
        backend.min_poll_interval,
        backend.resubmit_safe,
        backend.max_concurrency,
    )
    assert limits == vendor.limits


async def test_a_song_is_submitted_generated_and_downloaded(
    http: httpx.AsyncClient, vendor: Vendor, tmp_path: Path
) -> None:
    for fmt in ("mp3", *vendor.formats):
        backend = vendor.backend(http, api_key=vendor.key, fmt=fmt)
        task = await backend.submit(SONG)
        assert task.seed_used == 7

        status = await poll_until_final(backend, task.remote_id)
        assert status.state is RemoteState.SUCCEEDED and status.output_url

        audio = await backend.download(status.output_url, tmp_path / f"song-{fmt}", max_bytes=MAX)
        assert audio.format == fmt
        assert probe_audio(audio.path)[0] == pytest.approx(12.0, abs=0.1)


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429},
        {"status": 500},
        {"status": 502},
        {"status": 503},
        {"malformed": True},
        {"drop": True},
    ],
)
async def test_poll_errors_are_transient_and_pass(
    backend: Backend, vendor: Vendor, fault: dict[str, Any]
) -> None:
    task = await backend.submit(SONG)
    await vendor.wait_finished(task.remote_id)
    vendor.fake.faults.add("poll", **fault)
    with pytest.raises(TransientBackendError):
        await backend.poll([task.remote_id])
    status = (await backend.poll([task.remote_id]))[task.remote_id]
    assert status.state is RemoteState.SUCCEEDED


async def test_a_submit_that_times_out_after_being_accepted_is_uncertain(
    vendor: Vendor, make_client: Callable[..., httpx.AsyncClient]
) -> None:
    vendor.fake.faults.add("submit", delay_response=1.0)
    async with make_client(read=0.2) as impatient:
        backend = vendor.backend(impatient, api_key=vendor.key)
        with pytest.raises(SubmitUncertain) as caught:
            await backend.submit(SONG)
    # The job exists upstream: exactly one was sent, never a retry.
    assert len(vendor.fake.submits) == 1 and vendor.jobs_upstream == 1
    assert_secret_absent(caught.value, vendor.key)


async def test_a_refused_connection_is_transient(
    http: httpx.AsyncClient, vendor: Vendor, closed_port_url: str
) -> None:
    backend = vendor.backend(http, base_url=closed_port_url, api_key=vendor.key)
    with pytest.raises(TransientBackendError) as caught:
        await backend.submit(SONG)
    assert not isinstance(caught.value, SubmitUncertain)
    with pytest.raises(TransientBackendError):
        await backend.poll(["x"])


async def test_a_wrong_key_is_permanent_and_never_shown(
    http: httpx.AsyncClient, vendor: Vendor
) -> None:
    backend = vendor.backend(http, api_key="wrong-key-0000")
    for attempt in (backend.submit(SONG), backend.poll(["x"])):
        with pytest.raises(PermanentBackendError) as caught:
            await attempt
        assert caught.value.code == "auth_failed"
        assert_secret_absent(caught.value, "wrong-key-0000")


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"status": 404}, "download_expired"),
        ({"status": 403}, "download_expired"),
        ({"truncate": True}, "download_truncated"),
        ({"malformed": True}, "not_audio"),
        ({"redirect_to": "http://169.254.169.254/latest/meta-data"}, "download_refused"),
    ],
)
async def test_bad_downloads_are_audio_errors_and_leave_no_file(
    backend: Backend, vendor: Vendor, tmp_path: Path, fault: dict[str, Any], code: str
) -> None:
    task = await backend.submit(SONG)
    status = await poll_until_final(backend, task.remote_id)
    assert status.output_url
    vendor.fake.faults.add("download", **fault)
    with pytest.raises(AudioError) as caught:
        await backend.download(status.output_url, tmp_path / "song", max_bytes=MAX)
    assert caught.value.code == code
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "elsewhere", ["http://169.254.169.254/latest/meta-data", "http://127.0.0.2:9/x.mp3"]
)
async def test_an_output_url_off_the_allowlist_is_refused(
    backend: Backend, vendor: Vendor, tmp_path: Path, elsewhere: str
) -> None:
    vendor.fake.faults.add_job(output_url=elsewhere)
    task = await backend.submit(SONG)
    status = await poll_until_final(backend, task.remote_id)
    assert status.output_url == elsewhere
    with pytest.raises(AudioError) as caught:
        await backend.download(elsewhere, tmp_path / "song", max_bytes=MAX)
    assert caught.value.code == "download_refused"


async def test_an_oversized_output_is_refused(backend: Backend, tmp_path: Path) -> None:
    task = await backend.submit(SONG)
    status = await poll_until_final(backend, task.remote_id)
    assert status.output_url
    with pytest.raises(AudioError) as caught:
        await backend.download(status.output_url, tmp_path / "song", max_bytes=10_000)
    assert caught.value.code == "download_too_large"
    assert leftovers(tmp_path) == []
