"""/extend, /remix and /repaint (#15): their options, as Discord shows them.

Each command is registered only where the backend offers its edit when the bot starts
(``service.edits_offered``); should that change while it runs, the core answers a command
with its sentence naming what is missing. Times are text, so ``1:05`` gets through as well
as ``65``; the core reads them and says what is wrong.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.edits import EditStarter
from adapters.discord.embeds import clip
from adapters.discord.songs import requester_of
from bot.domain import LYRICS_MAX, TAGS_MAX, Task
from bot.edits import EditAsk
from bot.service import GenerationService

TIME_INPUT_MAX = 12  # "1:05", "65", "65.5"
CHOICES_MAX = 25  # Discord's limit for autocomplete answers
CHOICE_NAME_MAX = 100
SPOTS = [
    app_commands.Choice(name="end", value="end"),
    app_commands.Choice(name="start", value="start"),
]
AUDIO_HINT = "Your own audio instead of a track (MP3, WAV, FLAC, OGG, M4A; up to 20 MB)"
ID_HINT = "The track's #number, as /history lists it (suggested as you type); empty: your latest"

Tags = app_commands.Range[str, 1, TAGS_MAX]
Lyrics = app_commands.Range[str, 1, LYRICS_MAX]
Time = app_commands.Range[str, 1, TIME_INPUT_MAX]
Number = app_commands.Range[int, 1]


def extend_command(edits: EditStarter) -> app_commands.Command[Any, ..., None]:
    @app_commands.describe(
        id=ID_HINT,
        seconds="How much longer: seconds (30) or minutes (1:00); default 30",
        at="Where the new part goes: after the end (default) or before the start",
        tags="Style tags for the new part; empty: the track's own",
        lyrics="Lyrics for the new part, on one line",
        audio=AUDIO_HINT,
    )
    @app_commands.choices(at=SPOTS)
    async def extend(
        interaction: discord.Interaction[Any],
        id: Number | None = None,
        seconds: Time | None = None,
        at: str | None = None,
        tags: Tags | None = None,
        lyrics: Lyrics | None = None,
        audio: discord.Attachment | None = None,
    ) -> None:
        ask = EditAsk(Task.EXTEND, of_job=id, seconds=seconds, at=at, tags=tags, lyrics=lyrics)
        await edits.request(interaction, ask, audio)

    return app_commands.Command(
        name="extend",
        description="Make a track longer, continuing its style (➕ under a track does too)",
        callback=extend,
    )


def remix_command(edits: EditStarter) -> app_commands.Command[Any, ..., None]:
    @app_commands.describe(
        tags="The style to play it in, e.g. jazz trio, brushed drums",
        id=ID_HINT,
        lyrics="New lyrics on one line; empty: the track's own",
        strength="How closely to keep the track, 0 to 1; default 0.5",
        audio=AUDIO_HINT,
    )
    async def remix(
        interaction: discord.Interaction[Any],
        tags: Tags,
        id: Number | None = None,
        lyrics: Lyrics | None = None,
        strength: app_commands.Range[float, 0.0, 1.0] | None = None,
        audio: discord.Attachment | None = None,
    ) -> None:
        ask = EditAsk(Task.REMIX, of_job=id, tags=tags, lyrics=lyrics, strength=strength)
        await edits.request(interaction, ask, audio)

    return app_commands.Command(
        name="remix",
        description="Play a track in another style, keeping its structure",
        callback=remix,
    )


def repaint_command(edits: EditStarter) -> app_commands.Command[Any, ..., None]:
    @app_commands.describe(
        id="The track's #number, as /history lists it",
        start="Where the part to make again starts: seconds (65) or minutes (1:05)",
        end="Where it ends: seconds (80) or minutes (1:20)",
        tags="Style tags for that part; empty: the track's own",
        lyrics="Lyrics for that part, on one line",
    )
    async def repaint(
        interaction: discord.Interaction[Any],
        id: Number,
        start: Time,
        end: Time,
        tags: Tags | None = None,
        lyrics: Lyrics | None = None,
    ) -> None:
        ask = EditAsk(Task.REPAINT, of_job=id, start=start, end=end, tags=tags, lyrics=lyrics)
        await edits.request(interaction, ask)

    return app_commands.Command(
        name="repaint",
        description="Make one part of a track again, leaving the rest",
        callback=repaint,
    )


async def song_choices(
    service: GenerationService, interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[int]]:
    """``id`` suggestions: the member's newest songs whose number holds what was typed."""
    page = await service.history(requester_of(interaction), page=1, page_size=CHOICES_MAX)
    typed = current.strip().lstrip("#")
    return [
        # Plain text: Discord shows a choice's name as typed, markdown and all.
        app_commands.Choice(
            name=clip(f"#{job.id} {job.request.tags}", CHOICE_NAME_MAX), value=job.id
        )
        for job in page.jobs
        if typed in str(job.id)
    ]


class EditCommands(commands.Cog):
    """The edit commands the backend offers."""

    def __init__(
        self,
        bot: commands.Bot | commands.AutoShardedBot,
        service: GenerationService,
        edits: EditStarter,
    ) -> None:
        self._bot = bot
        self._service = service
        self._commands = {
            Task.EXTEND: extend_command(edits),
            Task.REMIX: remix_command(edits),
            Task.REPAINT: repaint_command(edits),
        }

        async def songs(
            interaction: discord.Interaction[Any], current: str
        ) -> list[app_commands.Choice[int]]:
            return await song_choices(service, interaction, current)

        for command in self._commands.values():
            command.autocomplete("id")(songs)

    def offered(self) -> list[app_commands.Command[Any, ..., None]]:
        edits = self._service.edits_offered
        return [command for task, command in self._commands.items() if task in edits]

    async def cog_load(self) -> None:
        for command in self.offered():
            self._bot.tree.add_command(command, override=True)

    async def cog_unload(self) -> None:
        for command in self._commands.values():
            self._bot.tree.remove_command(command.name)
