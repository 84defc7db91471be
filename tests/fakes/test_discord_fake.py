"""FakeDiscord proves itself against the real discord.py 2.7 client.

Every test starts a real ``discord.Client`` (with an ``app_commands.CommandTree``) or
``AutoShardedClient`` with ``start(token)`` against the loopback fake and checks what a Discord
user - or the bot's own code - would observe. Nothing waits on a fixed sleep: the fake's waiters
are condition-based and expiry is driven by ``dc.advance_time``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from typing import TypeVar

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.fakes.discord import (
    EPHEMERAL,
    FakeDiscord,
    FakeDiscordError,
    FakeDiscordTimeout,
    Perm,
    point_discord_at,
)

APP_ID = 1_180_000_000_000_000_001
GUILD = 1_180_000_000_000_000_100
CHANNEL = 1_180_000_000_000_000_101
NSFW_CHANNEL = 1_180_000_000_000_000_102
USER = 1_180_000_000_000_000_201
ADMIN = 1_180_000_000_000_000_202
AUDIO = b"ID3" + bytes(range(256)) * 32  # 8 KiB that a test can recognise byte for byte

ClientT = TypeVar("ClientT", bound=discord.Client)


class RetryView(discord.ui.View):
    """A persistent view: no timeout, a static custom_id that carries the job id."""

    def __init__(self, job_id: int, clicks: list[tuple[int, int]] | None = None) -> None:
        super().__init__(timeout=None)
        self.clicks = clicks if clicks is not None else []
        self.job_id = job_id
        button: discord.ui.Button[RetryView] = discord.ui.Button(
            label="Retry",
            emoji="🔁",
            style=discord.ButtonStyle.primary,
            custom_id=f"acejam:retry:{job_id}",
        )
        button.callback = self.retry  # type: ignore[method-assign]
        self.add_item(button)

    async def retry(self, interaction: discord.Interaction) -> None:
        self.clicks.append((self.job_id, interaction.user.id))
        await interaction.response.send_message("Retrying your song…", ephemeral=True)


class LyricsModal(discord.ui.Modal, title="Your lyrics"):
    lyrics: discord.ui.TextInput[LyricsModal] = discord.ui.TextInput(
        label="Lyrics", style=discord.TextStyle.long, custom_id="lyrics", max_length=3000
    )

    def __init__(self, submitted: list[str]) -> None:
        super().__init__(custom_id="acejam:lyrics")
        self.submitted = submitted

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.submitted.append(self.lyrics.value)
        await interaction.response.send_message(
            f"Got {len(self.lyrics.value)} characters of lyrics", ephemeral=True
        )


class JamBot(discord.Client):
    """A small bot shaped like AceJam's: /song defers then delivers a file through a
    follow-up, /lyrics opens a modal, /slow answers only when the test lets it."""

    def __init__(self, *, persistent_job: int | None = None) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.errors: list[discord.HTTPException] = []  # what the handlers' calls raised
        self.filesize_limits: list[int] = []
        self.submitted: list[str] = []
        self.clicks: list[tuple[int, int]] = []
        self.persistent_job = persistent_job
        self.hold = asyncio.Event()  # tests clear it to make a handler wait
        self.hold.set()
        self.upload = AUDIO
        self.seen: list[tuple[int, str]] = []  # (author, content) of users' messages
        self.message_seen = asyncio.Event()

        @self.tree.command(name="song", description="Make a song")
        @app_commands.describe(tags="Style tags, e.g. lo-fi", duration="Length in seconds")
        async def song(
            interaction: discord.Interaction,
            tags: str,
            duration: app_commands.Range[int, 10, 240] = 60,
        ) -> None:
            self.filesize_limits.append(interaction.filesize_limit)
            await interaction.response.defer(thinking=True)
            await self.hold.wait()
            try:
                await interaction.followup.send(
                    f"{tags} ({duration} s) for {interaction.user.mention}",
                    file=discord.File(io.BytesIO(self.upload), "song.mp3"),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            except discord.HTTPException as e:
                self.errors.append(e)

        @song.autocomplete("tags")
        async def song_tags(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            known = ["lo-fi", "lounge", "metal"]
            return [app_commands.Choice(name=t, value=t) for t in known if t.startswith(current)]

        @self.tree.command(name="lyrics", description="Write your own lyrics")
        async def lyrics(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(LyricsModal(self.submitted))

        @self.tree.command(name="slow", description="Answers late")
        async def slow(interaction: discord.Interaction) -> None:
            await self.hold.wait()
            try:
                await interaction.response.defer()
            except discord.HTTPException as e:
                self.errors.append(e)

        @self.tree.command(name="private", description="Answers only you")
        async def private(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send("only you see this")
            await interaction.followup.send("everyone sees this")

        @self.tree.command(name="config", description="Server settings")
        @app_commands.default_permissions(manage_guild=True)
        async def config(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("settings", ephemeral=True)

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:  # its own messages come back through the gateway too
            return
        self.seen.append((message.author.id, message.content))
        self.message_seen.set()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5 s before every re-IDENTIFY (client.py:611) to pace session
        starts; the fake does not enforce that pacing, so tests skip it."""

    async def setup_hook(self) -> None:
        if self.persistent_job is not None:
            self.add_view(RetryView(self.persistent_job, self.clicks))
        self.tree.copy_global_to(guild=discord.Object(GUILD))
        await self.tree.sync(guild=discord.Object(GUILD))


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(application_id=APP_ID) as fake:
        fake.add_user(USER, "alice")
        fake.add_user(ADMIN, "root")
        fake.add_guild(
            GUILD,
            "Jam Club",
            premium_tier=2,
            channels=[
                (CHANNEL, "general"),
                {"id": NSFW_CHANNEL, "name": "after-dark", "nsfw": True},
            ],
            members=[USER, {"id": ADMIN, "permissions": Perm.MANAGE_GUILD}],
        )
        yield fake


