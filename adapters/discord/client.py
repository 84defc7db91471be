"""The Discord bot: `AceJamBot` (a sharded `commands.Bot`) and `serve`, which `acejam run`
starts.

``DISCORD_API_BASE_URL`` points discord.py's REST at another base (a REST proxy for large
deployments, or a test server). discord.py keeps that base, and the gateway URL, in
process-wide class attributes; ``serve`` sets them for its lifetime and restores them after.
With a non-default base the gateway URL is asked from ``GET {base}/gateway/bot`` and put in
``DEFAULT_GATEWAY``: discord.py's `AutoShardedClient` only asks for it itself when it must
learn the shard count, and every shard falls back to ``DEFAULT_GATEWAY`` when it reconnects
or is told to identify again.

Sharding: ``DISCORD_SHARD_COUNT`` shards in all (unset: Discord's recommendation), of which
this process runs ``DISCORD_SHARD_IDS`` (unset: all). Interactions and guilds arrive on their
shard's connection; everything else the adapter does goes through REST, which any process can
do, so a process may deliver songs asked for on another process's shards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.ext import commands

from adapters.discord import embeds
from adapters.discord.admin import AdminCommands, NotAllowed
from adapters.discord.commands import JamCommands
from adapters.discord.delivery import DiscordDelivery
from adapters.discord.edit_commands import EditCommands
from adapters.discord.edits import EditStarter
from adapters.discord.jam_commands import JamGroup
from adapters.discord.jam_messages import JamPoster
from adapters.discord.jam_votes import VoteButton
from adapters.discord.jams import JamDesk
from adapters.discord.keeping import TakeKeeper
from adapters.discord.posting import MAX_REQUEST_BYTES
from adapters.discord.replies import reply_privately
from adapters.discord.songs import SongStarter
from adapters.discord.takes import KeepButton
from adapters.discord.views import PERSISTENT_ITEMS
from bot import messages
from bot.config import Settings
from bot.errors import ConfigError
from bot.presses import PressGuard
from bot.service import GenerationService

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://discord.com/api/v10"


@dataclass(frozen=True)
class Tuning:
    """Waits that production leaves at Discord's values and tests shrink."""

    guild_ready_timeout: float = 2.0  # discord.py: on_ready this long after the last guild
    identify_delay: float = 5.0  # discord.py's pause before every re-IDENTIFY
    interaction_ttl: float = 14 * 60.0  # tokens live 15 min; stop using them a minute early
    edit_interval: float = 2.0  # per status message (Discord: ~5 edits / 5 s per channel)
    settle: float = 1.0  # a status card's first state waits this long: a later one may win
    reword_before: float = 5.0  # an ETA this close reads "any moment now"
    request_limit: int = MAX_REQUEST_BYTES  # one message's files together (Discord's docs)
    clock: Callable[[], float] = field(default=time.monotonic)


class JamTree(app_commands.CommandTree[Any]):
    """Whatever goes wrong in a command is logged and answered politely, privately."""

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.CommandNotFound):
            logger.info("interaction %s: unknown command %r", interaction.id, error.name)
            text = messages.COMMAND_GONE
        elif isinstance(error, NotAllowed):
            text = str(error)  # already logged by the check
        else:
            command = interaction.command.qualified_name if interaction.command else "?"
            logger.error("command /%s failed", command, exc_info=error)
            text = messages.UNEXPECTED_ERROR
        await reply_privately(interaction, embeds.problem(text))


