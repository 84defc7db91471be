"""/metrics with the real discord.py client: the gateway's heartbeat latency is read at the
scrape, once the client has one; a 429 it waits out is counted."""

from __future__ import annotations

import asyncio

from adapters.discord.delivery import DiscordDelivery
from tests.adapters.discord.conftest import CHANNEL, GUILD, World, bot_on
from tests.harness import running_core
from tests.kit.metrics import rendered, value

LATENCY = "acejam_discord_gateway_latency_seconds"


async def test_the_gateway_latency_is_shown_once_discord_has_one(world: World) -> None:
    async with running_core(world.settings) as core:
        before = await rendered(core.metrics)
        async with bot_on(core, world):
            async with asyncio.timeout(10):  # the first heartbeat's answer
                while (LATENCY, ()) not in (samples := await rendered(core.metrics)):
                    await asyncio.sleep(0.05)
    assert (LATENCY, ()) not in before  # no Discord client yet: no series
    assert 0 < value(samples, LATENCY) < 5


async def test_a_429_discord_py_waits_out_is_counted(world: World) -> None:
    world.dc.faults.add("POST /channels/{channel_id}/messages", status=429, retry_after=0.05)
    async with running_core(world.settings) as core, bot_on(core, world):
        delivery = core.service.notifier.delivery_for("discord")
        assert isinstance(delivery, DiscordDelivery)
        # Any post of the bot's: discord.py waits the 429 out and sends it again.
        await delivery.channel(CHANNEL, GUILD).send("hello")
        samples = await rendered(core.metrics)
    assert [m.content for m in world.dc.channel_messages(CHANNEL)] == ["hello"]
    assert value(samples, "acejam_rate_limit_waits_total", platform="discord") == 1
    assert value(samples, "acejam_rate_limit_wait_seconds_total", platform="discord") == 0.05
