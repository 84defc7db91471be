"""The real discord.py client (through `serve`) against FakeDiscord, with the real core
(SQLite in tmp_path) and FakeWaveSpeed making the songs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord.gateway
import discord.http
import pytest

from adapters.discord.client import Tuning, serve
from bot.app import Core
from bot.config import Settings
from tests.fakes.discord import FakeDiscord, RecordedMessage
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY, running_core, wavespeed_settings

APP_ID = 1_190_000_000_000_000_001
GUILD = 1_190_000_000_000_000_100
CHANNEL = 1_190_000_000_000_000_101
OTHER_GUILD = 1_190_000_000_000_000_300
OTHER_CHANNEL = 1_190_000_000_000_000_301
ALICE = 1_190_000_000_000_000_201
BOB = 1_190_000_000_000_000_202
TOKEN = "MTE5.FAKE.TEST-TOKEN"

FAST = Tuning(guild_ready_timeout=0.05, identify_delay=0.05, edit_interval=0.05, settle=0.05)
# Discord-like buckets, only wider: tests exercise coalescing, not discord.py's waiting.
LOOSE_LIMITS = {
    "POST /channels/{channel_id}/messages": (50, 1.0),
    "PATCH /channels/{channel_id}/messages/{message_id}": (50, 1.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": (50, 1.0),
    "POST /webhooks/{webhook_id}/{webhook_token}": (50, 1.0),
}


class ManualClock:
    """The adapter's clock for token expiry, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class World:
    dc: FakeDiscord
    ws: FakeWaveSpeed
    settings: Settings
    data_dir: Path


@dataclass
class Running:
    core: Core
    world: World
    stop: asyncio.Event
    task: asyncio.Task[None]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dc(self) -> FakeDiscord:
        return self.world.dc


@pytest.fixture(autouse=True)
def restore_discord_endpoints() -> Any:
    """discord.py keeps its REST base and gateway URL in class attributes: put them back."""
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with (
        FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as ws,
        FakeDiscord(application_id=APP_ID, token=TOKEN, rate_limits=LOOSE_LIMITS) as dc,
    ):
        populate(dc)
        settings = wavespeed_settings(
            tmp_path,
            ws.base_url,
            discord_token=TOKEN,
            discord_api_base_url=dc.api_base,
            discord_guild_ids=str(GUILD),
        )
        yield World(dc, ws, settings, tmp_path)


def populate(dc: FakeDiscord) -> None:
    """Alice and Bob in the Jam Club (and Alice elsewhere too)."""
    dc.add_user(ALICE, "alice", global_name="Alice")
    dc.add_user(BOB, "bob")
    dc.add_guild(GUILD, "Jam Club", channels=[(CHANNEL, "general")], members=[ALICE, BOB])
    dc.add_guild(OTHER_GUILD, "Elsewhere", channels=[(OTHER_CHANNEL, "lobby")], members=[ALICE])


async def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll a condition of our own (not one the fakes can wait on)."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if result:
                return result
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def bot_on(
    core: Core, world: World, *, tuning: Tuning = FAST, settings: Settings | None = None
) -> AsyncIterator[Running]:
    """`serve` on an already running core, until the block ends."""
    stop = asyncio.Event()
    since = len(world.dc.command_syncs)
    settings = settings or world.settings
    task = asyncio.create_task(serve(settings, core.service, stop, tuning=tuning))

    async def ready() -> None:
        if not settings.discord_shard_ids:  # the fake waits for every shard of the count
            await world.dc.wait_until_ready()
        await wait_for(lambda: len(world.dc.command_syncs) > since)
        await wait_for(lambda: core.service.notifier.delivery_for("discord") is not None)

    waiter = asyncio.create_task(ready())
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # serve died before it was ready: show why
        raise AssertionError("serve returned before it was ready")
    waiter.result()
    try:
        yield Running(core, world, stop, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


@contextlib.asynccontextmanager
async def jam(world: World, *, tuning: Tuning = FAST, **overrides: Any) -> AsyncIterator[Running]:
    """Core (worker included) plus the Discord bot."""
    settings = world.settings.model_copy(update=overrides) if overrides else world.settings
    async with (
        running_core(settings) as core,
        bot_on(core, world, tuning=tuning, settings=settings) as run,
    ):
        yield run


def track_messages(dc: FakeDiscord, channel: int = CHANNEL) -> list[RecordedMessage]:
    return [
        m
        for m in dc.channel_messages(channel)
        if any(a.filename.endswith(".mp3") for a in m.attachments)
    ]


def mp3_of(message: RecordedMessage) -> Any:
    return next(a for a in message.attachments if a.filename.endswith(".mp3"))


def status_text(message: RecordedMessage) -> str:
    """The status line of a status message (the first line of its embed); "" before it has one."""
    if not message.embeds:
        return ""
    return str(message.embeds[0].get("description", "")).split("\n", 1)[0]


def status_history(message: RecordedMessage) -> list[tuple[str, str, list[str]]]:
    """Every state a status message went through, as (status line, description, button
    ids) per edit, so a test can see states that were quickly replaced."""
    out = []
    for edit in message.edits:
        embeds = edit.payload.get("embeds") or []
        if not embeds:
            continue
        description = str(embeds[0].get("description", ""))
        buttons = [
            c.get("custom_id", "")
            for row in edit.payload.get("components") or []
            for c in row.get("components", [])
        ]
        out.append((description.split("\n", 1)[0], description, buttons))
    return out


def field_value(message: RecordedMessage, name: str) -> str:
    (embed,) = [e for e in message.embeds if any(f["name"] == name for f in e.get("fields", []))]
    return next(f["value"] for f in embed["fields"] if f["name"] == name)


def removed_via(dc: FakeDiscord, message: RecordedMessage) -> list[str]:
    """How each successful removal of ``message`` was asked: "token" (the interaction's
    webhook) or "bot" (the bot's own token)."""
    return [
        "bot" if r.path.startswith("/channels/") else "token"
        for r in dc.requests
        if r.method == "DELETE" and r.path.endswith(f"/messages/{message.id}") and r.status == 204
    ]


def no_token_expired(dc: FakeDiscord) -> bool:
    return all(r.code != 50027 for i in dc.interactions for r in i.rejections)