class AceJamBot(commands.AutoShardedBot):
    def __init__(
        self,
        *,
        service: GenerationService,
        guild_ids: list[int] | tuple[int, ...] = (),
        api_base: str = DEFAULT_API_BASE,
        tuning: Tuning | None = None,
        shard_count: int | None = None,
        shard_ids: list[int] | tuple[int, ...] = (),
    ) -> None:
        """``shard_count`` None: Discord's recommendation; ``shard_ids`` empty: every shard
        (discord.py wants the count with explicit ids: `Settings` checks that)."""
        self.tuning = tuning or Tuning()
        super().__init__(
            shard_count=shard_count,
            # discord.py's hint says list; its code reads None as "every shard".
            shard_ids=list(shard_ids) or None,  # type: ignore[arg-type]
            command_prefix=commands.when_mentioned,
            help_command=None,
            # Interactions carry everything else; guilds give names and upload limits.
            intents=discord.Intents(guilds=True),
            allowed_mentions=discord.AllowedMentions.none(),  # nothing pings unless asked
            max_messages=None,
            guild_ready_timeout=self.tuning.guild_ready_timeout,
            tree_cls=JamTree,
        )
        self.service = service
        self.guild_ids = tuple(guild_ids)
        self.api_base = api_base.rstrip("/")
        # /jam and 🗳 (#16); the poster is the core's JamListener for Discord.
        self.jam_poster = JamPoster(self, service.jams, edit_interval=self.tuning.edit_interval)
        self.jams = JamDesk(service.jams, self.jam_poster)
        self.delivery = DiscordDelivery(
            self,
            interaction_ttl=self.tuning.interaction_ttl,
            edit_interval=self.tuning.edit_interval,
            settle=self.tuning.settle,
            reword_before=self.tuning.reword_before,
            request_limit=self.tuning.request_limit,
            clock=self.tuning.clock,
            edits_offered=lambda: service.edits_offered,
            edit_models=lambda: service.capabilities.edit_models,
            jams=self.jams,
        )
        # The views' ButtonHandler, with the one PressGuard of this adapter.
        self.buttons = SongStarter(service, self.delivery, PressGuard())
        self.takes = TakeKeeper(service)  # ▶ Keep under a song's takes
        self.edits = EditStarter(service, self.buttons)  # /extend, /remix, /repaint

    async def setup_hook(self) -> None:
        if self.api_base != DEFAULT_API_BASE:
            _, url, _ = await self.http.get_bot_gateway()
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        await self.add_cog(JamCommands(self, self.service, self.buttons))
        await self.add_cog(EditCommands(self, self.service, self.edits))
        await self.add_cog(AdminCommands(self.service))
        self.tree.add_command(JamGroup(self.jams), override=True)
        self.add_dynamic_items(*PERSISTENT_ITEMS, KeepButton, VoteButton)
        await self._sync_commands()

    async def _sync_commands(self) -> None:
        """To the configured guilds (instant) or globally (Discord takes a while to show them)."""
        if not self.guild_ids:
            synced = await self.tree.sync()
            logger.info("synced %d commands globally", len(synced))
            return
        for guild_id in self.guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.HTTPException as exc:
                logger.error("could not sync commands to guild %s: %s", guild_id, exc)
                continue
            logger.info("synced %d commands to guild %s", len(synced), guild_id)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:
            await asyncio.sleep(self.tuning.identify_delay)

    async def close(self) -> None:
        await self.delivery.close()
        await self.jam_poster.close()
        await super().close()


@contextlib.contextmanager
def discord_endpoints() -> Iterator[None]:
    """Restore discord.py's process-wide REST base and gateway URL after the block."""
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


async def serve(
    settings: Settings,
    service: GenerationService,
    stop: asyncio.Event,
    *,
    tuning: Tuning | None = None,
) -> None:
    """Run the bot until ``stop`` is set; its Delivery is registered once it is connected."""
    if settings.discord_token is None:
        raise ConfigError("DISCORD_TOKEN is not set")
    with discord_endpoints():
        discord.http.Route.BASE = settings.discord_api_base_url.rstrip("/")
        bot = AceJamBot(
            service=service,
            guild_ids=settings.discord_guild_ids,
            api_base=settings.discord_api_base_url,
            tuning=tuning,
            shard_count=settings.discord_shard_count,
            shard_ids=settings.discord_shard_ids,
        )
        async with bot:
            runner = asyncio.create_task(
                bot.start(settings.discord_token.get_secret_value()), name="discord-bot"
            )
            stopping = asyncio.create_task(stop.wait())
            ready = asyncio.create_task(bot.wait_until_ready())
            try:
                await asyncio.wait({runner, stopping, ready}, return_when=asyncio.FIRST_COMPLETED)
                if ready.done() and not runner.done():
                    service.register_delivery(bot.delivery)
                    service.jams.register_listener(bot.jam_poster)
                    logger.info("discord bot ready as %s", bot.user)
                    await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (stopping, ready):
                    waiter.cancel()
                await bot.close()
                if not runner.done():
                    await asyncio.wait({runner}, timeout=10)
                if not runner.done():  # close() normally ends it; never leave it behind
                    runner.cancel()
                    await asyncio.gather(runner, return_exceptions=True)
        if runner.done() and not runner.cancelled() and runner.exception() is not None:
            raise runner.exception()  # type: ignore[misc]