@contextlib.asynccontextmanager
async def running(bot: ClientT, dc: FakeDiscord) -> AsyncIterator[ClientT]:
    """Run ``bot.start(token)`` against the fake until the block ends, then close it."""
    with point_discord_at(dc):
        task = asyncio.create_task(bot.start(dc.token))
        ready = asyncio.create_task(dc.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:  # the bot died before connecting: show why
            ready.cancel()
            task.result()
        ready.result()
        await asyncio.wait_for(bot.wait_until_ready(), 10)
        try:
            yield bot
        finally:
            await bot.close()
            await asyncio.wait_for(task, 10)


async def test_bot_connects_and_gets_its_guilds(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc) as bot:
        guild = bot.get_guild(GUILD)
        assert guild is not None and guild.name == "Jam Club"
        assert guild.me is not None
        channel = guild.get_channel(NSFW_CHANNEL)
        assert isinstance(channel, discord.TextChannel) and channel.is_nsfw()
        assert guild.premium_tier == 2 and guild.filesize_limit == 50 * 1024 * 1024
        assert bot.application_id == APP_ID
        assert dc.identify_payloads[0]["intents"] == discord.Intents.default().value
        # A plain Client never asks /gateway/bot: it dials DEFAULT_GATEWAY, asking for
        # zlib-stream, which the fake honours with compressed binary frames.
        assert dc.requests_to("GET /gateway/bot") == []
        connect = dc.gateway_events[0]
        assert (connect.kind, connect.path) == ("connect", "/gateway")
        assert connect.query == {"v": "10", "encoding": "json", "compress": "zlib-stream"}


async def test_tree_sync_stores_the_options_users_see(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc):
        commands = await dc.wait_for_commands_synced("song", "config", guild_id=GUILD)
        assert dc.global_commands() == []
        song = next(c for c in commands if c["name"] == "song")
        assert song["description"] == "Make a song"
        tags, duration = song["options"]
        assert (tags["name"], tags["type"], tags["required"]) == ("tags", 3, True)
        assert tags["description"] == "Style tags, e.g. lo-fi"
        assert (duration["min_value"], duration["max_value"]) == (10, 240)
        assert dc.command("config", GUILD)["default_member_permissions"] == str(Perm.MANAGE_GUILD)
        # Discord hides /config from members without Manage Server, and refuses bad input.
        with pytest.raises(FakeDiscordError, match="default_member_permissions"):
            await dc.invoke_slash(GUILD, CHANNEL, USER, "config")
        with pytest.raises(FakeDiscordError, match=r"outside 10\.\.240"):
            await dc.invoke_slash(GUILD, CHANNEL, USER, "song", {"tags": "x", "duration": 5})
        admin = await dc.invoke_slash(GUILD, CHANNEL, ADMIN, "config")
        assert (await admin.wait_for_original()).content == "settings"


async def test_slash_defer_then_file_followup_fills_the_original(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc) as bot:
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, USER, "song", {"tags": "lo-fi @everyone", "duration": 90}
        )
        message = await inter.wait_for_original(lambda m: m.attachments)
        assert inter.response_type == 5  # deferred: "JamBot is thinking..."
        assert inter.followups == [message]  # the follow-up filled @original, no new message
        assert message.via == "interaction" and [e.via for e in message.edits] == ["followup"]
        assert not message.loading and not message.ephemeral
        assert message.content == f"lo-fi @everyone (90 s) for <@{USER}>"
        assert not message.pings.anyone  # AllowedMentions.none(): nobody is notified
        (attachment,) = message.attachments
        assert (attachment.filename, attachment.data) == ("song.mp3", AUDIO)
        assert attachment.content_type == "audio/mpeg"  # Discord guesses from the name
        assert attachment.upload_content_type == "application/octet-stream"  # discord.py sends
        assert bot.filesize_limits == [50 * 1024 * 1024]  # attachment_size_limit, tier 2
        assert dc.channel_messages(CHANNEL) == [message]
        assert bot.errors == []
        async with aiohttp.ClientSession() as http, http.get(attachment.url) as resp:
            assert await resp.read() == AUDIO  # served like the CDN


