"""▶ Keep presses on Discord (the buttons are :mod:`adapters.discord.takes`').

Pressing ▶ Keep asks the core (:meth:`GenerationService.keep_take`, which decides who may),
answers privately, and shows the kept take on the message's buttons. A double tap is one
press; keeping the kept take again changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import discord

from adapters.discord import embeds
from adapters.discord.replies import reply_privately
from adapters.discord.songs import requester_of
from adapters.discord.takes import kept_view
from bot import messages
from bot.domain import JobId
from bot.presses import PressGuard
from bot.service import Done, Refused, Requester

logger = logging.getLogger(__name__)

PLATFORM = "discord"


class Keeping(Protocol):
    """The part of the core ▶ Keep needs."""

    async def keep_take(self, job_id: JobId, take: int, presser: Requester) -> Done | Refused: ...


class TakeKeeper:
    """▶ Keep presses: the client exposes one as ``client.takes``."""

    def __init__(self, service: Keeping, presses: PressGuard | None = None) -> None:
        self._service = service
        self._presses = presses or PressGuard()  # a double tap is one press

    async def keep(self, interaction: discord.Interaction[Any], job_id: int, take: int) -> None:
        key = (PLATFORM, interaction.user.id, "keep", job_id, take)
        if not self._presses.first(key):
            await reply_privately(interaction, messages.ALREADY_PRESSED)
            return
        try:
            # Type 6: the message stays; what changes is its buttons, once the core agrees.
            await interaction.response.defer()
            outcome = await self._service.keep_take(JobId(job_id), take, requester_of(interaction))
            if isinstance(outcome, Refused):
                self._presses.forget(key)  # nothing happened: a retry is a new press
                await reply_privately(interaction, embeds.problem(outcome.message))
                return
            await reply_privately(interaction, f"✅ {outcome.message}")
            await self._show_kept(interaction, take)
        except Exception:
            logger.exception("interaction %s: keep failed", interaction.id)
            await reply_privately(interaction, embeds.problem(messages.UNEXPECTED_ERROR))

    @staticmethod
    async def _show_kept(interaction: discord.Interaction[Any], take: int) -> None:
        """The message's buttons show the kept take. Cosmetic: the keep itself is done."""
        if interaction.message is None:
            return
        view = kept_view(interaction.message, take)
        if view is None:
            return
        try:
            await interaction.edit_original_response(view=view)
        except discord.HTTPException as exc:
            logger.info(
                "interaction %s: could not show take %d kept: %s", interaction.id, take, exc
            )
