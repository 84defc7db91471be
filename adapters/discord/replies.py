"""Private answers to an interaction, whatever state its response is in."""

from __future__ import annotations

import logging
from typing import Any

import discord

logger = logging.getLogger(__name__)


async def reply_privately(
    interaction: discord.Interaction[Any], text: str, *, view: discord.ui.View | None = None
) -> None:
    """An ephemeral answer, whether or not the interaction was answered already."""
    extra: dict[str, Any] = {"view": view} if view is not None else {}
    try:
        if interaction.response.is_done():
            await interaction.followup.send(
                text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none(), **extra
            )
        else:
            await interaction.response.send_message(
                text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none(), **extra
            )
    except discord.HTTPException as exc:
        logger.warning("could not answer interaction %s: %s", interaction.id, exc)
