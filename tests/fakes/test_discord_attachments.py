"""The Discord fake takes a message with several attachments (multipart ``files[n]``) from the
real discord.py client and records them in order; and it holds the message to Discord's
limits: each file within the guild's upload limit, all of them within one request's 25 MiB.
A file a user attaches to a command option arrives resolved, as Discord sends it, and is
fetched from the fake's CDN."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.fakes.discord import FakeDiscord, point_discord_at

APP_ID = 1_180_000_000_000_000_001
GUILD = 1_180_000_000_000_000_100
CHANNEL = 1_180_000_000_000_000_101
USER = 1_180_000_000_000_000_201
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


class UploadBot(discord.Client):
    """A command with an attachment option (type 11), as /remix's ``audio`` is."""

    def __init__(self) -> None:
        super().__init__(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.seen: list[discord.Attachment] = []
        self.read: list[bytes] = []

        @self.tree.command(name="upload", description="Send a file")
        async def upload(interaction: discord.Interaction, audio: discord.Attachment) -> None:
            self.seen.append(audio)
            await interaction.response.defer(ephemeral=True, thinking=True)
            self.read.append(await audio.read())
            await interaction.followup.send("got it", ephemeral=True)

    async def setup_hook(self) -> None:
        self.tree.copy_global_to(guild=discord.Object(GUILD))
        await self.tree.sync(guild=discord.Object(GUILD))


async def test_an_attachment_option_arrives_resolved_and_downloads_from_the_fake_cdn() -> None:
    async with FakeDiscord(application_id=APP_ID) as dc:
        dc.add_user(USER, "alice")
        dc.add_guild(GUILD, "Jam Club", channels=[(CHANNEL, "general")], members=[USER])
        bot = UploadBot()
        with point_discord_at(dc):
            task = asyncio.create_task(bot.start(dc.token))
            try:
                await dc.wait_until_ready()
                await dc.wait_for_commands_synced("upload", guild_id=GUILD)
                (option,) = dc.command("upload", GUILD)["options"]
                assert (option["name"], option["type"]) == ("audio", 11)
                inter = await dc.invoke_slash(
                    GUILD, CHANNEL, USER, "upload", {"audio": ("take.mp3", b"ID3" * 100)}
                )
                answer = await inter.wait_for_original(lambda m: not m.loading)
                on_api = bot.seen[0].url.replace(dc.cdn_url, dc.base_url)
                async with aiohttp.ClientSession() as http, http.get(on_api) as resp:
                    api_answer = resp.status
            finally:
                await bot.close()
                await asyncio.wait_for(task, 10)
    assert answer.content == "got it"
    (audio,) = bot.seen
    # What Discord says of the file, before anyone fetches it: the real payload's fields.
    assert (audio.filename, audio.size, audio.content_type) == ("take.mp3", 300, "audio/mpeg")
    assert audio.ephemeral and audio.url.startswith(dc.cdn_url + "/attachments/")
    assert bot.read == [b"ID3" * 100] and dc.cdn_downloads == [audio.id]
    assert api_answer == 404  # the API host serves no files, as discord.com doesn't
