"""The on/off settings of /admin: who may press 🎲 / 🔁 under others' songs, where songs the
engine flags as NSFW go, whether members may edit audio of their own (#15), and who pays for
a jam's takes (#16).

A mixin of :class:`adapters.discord.admin.AdminCommands` (discord.py collects a cog's
commands from its bases too), which supplies ``_update`` and checks every call.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.admin_calls import answer
from bot.domain import ChatRules


class Switches(commands.Cog):
    async def _update(self, interaction: discord.Interaction[Any], **changes: Any) -> ChatRules:
        raise NotImplementedError  # AdminCommands': saves and logs the change

    @app_commands.command(name="buttons", description="May others press 🎲 / 🔁 under your songs?")
    @app_commands.describe(others_may_press="True: anyone here may make new takes of any song")
    async def buttons(self, interaction: discord.Interaction[Any], others_may_press: bool) -> None:
        async def run() -> str:
            await self._update(interaction, others_may_press=others_may_press)
            if others_may_press:
                return (
                    "✅ Anyone here may press 🎲 / 🔁 under any song (the new take is theirs). "
                    "✖ Cancel stays with a song's owner and the admins."
                )
            return "✅ Only a song's owner may press 🎲 / 🔁 under it."

        await answer(interaction, run)

    @app_commands.command(name="nsfw", description="Post songs the engine flags as NSFW anywhere?")
    @app_commands.describe(allow="False: flagged songs only go to age-restricted channels")
    async def nsfw(self, interaction: discord.Interaction[Any], allow: bool) -> None:
        async def run() -> str:
            await self._update(interaction, allow_nsfw=allow)
            if allow:
                return "✅ Songs the music engine flags as NSFW are posted in every channel here."
            return (
                "✅ Songs the music engine flags as NSFW are held back (and the quota given "
                "back), except in age-restricted channels."
            )

        await answer(interaction, run)

    @app_commands.command(
        name="own-audio", description="May members /remix or /extend audio they attach?"
    )
    @app_commands.describe(allow="True: members may attach their own audio to /remix and /extend")
    async def own_audio(self, interaction: discord.Interaction[Any], allow: bool) -> None:
        async def run() -> str:
            await self._update(interaction, own_audio=allow)
            if allow:
                return (
                    "✅ Members here may attach their own audio to /remix and /extend "
                    "(it counts on their quota like any song)."
                )
            return "✅ Members here may edit only songs made here, not audio they attach."

        await answer(interaction, run)

    @app_commands.command(name="jam-pays", description="Who pays for a jam's takes: host or server")
    @app_commands.describe(who="host: the host's quota (default) · chat: this server's budget")
    @app_commands.choices(
        who=[
            app_commands.Choice(name="host", value="host"),
            app_commands.Choice(name="chat (this server's monthly budget)", value="chat"),
        ]
    )
    async def jam_pays(self, interaction: discord.Interaction[Any], who: str) -> None:
        async def run() -> str:
            # The core refuses "chat" without a monthly budget, with a sentence for admins.
            await self._update(interaction, jam_pays=who)
            if who == "chat":
                return (
                    "✅ A jam's takes here are paid from this server's monthly budget; the "
                    "host's daily quota is not counted."
                )
            return "✅ A jam's takes count on its host's quota, like their own songs."

        await answer(interaction, run)
