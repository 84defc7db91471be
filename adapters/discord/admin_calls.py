"""How every /admin call runs: deferred privately, answered with a text or with why the
value given can't be used, in the guild the command came from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord

from adapters.discord import embeds
from adapters.discord.replies import reply_privately


def scope_of(interaction: discord.Interaction[Any]) -> str:
    # The cog's interaction_check has made sure there is a guild.
    return str(interaction.guild_id)


async def answer(interaction: discord.Interaction[Any], make: Callable[[], Awaitable[str]]) -> None:
    """Defer privately at once (the work reads the database), then answer with ``make()``'s
    text, or with why the value given can't be used."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        text = await make()
    except ValueError as refusal:  # the grammar's (BadValue) or the core's, worded for admins
        text = embeds.problem(str(refusal))
    await reply_privately(interaction, text)
