"""/healthz and /readyz on the bot's listener (WEB_LISTEN), as an uptime monitor or an
orchestrator sees them: alive while the process answers; ready while the database answers,
every adapter has connected and the backend answered lately."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import run_bot, web_listener
from bot.config import Settings
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY, RecordingDelivery, running_core, wavespeed_settings
from tests.kit.outage import database_outage


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _readyz(base: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{base}/readyz")
    return response.status_code, response.json()


async def _until(base: str, status: int, timeout: float = 15.0) -> dict[str, Any]:
    """Ask /readyz until it answers ``status`` (as a monitor keeps asking)."""
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(httpx.ConnectError):  # not listening yet
                code, body = await _readyz(base)
                if code == status:
                    return body
            await asyncio.sleep(0.05)


def _settings(tmp_path: Path, base_url: str, port: int, **overrides: Any) -> Settings:
    return wavespeed_settings(tmp_path, base_url, web_listen=f"127.0.0.1:{port}", **overrides)


async def test_alive_and_ready_then_unready_until_the_adapter_connects(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    async with (
        FakeWaveSpeed(api_key=WAVESPEED_KEY) as ws,
        running_core(_settings(tmp_path, ws.base_url, port)) as core,
        web_listener(core, adapters=["telegram"]),
    ):
        async with httpx.AsyncClient() as http:
            alive = await http.get(f"{base}/healthz")
        assert (alive.status_code, alive.json()) == (200, {"alive": True})
        assert await _readyz(base) == (
            503,
            {
                "ready": False,
                "checks": {
                    "database": "ok",
                    "adapters": "not connected: telegram",
                    "backend": "ok",
                },
            },
        )
        core.service.register_delivery(RecordingDelivery("telegram"))
        assert await _readyz(base) == (
            200,
            {"ready": True, "checks": {"database": "ok", "adapters": "ok", "backend": "ok"}},
        )


async def test_acejam_run_serves_health_on_web_listen_ready_once_telegram_connected(
    tmp_path: Path,
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    async with FakeTelegram() as tg, FakeWaveSpeed(api_key=WAVESPEED_KEY) as ws:
        settings = _settings(
            tmp_path, ws.base_url, port, telegram_token=tg.token, telegram_api_base_url=tg.base_url
        )
        stop = asyncio.Event()
        bot = asyncio.create_task(run_bot(settings, stop))
        try:
            body = await _until(base, 200, timeout=30)
        finally:
            stop.set()
            await bot
    assert body == {"ready": True, "checks": {"database": "ok", "adapters": "ok", "backend": "ok"}}


async def test_a_backend_that_never_answered_is_not_ready(tmp_path: Path) -> None:
    port = _free_port()
    closed = f"http://127.0.0.1:{_free_port()}"
    async with (
        running_core(_settings(tmp_path, closed, port)) as core,
        web_listener(core),
    ):
        code, body = await _readyz(f"http://127.0.0.1:{port}")
    assert code == 503
    assert body["checks"] == {
        "database": "ok",
        "adapters": "ok",
        "backend": "no answer in the last 300 s",
    }


async def test_no_listener_unless_web_listen_or_webhooks_are_set(tmp_path: Path) -> None:
    port = _free_port()
    async with (
        FakeWaveSpeed(api_key=WAVESPEED_KEY) as ws,
        running_core(wavespeed_settings(tmp_path, ws.base_url)) as core,
        web_listener(core),
    ):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # nothing took a port it was not given


@pytest.fixture
async def pg_core(tmp_path: Path, postgres_url: str) -> AsyncIterator[tuple[str, str]]:
    port = _free_port()
    async with (
        FakeWaveSpeed(api_key=WAVESPEED_KEY) as ws,
        running_core(_settings(tmp_path, ws.base_url, port, database_url=postgres_url)) as core,
        web_listener(core),
    ):
        yield f"http://127.0.0.1:{port}", postgres_url


@pytest.mark.postgres
async def test_readyz_turns_unready_while_the_database_is_stopped_and_ready_after(
    pg_core: tuple[str, str],
) -> None:
    base, url = pg_core
    await _until(base, 200)
    async with database_outage(url):
        body = await _until(base, 503)
        assert body["checks"]["database"].startswith("does not answer")
        assert body["checks"]["backend"] == "ok"
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{base}/healthz")).status_code == 200  # alive all along
    body = await _until(base, 200)
    assert body == {"ready": True, "checks": {"database": "ok", "adapters": "ok", "backend": "ok"}}
