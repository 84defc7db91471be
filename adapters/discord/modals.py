"""The /compose form: multi-line lyrics (which a slash option can't hold) plus the rest."""

from __future__ import annotations

import logging
from typing import Any

import discord

from adapters.discord import embeds
from adapters.discord.songs import SongStarter, reply_privately
from bot import messages
from bot.domain import LYRICS_MAX, TAGS_MAX, Limits

logger = logging.getLogger(__name__)

TEXT_INPUT_MAX = 4000  # Discord's cap for one text input


class ComposeModal(discord.ui.Modal, title="Compose a song"):
    tags: discord.ui.TextInput[ComposeModal] = discord.ui.TextInput(
        label="Style tags",
        placeholder="lo-fi, chill, rainy piano",
        custom_id="tags",
        max_length=TAGS_MAX,
    )
    lyrics: discord.ui.TextInput[ComposeModal] = discord.ui.TextInput(
        label="Lyrics (leave empty for instrumental)",
        style=discord.TextStyle.paragraph,
        placeholder="[Verse]\nRain on the window, tea going cold\n[Chorus]\nStay a little longer",
        custom_id="lyrics",
        required=False,
        max_length=min(LYRICS_MAX, TEXT_INPUT_MAX),
    )
    duration: discord.ui.TextInput[ComposeModal] = discord.ui.TextInput(
        label="Duration in seconds", custom_id="duration", required=False, max_length=4
    )
    seed: discord.ui.TextInput[ComposeModal] = discord.ui.TextInput(
        label="Seed (empty for a random one)", custom_id="seed", required=False, max_length=10
    )

    def __init__(self, songs: SongStarter, limits: Limits) -> None:
        super().__init__(custom_id="acejam:compose", timeout=15 * 60)
        self._songs = songs
        self.duration.placeholder = f"{limits.min_duration}–{limits.max_duration}"

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        # Strings as typed: the core's validation turns "90", "90s" or "" into a request or
        # a friendly sentence.
        await self._songs.request(
            interaction,
            tags=self.tags.value,
            lyrics=self.lyrics.value,
            duration=self.duration.value,
            seed=self.seed.value,
        )

    # discord.py's Modal narrows BaseView.on_error (no item argument) itself.
    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        logger.error("compose form failed", exc_info=error)
        await reply_privately(interaction, embeds.problem(messages.UNEXPECTED_ERROR))
