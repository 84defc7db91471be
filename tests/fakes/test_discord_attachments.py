"""The Discord fake takes a message with several attachments (multipart ``files[n]``) from the
real discord.py client and records them in order; and it holds the message to Discord's
limits: each file within the guild's upload limit, all of them within one request's 25 MiB."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import discord
import pytest

from tests.fakes.discord import FakeDiscord, point_discord_at

APP_ID = 1_180_000_000_000_000_001
GUILD = 1_180_000_000_000_000_100
CHANNEL = 1_180_000_000_000_000_101
MIB = 1024 * 1024


@pytest.fixture
async def channel() -> AsyncIterator[tuple[FakeDiscord, discord.PartialMessageable]]:
    async with FakeDiscord(application_id=APP_ID) as dc:
        dc.add_guild(GUILD, "Jam Club", channels=[(CHANNEL, "general")])
        client = discord.Client(intents=discord.Intents.none())
        with point_discord_at(dc):
            await client.login(dc.token)  # REST only: no gateway needed to post
            try:
                yield dc, client.get_partial_messageable(CHANNEL, guild_id=GUILD)
            finally:
                await client.close()


def files(*sizes: int) -> list[discord.File]:
    return [
        discord.File(io.BytesIO(bytes([n]) * size), f"take-{n}-seed-{100 + n}.mp3")
        for n, size in enumerate(sizes, start=1)
    ]


async def test_several_attachments_arrive_in_one_message_in_order(
    channel: tuple[FakeDiscord, discord.PartialMessageable],
) -> None:
    dc, target = channel
    sent = await target.send("three takes", files=files(1000, 2000, 3000))

    recorded = dc.message(sent.id)
    names = [a.filename for a in recorded.attachments]
    assert names == ["take-1-seed-101.mp3", "take-2-seed-102.mp3", "take-3-seed-103.mp3"]
    assert [a.size for a in recorded.attachments] == [1000, 2000, 3000]
    assert [a.filename for a in sent.attachments] == names


async def test_files_each_within_the_limit_may_still_pass_the_request_limit(
    channel: tuple[FakeDiscord, discord.PartialMessageable],
) -> None:
    dc, target = channel  # an unboosted guild: 10 MiB a file
    with pytest.raises(discord.HTTPException) as refused:
        await target.send(files=files(9 * MIB, 9 * MIB, 9 * MIB))  # 27 MiB in all
    assert (refused.value.status, refused.value.code) == (413, 40005)
    fitted = await target.send(files=files(8 * MIB, 8 * MIB, 8 * MIB))  # 24 MiB
    assert len(dc.message(fitted.id).attachments) == 3
