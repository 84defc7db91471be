"""The slash commands users see: /song, /compose, /quota, /queue, /cancel, /limits, /history,
/show, /help.

Each one turns an interaction into one service call and renders the answer. Answers about a
user's own account are ephemeral, deferred first because they read the database.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord import embeds
from adapters.discord.choices import (
    TIME_CHOICES,
    key_choices,
    language_choices,
    language_code,
)
from adapters.discord.delivery import PLATFORM
from adapters.discord.drafts import Draft
from adapters.discord.modals import DURATION_INPUT_MAX, ComposeModal
from adapters.discord.songbook import PageButton, Songbook
from adapters.discord.songs import SongStarter, cancel_text, requester_of, scope_of
from bot import messages, quotas
from bot.controls import BPM_MAX, BPM_MIN
from bot.domain import LYRICS_MAX, SEED_MAX, TAGS_MAX, ChatRules, Limits
from bot.service import GenerationService

SONG_DESCRIPTION = "Make a song from style tags or one sentence (/compose for multi-line lyrics)"
CHOICE_NAME_MAX = 100
KEY_INPUT_MAX = 16  # "F# minor", "B♭ major"
PAGE_MAX = 10_000  # a page past the last shows the last
LANGUAGE_INPUT_MAX = 16  # a code, or a language's name typed while looking for it


def song_command(songs: SongStarter, limits: Limits) -> app_commands.Command[Any, ..., None]:
    """/song, whose duration range and most takes are the running bot's (backend minimum,
    configured maximum, MAX_TAKES). Every option is offered on every backend: controls reach
    a model without such parameters as words in its tags, and a description is answered
    with a sentence where the backend has no language model (whether an ACE-Step server has
    one is known only once it has answered, after the commands are registered)."""

    @app_commands.describe(
        tags="Style tags, e.g. lo-fi, chill, rainy piano",
        duration=(
            f"Length: seconds (90) or minutes (1:30), {limits.min_duration}–{limits.max_duration} s"
        ),
        seed="Seed to repeat a take exactly; empty or -1 for a random one",
        lyrics="Lyrics on one line; use /compose for verses and choruses",
        takes=f"How many takes to make at once, 1–{limits.max_takes}; each counts on your quota",
        bpm=f"Tempo in beats per minute, {BPM_MIN}–{BPM_MAX}, e.g. 120",
        key="Key and scale, e.g. C major or F# minor",
        time_signature="Beats per bar",
        language="Language of the vocals, e.g. en, es, pt",
        describe="The song in one sentence, e.g. a sad song about rain in Lisbon",
    )
    @app_commands.choices(time_signature=TIME_CHOICES)
    async def song(
        interaction: discord.Interaction[Any],
        tags: str | None = None,
        duration: str | None = None,
        seed: int | None = None,
        lyrics: str | None = None,
        takes: int | None = None,
        bpm: int | None = None,
        key: str | None = None,
        time_signature: int | None = None,
        language: str | None = None,
        describe: str | None = None,
    ) -> None:
        await songs.request(
            interaction,
            Draft(
                tags=tags or "",
                lyrics=lyrics or "",
                duration=duration or "",
                seed=_text(seed),
                takes=_text(takes),
                bpm=_text(bpm),
                key=key or "",
                time_signature=_text(time_signature),
                language=language_code(language or ""),
                describe=describe or "",
            ),
        )

    # Discord shows (and enforces) these ranges in its UI. They depend on the settings, so
    # they are attached here rather than written as static annotations. BPM has none: a
    # tempo out of range gets the core's sentence, which says what is allowed.
    song.__annotations__.update(
        tags=app_commands.Range[str, 1, TAGS_MAX] | None,
        # Text, so `1:30` gets through; the core checks the range and says what's wrong.
        duration=app_commands.Range[str, 1, DURATION_INPUT_MAX] | None,
        seed=app_commands.Range[int, -1, SEED_MAX] | None,
        lyrics=app_commands.Range[str, 1, LYRICS_MAX] | None,
        takes=app_commands.Range[int, 1, max(limits.max_takes, 1)] | None,
        key=app_commands.Range[str, 1, KEY_INPUT_MAX] | None,
        language=app_commands.Range[str, 1, LANGUAGE_INPUT_MAX] | None,
        describe=app_commands.Range[str, 1, TAGS_MAX] | None,
    )
    command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name="song", description=SONG_DESCRIPTION, callback=song
    )

    @command.autocomplete("key")
    async def keys(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return key_choices(current)

    @command.autocomplete("language")
    async def languages(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return language_choices(current)

    return command


def _text(value: int | None) -> str:
    return "" if value is None else str(value)


class JamCommands(commands.Cog):
    def __init__(
        self,
        bot: commands.Bot | commands.AutoShardedBot,
        service: GenerationService,
        songs: SongStarter,
    ) -> None:
        self._bot = bot
        self._service = service
        self._songs = songs
        self._song = song_command(songs, service.limits)
        self.songbook = Songbook(service, songs.delivery)  # what ◀ ▶ find through the cog

    async def cog_load(self) -> None:
        self._bot.tree.add_command(self._song, override=True)
        self._bot.add_dynamic_items(PageButton)

    async def cog_unload(self) -> None:
        self._bot.tree.remove_command(self._song.name)
        self._bot.remove_dynamic_items(PageButton)

    @app_commands.command(name="compose", description="Write a song with multi-line lyrics")
    async def compose(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_modal(
            ComposeModal(self._songs.request, self._service.limits, key=interaction.id)
        )

    @app_commands.command(name="quota", description="How much music you can still make today")
    async def quota(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        status = await self._service.quota(requester_of(interaction), scope_of(interaction))
        await self._answer(interaction, embeds.quota_text(status))

    @app_commands.command(name="queue", description="Your songs that are queued or being made")
    async def queue(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        entries = await self._service.queue_of(requester_of(interaction))
        await self._answer(interaction, embeds.queue_text(entries))

    @app_commands.command(name="cancel", description="Stop one of your songs; its quota comes back")
    @app_commands.describe(job="Which song (its #number); empty: your latest")
    async def cancel(
        self,
        interaction: discord.Interaction[Any],
        job: app_commands.Range[int, 1] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = await cancel_text(self._service, requester_of(interaction), job)
        await self._answer(interaction, text)

    @cancel.autocomplete("job")
    async def cancel_choices(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[int]]:
        entries = await self._service.queue_of(requester_of(interaction))
        choices = []
        for entry in entries:
            line = messages.queue_line(entry.job, entry.position)
            if current and current.lstrip("#") not in str(entry.job.id):
                continue
            choices.append(
                app_commands.Choice(name=embeds.clip(line, CHOICE_NAME_MAX), value=entry.job.id)
            )
        return choices[:25]

    @app_commands.command(name="limits", description="What anyone can make here: lengths, quota")
    async def limits(self, interaction: discord.Interaction[Any]) -> None:
        # Any member may look (no default permissions); the answer is only for them.
        await interaction.response.defer(ephemeral=True, thinking=True)
        scope = scope_of(interaction)
        rules = (
            await self._service.chat_rules(PLATFORM, scope) if scope is not None else ChatRules()
        )
        policy = quotas.effective_policy(self._service.policy, rules, (), (), scope or "")
        place = interaction.guild.name if interaction.guild else None
        await self._answer(
            interaction, embeds.limits_text(place, rules, policy, self._service.limits)
        )

    @app_commands.command(name="history", description="Your songs, newest first, with their ids")
    @app_commands.describe(page="Which page (◀ ▶ under the answer turn them too)")
    async def history(
        self,
        interaction: discord.Interaction[Any],
        page: app_commands.Range[int, 1, PAGE_MAX] | None = None,
    ) -> None:
        await self.songbook.history(interaction, page or 1)

    @app_commands.command(name="show", description="Post one of your songs here again")
    @app_commands.describe(song="The song's #number, as /history lists it")
    async def show(
        self, interaction: discord.Interaction[Any], song: app_commands.Range[int, 1]
    ) -> None:
        await self.songbook.show(interaction, song)

    @app_commands.command(name="help", description="What AceJam can do")
    async def help(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_message(
            embeds.help_text(
                self._service.limits,
                describes=self._service.capabilities.describes,
                edits=self._service.edits_offered,
            ),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @staticmethod
    async def _answer(interaction: discord.Interaction[Any], text: str) -> None:
        await interaction.followup.send(
            text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )
