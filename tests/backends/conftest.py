"""Fixtures for the backend tests: a real httpx client and loopback fakes (helpers to import
live in tests/kit/backends.py)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from bot.backends.download import Downloader, DownloadPolicy
from tests.fakes.acestep import FakeAceStep
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.kit.backends import ACE_KEY, TIME_SCALE, WS_KEY, DownloadsFor


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
