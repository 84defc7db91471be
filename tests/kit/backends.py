"""Helpers for tests that drive a backend against its loopback fake (tests/backends and others):
keys the fakes expect, polling until a state, and checks on what a failure leaves behind."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from pathlib import Path

from bot.backends.download import Downloader
from bot.ports import Backend, RemoteState, RemoteStatus

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