async def test_persistent_view_button_works_after_a_restart(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc) as first:
        channel = first.get_channel(CHANNEL)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("Your song is ready", view=RetryView(42))
    posted = dc.message(sent.id)
    assert posted.via == "channel" and posted.button("Retry").emoji == "🔁"

    restarted = JamBot(persistent_job=42)  # a new process: only add_view knows the button
    async with running(restarted, dc):
        click = await dc.click_button(sent.id, "acejam:retry:42", USER)
        reply = await click.wait_for_original()
        assert restarted.clicks == [(42, USER)]
        assert reply.content == "Retrying your song…" and reply.flags & EPHEMERAL
        assert click.payload["message"]["id"] == str(sent.id)
        assert reply in dc.channel_messages(CHANNEL)  # ephemeral, yet the user saw it
        assert reply not in dc.channel_messages(CHANNEL, include_ephemeral=False)


async def test_modal_round_trip(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc) as bot:
        opener = await dc.invoke_slash(GUILD, CHANNEL, USER, "lyrics")
        modal = await opener.wait_for_modal()
        assert modal["title"] == "Your lyrics" and modal["custom_id"] == "acejam:lyrics"
        with pytest.raises(FakeDiscordError, match="required"):
            await dc.submit_modal(opener, "acejam:lyrics", {})
        submit = await dc.submit_modal(opener, "acejam:lyrics", {"lyrics": "la la la"})
        reply = await submit.wait_for_original()
        assert bot.submitted == ["la la la"]
        assert reply.ephemeral and reply.content == "Got 8 characters of lyrics"


