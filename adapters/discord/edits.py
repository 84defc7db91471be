"""Edits on Discord (#15): /extend, /remix and /repaint, of a track of ours or of audio a
member attaches (the command's ``audio`` option).

The rules (which track, times, strength, what the backend can do, quota, blocked words) are
the core's (:mod:`bot.edits`); this module only gets the member's file safely and shows the
answer as /song does: the public "thinking" message becomes the job's status card, a
refusal is answered privately.

A member's file is judged twice. Before anything is fetched, on what Discord says about it
(its size and content type): a file too big or not audio gets a sentence at once, and
nothing is downloaded or counted. Where the chat lets members use their own audio, it is
then downloaded through discord.py (the bot's own session, never handing a Discord CDN
address to anyone upstream), into the core's incoming folder, and decoded by the core
(``service.sources.take_in``), which refuses a renamed text file or a song too long.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from dataclasses import replace
from typing import Any

import discord

from adapters.discord import embeds
from adapters.discord.delivery import DiscordDelivery
from adapters.discord.replies import reply_privately
from adapters.discord.songs import SongStarter, destination_of, requester_of
from bot import messages
from bot.domain import Destination, Invalid
from bot.edits import EditAsk
from bot.service import Accepted, GenerationService, Refused, Requester
from bot.sources import MAX_UPLOAD_BYTES, SourceAudio, not_audio, not_received, too_big

logger = logging.getLogger(__name__)

# What Discord may call an audio file: audio/*, and containers that often hold only sound
# (a phone's recording as .mp4 or .webm, Ogg). The core's decoder has the last word.
AUDIO_CONTAINERS = frozenset({"application/ogg", "video/mp4", "video/ogg", "video/webm"})
# The core's sentence, with Discord's way to switch it on.
OWN_AUDIO_OFF = (
    "Editing audio you attach isn't switched on in this server; an admin can turn it on with "
    "`/admin own-audio allow:True`, or send it to me in a direct message."
)

# Both an id and an attachment: which one to edit is the member's choice, not ours.
BOTH_SOURCES = (
    "Pick one thing to {command}: song #{id} or the audio you attached, not both. "
    "Leave out `id` to use your file, or the file to use the song."
)


def upload_problem(attachment: discord.Attachment, limit: int = MAX_UPLOAD_BYTES) -> str | None:
    """Why ``attachment`` can't be edited, judged on what Discord says of it (nothing is
    downloaded); None when it may be fetched and decoded."""
    if attachment.size > limit:
        return too_big(attachment.size, limit)
    kind = attachment.content_type or mimetypes.guess_type(attachment.filename)[0] or ""
    kind = kind.split(";", 1)[0].strip().lower()
    if not (kind.startswith("audio/") or kind in AUDIO_CONTAINERS):
        return not_audio()
    return None


class EditStarter:
    """Starts edit jobs for the slash commands (➕ under a track goes through
    :meth:`SongStarter.extend`, like the other buttons)."""

    def __init__(self, service: GenerationService, songs: SongStarter) -> None:
        self._service = service
        self._songs = songs

    @property
    def delivery(self) -> DiscordDelivery:
        return self._songs.delivery

    async def request(
        self,
        interaction: discord.Interaction[Any],
        ask: EditAsk,
        audio: discord.Attachment | None = None,
    ) -> None:
        """One edit command: ``ask`` as typed, ``audio`` the member's own file if any."""
        if audio is not None:
            problem = (
                BOTH_SOURCES.format(id=ask.of_job, command=ask.task.value)
                if ask.of_job is not None
                else upload_problem(audio, self._service.sources.max_bytes)
            )
            if problem is not None:  # no I/O needed: the first answer, at once
                await reply_privately(interaction, embeds.problem(problem))
                return
        callback = await interaction.response.defer(thinking=True)
        message_id = callback.message_id if callback is not None else None
        status = self.delivery.open(interaction, message_id)
        try:
            outcome = await self._submit(
                interaction,
                requester_of(interaction),
                destination_of(interaction, message_id),
                ask,
                audio,
            )
        except Exception:
            logger.exception("interaction %s: %s failed", interaction.id, ask.task)
            outcome = Refused(messages.UNEXPECTED_ERROR, "error")
        await self._songs.settle(
            interaction, status, outcome, has_placeholder=message_id is not None
        )

    async def _submit(
        self,
        interaction: discord.Interaction[Any],
        requester: Requester,
        destination: Destination,
        ask: EditAsk,
        audio: discord.Attachment | None,
    ) -> Accepted | Refused:
        key = f"discord:{interaction.id}"  # a re-delivered interaction: the same job, file
        if audio is not None:
            if not await self._service.may_use_own_audio(requester, destination):
                return Refused(OWN_AUDIO_OFF, "own_audio")
            taken = await self._take_in(interaction, audio, key)
            if isinstance(taken, Invalid):
                return Refused(taken.message, "invalid")
            # The core owns the file from here: a refused or repeated edit removes it.
            ask = replace(ask, own_audio=taken)
        return await self._service.edit(requester, destination, ask, idempotency_key=key)

    async def _take_in(
        self, interaction: discord.Interaction[Any], audio: discord.Attachment, key: str
    ) -> SourceAudio | Invalid:
        """The member's file, downloaded through discord.py and checked by the core."""
        sources = self._service.sources
        path = sources.incoming(key)
        try:
            data = await audio.read()
        except discord.HTTPException as exc:
            logger.warning(
                "interaction %s: could not download the attachment: %s %s",
                interaction.id,
                exc.status,
                exc.code,
            )
            return Invalid(not_received())
        if len(data) > sources.max_bytes:  # bigger than Discord said: never written
            return Invalid(too_big(len(data), sources.max_bytes))
        try:
            await asyncio.to_thread(path.write_bytes, data)
        except OSError:
            # take_in still runs: it refuses what got written, with a sentence, and removes it.
            logger.exception("interaction %s: could not store the attachment", interaction.id)
        return await sources.take_in(path, key=key)
