"""Helpers for tests that drive a backend against its loopback fake (tests/backends and others):
keys the fakes expect, polling until a state, and checks on what a failure leaves behind."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from pathlib import Path

from bot.backends.download import Downloader
from bot.ports import Backend, RemoteState, RemoteStatus
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.fakes.wavespeed_edits import AUDIO_TO_AUDIO, INPAINT, OUTPAINT

WS_KEY = "ws-test-key-0000"
ACE_KEY = "ace-test-key-0000"
TIME_SCALE = 0.02  # a nominal 3 s job takes 60 ms
FINAL = (RemoteState.SUCCEEDED, RemoteState.FAILED)

# ``downloads_for(backend_url, allowed_hosts=())``: the Downloader the app would build.
DownloadsFor = Callable[..., Downloader]


async def poll_until_state(
    backend: Backend, remote_id: str, states: tuple[RemoteState, ...], *, within: float = 5.0
) -> RemoteStatus:
    """Poll like a (very eager) worker until the job reaches one of ``states``."""
    async with asyncio.timeout(within):
        while True:
            status = (await backend.poll([remote_id])).get(remote_id)
            if status is not None and status.state in states:
                return status
            await asyncio.sleep(0.02)


async def poll_until_final(
    backend: Backend, remote_id: str, *, within: float = 5.0
) -> RemoteStatus:
    """Poll until the job ends upstream."""
    return await poll_until_state(backend, remote_id, FINAL, within=within)


def leftovers(directory: Path) -> list[str]:
    """Names of the files in ``directory`` (a failed download must leave none)."""
    return sorted(p.name for p in directory.iterdir())


def assert_secret_absent(exc: BaseException, secret: str) -> None:
    """The secret appears nowhere a log line or a user could see it."""
    shown = "".join(traceback.format_exception(exc)) + repr(exc) + str(getattr(exc, "detail", ""))
    assert secret not in shown


def assert_the_four_edits_went_through_uploads(
    ws: FakeWaveSpeed, *, remix_tags: str, never_sent: tuple[str, ...]
) -> None:
    """What WaveSpeed was sent for an extend by 10 s, a remix (``remix_tags``), a repaint of
    2–6 s of a 10 s track, and a remix of the user's own 12 s audio ("bossa"): each source
    uploaded first, then its URL on WaveSpeed's CDN to its model, and none of ``never_sent``
    (the platform's file URLs and token) in any request."""
    assert [m for m, _ in ws.edit_submits] == [OUTPAINT, AUDIO_TO_AUDIO, INPAINT, AUDIO_TO_AUDIO]
    extend, remixed, repainted, own = (body for _, body in ws.edit_submits)
    assert extend["extend_after_duration"] == 10 and extend["extend_before_duration"] == 0
    assert (remixed["edit_mode"], remixed["tags"]) == ("remix", remix_tags)
    assert (repainted["start_time"], repainted["end_time"]) == (2, 6)
    assert own["tags"] == "bossa"
    assert ws.upload_requests == len(ws.uploads) == 4
    for _, body in ws.edit_submits:
        assert body["audio"].startswith(f"{ws.cdn_url}/media/")
        assert not any(secret in repr(body) for secret in never_sent)
    sources = sorted(round(u.seconds) for u in ws.uploads.values())
    assert sources == [10, 10, 10, 12]  # the track three times, then the user's own audio