async def test_429_with_via_is_retried_and_delivered_once(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc) as bot:
        dc.faults.add(
            route="POST /channels/{channel_id}/messages", status=429, retry_after=0.05, times=1
        )
        channel = bot.get_channel(CHANNEL)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("queued: position 3")
        attempts = dc.requests_to("POST /channels/{channel_id}/messages")
        assert [r.status for r in attempts] == [429, 200]
        assert attempts[0].response["retry_after"] == 0.05
        assert [m.id for m in dc.channel_messages(CHANNEL)] == [sent.id]
        assert dc.invalid_request_count == 1


async def test_429_without_via_is_not_retried(dc: FakeDiscord) -> None:
    # discord.py takes a 429 without a Via header for a Cloudflare ban and gives up.
    async with running(JamBot(), dc) as bot:
        dc.faults.add(route="POST /channels/*", status=429, retry_after=0.05, via=False)
        channel = bot.get_channel(CHANNEL)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as caught:
            await channel.send("hello")
        assert caught.value.status == 429
        assert dc.channel_messages(CHANNEL) == []


async def test_first_response_after_3_seconds_is_unknown_interaction(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc) as bot:
        bot.hold.clear()
        inter = await dc.invoke_slash(GUILD, CHANNEL, USER, "slow")
        await dc.advance_time(3.5)
        bot.hold.set()
        rejection = await inter.wait_for_rejection(10062)
        assert rejection.status == 404
        (error,) = bot.errors
        assert isinstance(error, discord.NotFound) and error.code == 10062
        assert not inter.acknowledged


async def test_response_deadline_follows_time_scale() -> None:
    async with FakeDiscord(application_id=APP_ID, time_scale=0.02) as dc:
        dc.add_user(USER, "alice")
        dc.add_guild(GUILD, "Jam Club", channels=[(CHANNEL, "general")], members=[USER])
        async with running(JamBot(), dc) as bot:
            bot.hold.clear()
            inter = await dc.invoke_slash(GUILD, CHANNEL, USER, "slow")
            await inter.wait_until_response_deadline_passed()  # 3 nominal s = 60 ms here
            bot.hold.set()
            assert (await inter.wait_for_rejection()).code == 10062


async def test_followup_after_15_minutes_is_invalid_webhook_token(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc) as bot:
        bot.hold.clear()
        inter = await dc.invoke_slash(GUILD, CHANNEL, USER, "song", {"tags": "ambient"})
        await inter.wait_for_response()
        await dc.advance_time(15 * 60 + 1)
        bot.hold.set()
        await inter.wait_for_rejection(50027)
        (error,) = bot.errors
        assert (error.status, error.code) == (401, 50027)
        assert inter.original is not None and inter.original.loading  # still "thinking"
        assert dc.invalid_request_count == 1


async def test_upload_over_the_guild_limit_is_413(dc: FakeDiscord) -> None:
    dc.set_filesize_limit(GUILD, 4096)
    async with running(JamBot(), dc) as bot:
        inter = await dc.invoke_slash(GUILD, CHANNEL, USER, "song", {"tags": "noise"})
        rejection = await inter.wait_for_rejection(40005)
        assert rejection.status == 413
        (error,) = bot.errors
        assert (error.status, error.code) == (413, 40005)
        # The bot could have known: Interaction.filesize_limit carries the override, while
        # discord.py's Guild.filesize_limit only knows the premium tier table.
        assert bot.filesize_limits == [4096]
        guild = bot.get_guild(GUILD)
        assert guild is not None and guild.filesize_limit == 50 * 1024 * 1024
        assert inter.original is not None and inter.original.attachments == []


@pytest.mark.parametrize("code", [4000, None], ids=["close-4000", "network-drop"])
async def test_dropped_connection_resumes_and_replays(dc: FakeDiscord, code: int | None) -> None:
    async with running(JamBot(), dc):
        await dc.drop_connection(code=code)
        # Sent while the bot is away: kept in the session and replayed after RESUME.
        inter = await dc.invoke_slash(GUILD, CHANNEL, USER, "song", {"tags": "dub"})
        resumed = await dc.wait_for_resume()
        assert resumed.path == "/resume-gateway"  # READY's resume_gateway_url
        assert (await inter.wait_for_original(lambda m: m.attachments)).content.startswith("dub")
        assert len(dc.identify_payloads) == 1


