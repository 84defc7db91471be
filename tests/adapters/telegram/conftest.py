"""The Telegram adapter as users meet it: the real PTB application (through ``serve``) polling
a loopback Telegram, the real core on a SQLite file, and a loopback WaveSpeed.

Both fakes and the bot run on the same shrunken clock (``POLL_SCALE``): Telegram's "one
message a second" is 50 ms here, and so are the bot's own flood windows and status pacing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.telegram.app import serve
from adapters.telegram.delivery import TelegramDelivery
from bot.app import Core, open_core
from bot.config import Settings
from bot.service import Requester
from tests.fakes.telegram import FakeChat, FakeTelegram, FakeUser, RecordedMessage
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import POLL_SCALE, WAVESPEED_KEY, running_core, wavespeed_settings

TOKEN = "123456:TEST-TOKEN"
GROUP_ID = -100123
# Waits end as soon as their condition holds; the bound is generous so a loaded 2-core
# machine never turns a slow pass into a failure.
WAIT = 30.0


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22.2+ warns when durations are read as ints; the bot copes either way.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="AceJamBot", time_scale=POLL_SCALE) as fake:
        yield fake


@pytest.fixture
async def ws() -> AsyncIterator[FakeWaveSpeed]:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        yield fake


def bot_settings(data_dir: Path, tg: FakeTelegram, ws: FakeWaveSpeed, **overrides: Any) -> Settings:
    return wavespeed_settings(
        data_dir,
        ws.base_url,
        telegram_token=TOKEN,
        telegram_api_base_url=tg.base_url,
        **overrides,
    )


@dataclass
class Rig:
    """One running bot and the people in its chats."""

    tg: FakeTelegram
    ws: FakeWaveSpeed
    core: Core
    group: FakeChat
    alice: FakeUser
    bob: FakeUser

    @property
    def delivery(self) -> TelegramDelivery:
        delivery = self.core.service.notifier.delivery_for("telegram")
        assert isinstance(delivery, TelegramDelivery)
        return delivery

    async def say(
        self,
        text: str,
        user: FakeUser | None = None,
        chat: FakeChat | None = None,
        reply_to: RecordedMessage | int | None = None,
        *,
        sender_chat: FakeChat | None = None,
    ) -> int:
        """A user sends ``text`` (on ``sender_chat``'s behalf, if given); returns its id."""
        sent = await self.tg.send_message(
            chat or self.group, user or self.alice, text, reply_to, sender_chat=sender_chat
        )
        return int(sent["message_id"])

    async def reply_to(
        self,
        message_id: int,
        chat: FakeChat | None = None,
        also: Callable[[RecordedMessage], bool] = lambda m: True,
    ) -> RecordedMessage:
        """The bot's first message answering ``message_id`` (and matching ``also``)."""
        return await self.tg.wait_for_message(
            chat or self.group,
            lambda m: m.reply_to_message_id == message_id and also(m),
            timeout=WAIT,
        )

    async def ask(self, text: str, user: FakeUser | None = None) -> RecordedMessage:
        """Send ``text`` in the group and return the bot's answer to it."""
        return await self.reply_to(await self.say(text, user))


def requester(user: FakeUser) -> Requester:
    return Requester("telegram", str(user.id))


@contextlib.asynccontextmanager
async def telegram_bot(
    settings: Settings, tg: FakeTelegram, ws: FakeWaveSpeed, *, worker: bool = True
) -> AsyncIterator[Rig]:
    """``serve`` plus the core, as ``acejam run`` wires them; stopped on exit.

    worker=False: no worker runs, so jobs stay queued and the test plays the worker's part
    (its events go straight to the Delivery port).
    """
    core_context = running_core(settings) if worker else open_core(settings)
    async with core_context as core:
        # As `acejam run` does before the adapters start: they offer what the backend can.
        await core.backend.refresh_capabilities()
        stop = asyncio.Event()
        task = asyncio.create_task(serve(settings, core.service, stop))
        try:
            async with asyncio.timeout(WAIT):
                while core.service.notifier.delivery_for("telegram") is None:
                    assert not task.done(), task.exception()
                    await asyncio.sleep(0.01)
            yield Rig(
                tg=tg,
                ws=ws,
                core=core,
                group=tg.group_chat(GROUP_ID, "Jam room"),
                alice=tg.user(42, "Alice", "alice"),
                bob=tg.user(43, "Bob", "bob"),
            )
        finally:
            stop.set()
            await asyncio.wait_for(task, WAIT)


@pytest.fixture
async def rig(tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed) -> AsyncIterator[Rig]:
    async with telegram_bot(bot_settings(tmp_path, tg, ws), tg, ws) as running:
        yield running
