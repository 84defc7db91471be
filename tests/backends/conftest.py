"""Shared fixtures for the backend tests: a real httpx client and loopback fakes."""

from __future__ import annotations

import asyncio
import socket
import ssl
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from bot.backends.download import Downloader, DownloadPolicy
from bot.ports import Backend, RemoteState, RemoteStatus
from tests.fakes.acestep import FakeAceStep
from tests.fakes.wavespeed import FakeWaveSpeed

WS_KEY = "ws-test-key-0000"
ACE_KEY = "ace-test-key-0000"
TIME_SCALE = 0.02  # a nominal 3 s job takes 60 ms
FINAL = (RemoteState.SUCCEEDED, RemoteState.FAILED)


@pytest.fixture(scope="session")
def tls() -> ssl.SSLContext:
    # Building a client loads the CA bundle (~0.1 s); share one context across the tests.
    return ssl.create_default_context()


@pytest.fixture
def make_client(tls: ssl.SSLContext) -> Callable[..., httpx.AsyncClient]:
    """``make_client(read=0.2)``: a client with a short read timeout, for timeout tests."""

    def make(read: float = 2.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=httpx.Timeout(2.0, read=read), verify=tls)

    return make


@pytest.fixture
async def http(make_client: Callable[..., httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as client:
        yield client


DownloadsFor = Callable[..., Downloader]


@pytest.fixture
async def downloads_for(tls: ssl.SSLContext) -> AsyncIterator[DownloadsFor]:
    """``downloads_for(backend_url, allowed_hosts=())``: the Downloader the app would build."""
    opened: list[Downloader] = []

    def make(backend_url: str, allowed_hosts: tuple[str, ...] = ()) -> Downloader:
        policy = DownloadPolicy(backend_url, allowed_hosts)
        opened.append(Downloader(policy, timeout=httpx.Timeout(2.0), verify=tls))
        return opened[-1]

    yield make
    for downloads in opened:
        await downloads.aclose()


@pytest.fixture
async def wavespeed() -> AsyncIterator[FakeWaveSpeed]:
    async with FakeWaveSpeed(time_scale=TIME_SCALE, api_key=WS_KEY) as fake:
        yield fake


@pytest.fixture
async def acestep() -> AsyncIterator[FakeAceStep]:
    async with FakeAceStep(time_scale=TIME_SCALE, api_key=ACE_KEY) as fake:
        yield fake


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


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