async def test_unresumable_session_gets_op9_and_reidentifies(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc):
        await dc.drop_connection(forget_session=True)
        await dc.wait_for_gateway_event("invalid_session", since=len(dc.gateway_events) - 1)
        await dc.wait_for_identify()
        await dc.wait_until_ready()
        inter = await dc.invoke_slash(GUILD, CHANNEL, USER, "lyrics")
        await inter.wait_for_modal()


async def test_op7_reconnect_and_resumable_op9_resume(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc):
        before = dc.session_info()["session_id"]
        await dc.send_reconnect()
        assert (await dc.wait_for_resume()).session_id == before
        await dc.invalidate_session(resumable=True)
        assert (await dc.wait_for_resume()).session_id == before
        assert len(dc.identify_payloads) == 1


class FastShardedClient(discord.AutoShardedClient):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Skip discord.py's 5 s pause before each non-first shard's IDENTIFY."""


async def test_autosharded_client_gets_each_shards_guilds() -> None:
    shard0_guild, shard1_guild = 1000 << 22, (1001 << 22) | 7
    assert [FakeDiscord.shard_for(g, 2) for g in (shard0_guild, shard1_guild)] == [0, 1]
    async with FakeDiscord(application_id=APP_ID, shard_count=2) as dc:
        dc.add_user(USER, "alice")
        dc.add_guild(shard0_guild, "Zero", channels=[(CHANNEL, "general")], members=[USER])
        dc.add_guild(shard1_guild, "One", channels=[(CHANNEL + 1, "general")], members=[USER])
        seen: list[int | None] = []
        bot = FastShardedClient(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        tree = app_commands.CommandTree(bot)

        @tree.command(name="ping", description="Ping")
        async def ping(interaction: discord.Interaction) -> None:
            seen.append(interaction.guild_id)
            await interaction.response.send_message("pong")

        async def setup_hook() -> None:
            await tree.sync()

        bot.setup_hook = setup_hook  # type: ignore[method-assign]
        async with running(bot, dc):
            assert len(dc.requests_to("GET /gateway/bot")) == 1  # AutoSharded asks; Client not
            assert sorted(p["shard"][0] for p in dc.identify_payloads) == [0, 1]
            for guild_id, shard in ((shard0_guild, 0), (shard1_guild, 1)):
                guild = bot.get_guild(guild_id)
                assert guild is not None and guild.shard_id == shard
            inter = await dc.invoke_slash(shard1_guild, CHANNEL + 1, USER, "ping")
            assert (await inter.wait_for_original()).content == "pong"
            assert seen == [shard1_guild]


async def test_close_is_clean(dc: FakeDiscord) -> None:
    bot = JamBot()
    async with running(bot, dc):
        pass
    assert bot.is_closed()
    close = await dc.wait_for_gateway_event("client_close")
    # discord.py 2.7.1 + aiohttp 3.14: close() wakes the reading task, which closes first with
    # its default 4000 - not the 1000 Client.close() asks for. Either way: no reconnect.
    assert close.code in (1000, 4000)
    assert [e.kind for e in dc.gateway_events].count("connect") == 1


async def test_rest_errors_and_wire_format(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc) as bot:
        channel = bot.get_channel(CHANNEL)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        assert (too_long.value.status, too_long.value.code) == (400, 50035)
        assert "content" in too_long.value.text
        first = await channel.send("queued", nonce=77)
        again = await channel.send("queued", nonce=77)  # enforce_nonce: same message back
        assert first.id == again.id and len(dc.channel_messages(CHANNEL)) == 1
        reply = await channel.send(f"<@{USER}> done", reference=first)
        recorded = dc.message(reply.id)
        assert recorded.pings.users == {USER} and recorded.message_reference is not None
        with pytest.raises(discord.NotFound) as unknown:
            await bot.fetch_channel(424242)
        assert unknown.value.code == 10003

    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bot {dc.token}"}
        async with http.get(f"{dc.api_base}/users/@me", headers=headers) as resp:
            assert resp.headers["Content-Type"] == "application/json"  # exactly, no charset
            assert "X-RateLimit-Remaining" in resp.headers
            assert "X-RateLimit-Bucket" in resp.headers
        async with http.get(
            f"{dc.api_base}/users/@me", headers={"Authorization": "Bot wrong"}
        ) as resp:
            assert resp.status == 401
            assert await resp.json() == {"message": "401: Unauthorized", "code": 0}
        async with http.get(f"{dc.api_base}/no/such/route", headers=headers) as resp:
            assert resp.status == 404
            assert await resp.json() == {"message": "404: Not Found", "code": 0}


async def test_second_initial_response_is_already_acknowledged(dc: FakeDiscord) -> None:
    # discord.py refuses a second response locally (InteractionResponded), so hit the wire.
    async with running(JamBot(), dc):
        inter = await dc.invoke_slash(GUILD, CHANNEL, USER, "lyrics")
        await inter.wait_for_modal()
        url = f"{dc.api_base}/interactions/{inter.id}/{inter.token}/callback"
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, json={"type": 4, "data": {"content": "again"}}) as resp,
        ):
            assert resp.status == 400
            assert (await resp.json())["code"] == 40060


class DoneView(discord.ui.View):
    @discord.ui.button(label="Done", custom_id="done", style=discord.ButtonStyle.success)
    async def done(
        self, interaction: discord.Interaction, button: discord.ui.Button[DoneView]
    ) -> None:
        button.disabled = True
        await interaction.response.edit_message(content="Finished", view=self)


async def test_ephemeral_defer_sticks_to_the_first_followup_only(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc):
        inter = await dc.invoke_slash(GUILD, CHANNEL, USER, "private")
        first = await inter.wait_for_followup(lambda m: m.content == "only you see this")
        second = await inter.wait_for_followup(lambda m: m.content == "everyone sees this")
        assert first is inter.original and first.ephemeral  # fixed by defer(ephemeral=True)
        assert not second.ephemeral and second is not first
        assert dc.channel_messages(CHANNEL, include_ephemeral=False) == [second]


async def test_component_update_edits_the_source_message(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc) as bot:
        channel = bot.get_channel(CHANNEL)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("Working…", view=DoneView())
        click = await dc.click_button(sent.id, "done", USER)
        await click.wait_for_response()
        message = dc.message(sent.id)
        assert click.response_type == 7 and click.original is message
        assert message.content == "Finished" and message.button("done").disabled
        assert [e.via for e in message.edits] == ["interaction"]
        with pytest.raises(FakeDiscordError, match="disabled"):
            await dc.click_button(sent.id, "done", USER)


async def test_5xx_is_retried_and_a_dropped_request_is_not(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc) as bot:
        channel = bot.get_channel(CHANNEL)
        assert isinstance(channel, discord.TextChannel)
        dc.faults.add("POST /channels/{channel_id}/messages", status=502)  # Cloudflare HTML
        await channel.send("after a 502")  # discord.py waits 1 s (real) and retries
        assert [r.status for r in dc.requests_to("POST /channels/*")] == [502, 200]
        dc.faults.add("POST /channels/{channel_id}/messages", drop=True)
        with pytest.raises(aiohttp.ClientError):
            await channel.send("into the void")
        assert [m.content for m in dc.channel_messages(CHANNEL)] == ["after a 502"]


async def test_rate_limit_headers_make_discord_py_wait_instead_of_429() -> None:
    limits = {"POST /channels/{channel_id}/messages": (2, 0.2)}
    async with FakeDiscord(application_id=APP_ID, rate_limits=limits) as dc:
        dc.add_guild(GUILD, "Jam Club", channels=[(CHANNEL, "general")])
        async with running(JamBot(), dc) as bot:
            channel = bot.get_channel(CHANNEL)
            assert isinstance(channel, discord.TextChannel)
            for n in range(5):
                await channel.send(f"progress {n}")
            sends = dc.requests_to("POST /channels/{channel_id}/messages")
            assert [r.status for r in sends] == [200] * 5  # it slept on Remaining: 0
            assert sends[2].at - sends[0].at >= 0.2 - 0.02
            assert dc.invalid_request_count == 0


async def test_waiters_fail_loudly_with_what_was_there(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc) as bot:
        channel = bot.get_channel(CHANNEL)
        assert isinstance(channel, discord.TextChannel)
        await channel.send("something else")
        with pytest.raises(FakeDiscordTimeout) as caught:
            await dc.wait_for_attachment(CHANNEL, timeout=0.05)
        report = str(caught.value)
        assert "something else" in report and "POST /channels/" in report


async def test_form_body_limits_are_discords(dc: FakeDiscord) -> None:
    # discord.py checks some of these itself; a raw client (or a bug) meets Discord's answers.
    url = f"{dc.api_base}/channels/{CHANNEL}/messages"
    headers = {"Authorization": f"Bot {dc.token}"}
    row = {"type": 1, "components": [{"type": 2, "style": 1, "label": "x", "custom_id": "a"}]}
    rows = [
        {"type": 1, "components": [{"type": 2, "style": 1, "label": "x", "custom_id": f"b{i}"}]}
        for i in range(6)
    ]
    cases = [
        ({"embeds": [{"title": "t"}] * 11}, ["embeds"]),
        ({"embeds": [{"title": "t" * 257}]}, ["embeds", "0", "title"]),
        ({"content": "x", "components": rows}, ["components"]),
        (
            {"content": "x", "components": [row, row]},
            ["components", "1", "components", "0", "custom_id"],
        ),
    ]
    async with aiohttp.ClientSession(headers=headers) as http:
        for body, path in cases:
            async with http.post(url, json=body) as resp:
                error = await resp.json()
                assert (resp.status, error["code"], error["message"]) == (
                    400,
                    50035,
                    "Invalid Form Body",
                )
                node = error["errors"]
                for key in path:
                    node = node[key]
                assert node["_errors"]
        async with http.post(url, json={"content": ""}) as resp:
            assert (resp.status, (await resp.json())["code"]) == (400, 50006)
    assert dc.channel_messages(CHANNEL) == []


class LengthView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.picked: list[str] = []

    @discord.ui.select(
        custom_id="length",
        options=[
            discord.SelectOption(label="Short", value="30"),
            discord.SelectOption(label="Long", value="120"),
        ],
    )
    async def length(
        self, interaction: discord.Interaction, select: discord.ui.Select[LengthView]
    ) -> None:
        self.picked.extend(select.values)
        await interaction.response.defer()  # type 6: nothing new in the channel


async def test_autocomplete_select_and_user_messages(dc: FakeDiscord) -> None:
    async with running(JamBot(), dc) as bot:
        typing = await dc.autocomplete(GUILD, CHANNEL, USER, "song", "tags", "lo")
        await typing.wait_for_response()
        assert typing.autocomplete_choices == [
            {"name": "lo-fi", "value": "lo-fi"},
            {"name": "lounge", "value": "lounge"},
        ]

        channel = bot.get_channel(CHANNEL)
        assert isinstance(channel, discord.TextChannel)
        view = LengthView()
        sent = await channel.send("How long?", view=view)
        with pytest.raises(FakeDiscordError, match="not options"):
            await dc.select(sent.id, "length", USER, ["45"])
        pick = await dc.select(sent.id, "length", USER, ["120"])
        await pick.wait_for_response()
        assert view.picked == ["120"] and pick.response_type == 6

        # Default intents lack MESSAGE_CONTENT: the bot learns a user wrote, not what.
        await dc.post_user_message(CHANNEL, USER, "make it jazzier")
        await asyncio.wait_for(bot.message_seen.wait(), 5)
        assert bot.seen == [(USER, "")]
