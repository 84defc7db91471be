"""``/jam`` (#16): the command group members see, and the form for several lyric lines.

start, tag, line, remove, render, close, next, stats and board, each handed to the
:class:`~adapters.discord.jams.JamDesk`. ``/jam line`` without text opens a form with a
paragraph field, since a slash option holds one line only; ``[Verse]`` and ``[Chorus]``
markers are kept as typed. Limits the core checks with its own sentences (how many takes,
how much room is left) are not repeated as option ranges here, except where Discord's
own limits apply.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from adapters.discord import embeds
from adapters.discord.jams import JamDesk
from adapters.discord.replies import reply_privately
from bot import messages
from bot.domain import LYRICS_MAX, TAGS_MAX
from bot.jams.model import MAX_MINUTES, Part

logger = logging.getLogger(__name__)

TEXT_INPUT_MAX = 4000  # Discord's cap for one text input
OPTION_MAX = 6000  # Discord's cap for a string option
FORM_TIMEOUT = 15 * 60.0  # as long as the interaction that opened it lives

Words = app_commands.Range[str, 1, min(TAGS_MAX, OPTION_MAX)]
Line = app_commands.Range[str, 1, min(LYRICS_MAX, OPTION_MAX)]
Minutes = app_commands.Range[int, 1, MAX_MINUTES]


class LinesModal(discord.ui.Modal, title="Add lyric lines to the jam"):
    lines: discord.ui.TextInput[LinesModal] = discord.ui.TextInput(
        label="Lines ([Verse] / [Chorus] allowed)",
        style=discord.TextStyle.paragraph,
        placeholder="[Chorus]\nWe light the city with a borrowed spark\nAnd sing it back",
        custom_id="lines",
        max_length=min(LYRICS_MAX, TEXT_INPUT_MAX),
    )

    def __init__(self, desk: JamDesk, *, key: int) -> None:
        # A custom id per form: discord.py files open forms by it, so two members writing at
        # once each get their own.
        super().__init__(custom_id=f"acejam:jamlines:{key}", timeout=FORM_TIMEOUT)
        self._desk = desk

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self._desk.add(interaction, Part.LINE, self.lines.value)

    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        logger.error("jam lines form failed", exc_info=error)
        await reply_privately(interaction, embeds.problem(messages.UNEXPECTED_ERROR))


class JamGroup(
    app_commands.Group,
    name="jam",
    description="Write a song together, vote on its takes",
    guild_only=True,
):
    def __init__(self, desk: JamDesk) -> None:
        super().__init__()
        self._desk = desk

    @app_commands.command(description="Open a jam in a thread of its own")
    @app_commands.describe(
        theme="What the song is about, or its style; the thread is named after it",
        takes="How many takes to vote on (default 3)",
        minutes="Minutes to collect tags and lines before the takes are made (default 10)",
        vote_minutes="Minutes of voting once the takes are in (default 10)",
    )
    async def start(
        self,
        interaction: discord.Interaction[Any],
        theme: Words,
        takes: app_commands.Range[int, 1] | None = None,
        minutes: Minutes | None = None,
        vote_minutes: Minutes | None = None,
    ) -> None:
        await self._desk.start(interaction, theme, takes, minutes, vote_minutes)

    @app_commands.command(description="Add style words to the jam, e.g. dreamy synths, 90 bpm")
    @app_commands.describe(tags="Style words")
    async def tag(self, interaction: discord.Interaction[Any], tags: Words) -> None:
        await self._desk.add(interaction, Part.TAG, tags)

    @app_commands.command(description="Add a lyric line; leave it empty for a form with several")
    @app_commands.describe(text="One line, e.g. [Chorus] we rise; empty: a form for several")
    async def line(self, interaction: discord.Interaction[Any], text: Line | None = None) -> None:
        if text is None:
            await interaction.response.send_modal(LinesModal(self._desk, key=interaction.id))
            return
        await self._desk.add(interaction, Part.LINE, text)

    @app_commands.command(description="Take back a tag or line by its number (#n on the jam)")
    @app_commands.describe(number="Its number, as the jam message shows it")
    async def remove(
        self, interaction: discord.Interaction[Any], number: app_commands.Range[int, 1]
    ) -> None:
        await self._desk.remove(interaction, number)

    @app_commands.command(description="Host: make the takes now")
    async def render(self, interaction: discord.Interaction[Any]) -> None:
        await self._desk.render(interaction)

    @app_commands.command(description="Host: close the voting and name the winner")
    async def close(self, interaction: discord.Interaction[Any]) -> None:
        await self._desk.close(interaction)

    @app_commands.command(name="next", description="Host: another round on the winning take")
    async def next_(self, interaction: discord.Interaction[Any]) -> None:
        await self._desk.next_round(interaction)

    @app_commands.command(description="This server's jams: wins and contributions per member")
    async def stats(self, interaction: discord.Interaction[Any]) -> None:
        await self._desk.stats(interaction)

    @app_commands.command(description="Post the jam board's link (host: revoke it)")
    @app_commands.describe(revoke="Host: switch the current link off")
    async def board(self, interaction: discord.Interaction[Any], revoke: bool = False) -> None:
        await self._desk.board(interaction, revoke)
