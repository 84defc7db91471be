"""FakeDiscord's threads against the real discord.py 2.7 client: a bot starts a public thread
in a channel (``TextChannel.create_thread``), learns of it from THREAD_CREATE, posts in it, and
commands typed in the thread reach the bot with the thread as their channel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord
import pytest
from discord import app_commands

from tests.fakes.discord import FakeDiscord, Perm, point_discord_at

APP_ID = 1_180_000_000_000_000_001
GUILD = 1_180_000_000_000_000_100
CHANNEL = 1_180_000_000_000_000_101
LOCKED = 1_180_000_000_000_000_102
USER = 1_180_000_000_000_000_201


class ThreadBot(discord.Client):
    """/open makes a public thread named after its option and posts in it; /where says which
    channel (and parent) a command came from."""

    def __init__(self) -> None:
        super().__init__(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.made: list[discord.Thread] = []
        self.created = asyncio.Event()  # on_thread_create
        self.errors: list[discord.HTTPException] = []

        @self.tree.command(name="open", description="Open a thread")
        async def open_(interaction: discord.Interaction, name: str) -> None:
            await interaction.response.defer(ephemeral=True)
            channel = interaction.channel
            assert isinstance(channel, discord.TextChannel)
            try:
                thread = await channel.create_thread(
                    name=name, type=discord.ChannelType.public_thread
                )
            except discord.HTTPException as exc:
                self.errors.append(exc)
                await interaction.followup.send("could not", ephemeral=True)
                return
            self.made.append(thread)
            await thread.send(f"welcome to {thread.name}")
            await interaction.followup.send(thread.mention, ephemeral=True)

        @self.tree.command(name="where", description="Where am I")
        async def where(interaction: discord.Interaction) -> None:
            channel = interaction.channel
            parent = channel.parent_id if isinstance(channel, discord.Thread) else None
            kind = type(channel).__name__
            await interaction.response.send_message(f"{kind} {interaction.channel_id} {parent}")

    async def on_thread_create(self, thread: discord.Thread) -> None:
        self.created.set()

    async def setup_hook(self) -> None:
        self.tree.copy_global_to(guild=discord.Object(GUILD))
        await self.tree.sync(guild=discord.Object(GUILD))


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(application_id=APP_ID) as fake:
        fake.add_user(USER, "alice")
        fake.add_guild(
            GUILD,
            "Jam Club",
            channels=[
                (CHANNEL, "general"),
                {
                    "id": LOCKED,
                    "name": "no-threads",
                    "permission_overwrites": [
                        {"id": APP_ID, "type": 1, "deny": Perm.CREATE_PUBLIC_THREADS}
                    ],
                },
            ],
            members=[USER],
            bot_permissions=Perm.BOT_DEFAULT | Perm.CREATE_PUBLIC_THREADS,
        )
        yield fake


@contextlib.asynccontextmanager
async def running(bot: ThreadBot, dc: FakeDiscord) -> AsyncIterator[ThreadBot]:
    with point_discord_at(dc):
        task = asyncio.create_task(bot.start(dc.token))
        ready = asyncio.create_task(dc.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            ready.cancel()
            task.result()
        ready.result()
        await asyncio.wait_for(bot.wait_until_ready(), 10)
        await dc.wait_for_commands_synced("open", guild_id=GUILD)
        try:
            yield bot
        finally:
            await bot.close()
            await asyncio.wait_for(task, 10)


async def test_a_bot_starts_a_public_thread_posts_in_it_and_hears_commands_there(
    dc: FakeDiscord,
) -> None:
    async with running(ThreadBot(), dc) as bot:
        inter = await dc.invoke_slash(GUILD, CHANNEL, USER, "open", {"name": "rainy day jam"})
        await inter.wait_for_original(lambda m: m.content.startswith("<#"))
        (thread,) = dc.threads_of(CHANNEL)
        assert (thread["name"], thread["type"], thread["parent_id"]) == (
            "rainy day jam",
            11,
            str(CHANNEL),
        )
        assert thread["owner_id"] == str(APP_ID) and not thread["thread_metadata"]["archived"]
        thread_id = int(thread["id"])
        (made,) = bot.made
        assert made.id == thread_id and made.parent_id == CHANNEL
        await asyncio.wait_for(bot.created.wait(), 5)  # THREAD_CREATE reached the client
        guild = bot.get_guild(GUILD)
        assert guild is not None and guild.get_thread(thread_id) is not None
        welcome = await dc.wait_for_message(thread_id)
        assert welcome.content == "welcome to rainy day jam"
        # The channel shows that a thread was started (type 18), besides the private answer.
        (started,) = dc.channel_messages(CHANNEL, include_ephemeral=False)
        assert (started.type, started.content) == (18, "rainy day jam")
        assert started.message_reference == {"channel_id": str(thread_id), "guild_id": str(GUILD)}
        # A command typed in the thread arrives with the thread as its channel.
        where = await dc.invoke_slash(GUILD, thread_id, USER, "where")
        answer = await where.wait_for_original()
        assert answer.content == f"Thread {thread_id} {CHANNEL}"
        assert answer.channel_id == thread_id
        # Threads are not among the guild's listed channels.
        channels = await bot.http.get_all_guild_channels(GUILD)
        assert {int(c["id"]) for c in channels} == {CHANNEL, LOCKED}


async def test_starting_a_thread_needs_create_public_threads(dc: FakeDiscord) -> None:
    async with running(ThreadBot(), dc) as bot:
        inter = await dc.invoke_slash(GUILD, LOCKED, USER, "open", {"name": "nope"})
        await inter.wait_for_original(lambda m: m.content == "could not")
        (error,) = bot.errors
        assert isinstance(error, discord.Forbidden) and error.code == 50013
        assert dc.threads_of(LOCKED) == []


async def test_a_thread_name_over_100_characters_is_refused(dc: FakeDiscord) -> None:
    async with running(ThreadBot(), dc) as bot:
        inter = await dc.invoke_slash(GUILD, CHANNEL, USER, "open", {"name": "x" * 101})
        await inter.wait_for_original(lambda m: m.content == "could not")
        (error,) = bot.errors
        assert error.status == 400 and error.code == 50035
        assert dc.threads_of(CHANNEL) == []
