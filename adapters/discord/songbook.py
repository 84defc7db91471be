"""A member's finished songs on Discord: ``/history`` a page at a time (◀ ▶ turn the pages of
the private answer), and ``/show <id>`` posting one again with its card and buttons.

The rules (which songs, who may see which, the refusals) are the core's
(:mod:`bot.library`); this module only asks and renders. A page button's custom id carries
the page it leads to (``acejam:page:3``) and the one who presses it is the one whose songs it
shows (only they see the private answer), so the buttons keep working after a restart.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from adapters.discord import embeds
from adapters.discord.delivery import CAN_POST, PLATFORM, DiscordDelivery
from adapters.discord.replies import reply_privately
from adapters.discord.songs import requester_of, scope_of
from bot import messages
from bot.domain import Destination
from bot.service import GenerationService, Refused

if TYPE_CHECKING:
    from bot.library import HistoryPage

logger = logging.getLogger(__name__)

PAGE_SIZE = 5  # a page with its links fits one message easily, and reads at a glance
COG_NAME = "JamCommands"  # the cog that holds the songbook (adapters/discord/commands.py)


class Songbook:
    """What /history, its page buttons and /show do."""

    def __init__(self, service: GenerationService, delivery: DiscordDelivery) -> None:
        self._service = service
        self._delivery = delivery

    async def history(self, interaction: discord.Interaction[Any], page: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        found = await self._page(interaction, page)
        await interaction.followup.send(
            embeds.history_text(found),
            view=history_view(found) or discord.ui.View(),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def turn(self, interaction: discord.Interaction[Any], page: int) -> None:
        """◀ or ▶: the same private message shows the page asked for."""
        await interaction.response.defer()  # type 6: then @original is the page's message
        try:
            found = await self._page(interaction, page)
            await interaction.edit_original_response(
                content=embeds.history_text(found),
                view=history_view(found) or discord.ui.View(),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except Exception:
            logger.exception("interaction %s: turning to page %s failed", interaction.id, page)
            await reply_privately(interaction, embeds.problem(messages.UNEXPECTED_ERROR))

    async def _page(self, interaction: discord.Interaction[Any], page: int) -> HistoryPage:
        return await self._service.history(
            requester_of(interaction), page=page, page_size=PAGE_SIZE
        )

    async def show(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """/show: the "thinking" message becomes the track, posted again through the
        delivery (the interaction's own follow-up: a channel post would carry the first
        post's nonce, and Discord would hand back that message instead of a new one)."""
        callback = await interaction.response.defer(thinking=True)
        message_id = callback.message_id if callback is not None else None
        status = self._delivery.open(interaction, message_id)
        try:
            outcome = await self._service.show(
                job_id, requester_of(interaction), self._destination(interaction)
            )
        except Exception:
            logger.exception("interaction %s: showing song %s failed", interaction.id, job_id)
            outcome = Refused(messages.UNEXPECTED_ERROR, "error")
        if not isinstance(outcome, Refused):
            return
        self._delivery.abandon(status)
        self._delivery.forget(status)  # never reused for the song's next showing
        # The public "thinking" message can't turn private: remove it, answer privately.
        with contextlib.suppress(discord.HTTPException):
            await interaction.delete_original_response()
        await reply_privately(interaction, embeds.problem(outcome.message))

    @staticmethod
    def _destination(interaction: discord.Interaction[Any]) -> Destination:
        """Where the song is posted again, and what that post may use of the first one's
        context: this interaction (not the first one's, long gone), and no status card."""
        return Destination(
            platform=PLATFORM,
            chat_id=str(interaction.channel_id),
            user_id=str(interaction.user.id),
            context={
                "interaction_id": str(interaction.id),
                "status_message_id": None,
                "filesize_limit": interaction.filesize_limit,
                "guild_name": interaction.guild.name if interaction.guild else None,
                CAN_POST: False,  # the follow-up, which fills the "thinking" message
                embeds.SHOWN_BY: interaction.user.display_name,
            },
            scope_id=scope_of(interaction),
        )


class PageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"acejam:page:(?P<page>\d+)"
):
    """◀ or ▶ under a /history answer; its id is the page it leads to."""

    def __init__(self, page: int, *, forward: bool = True, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                emoji="▶" if forward else "◀",
                style=discord.ButtonStyle.secondary,
                custom_id=f"acejam:page:{page}",
                disabled=disabled,
            )
        )
        self.page = page

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> PageButton:
        return cls(int(match["page"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        bots = (commands.Bot, commands.AutoShardedBot)  # siblings, not one class
        cog = client.get_cog(COG_NAME) if isinstance(client, bots) else None
        songbook: Songbook | None = getattr(cog, "songbook", None)
        if songbook is None:
            raise RuntimeError("this client has no songbook")
        await songbook.turn(interaction, self.page)


def history_view(page: HistoryPage) -> discord.ui.View | None:
    """◀ ▶ when there is more than one page; the way that leads nowhere is shown disabled.
    Their ids differ (page - 1 and page + 1), as Discord wants within one message."""
    if page.pages <= 1:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(PageButton(page.page - 1, forward=False, disabled=not page.has_previous))
    view.add_item(PageButton(page.page + 1, disabled=not page.has_next))
    return view
