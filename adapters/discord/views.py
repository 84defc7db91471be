"""Buttons that keep working after a restart.

Each button is a :class:`discord.ui.DynamicItem` whose ``custom_id`` carries the job id
(``acejam:reroll:42``); the bot registers the classes at start-up (``add_dynamic_items``), so
a press on a message posted by an earlier process is still routed here. The job itself is
read from the database by the handler; nothing lives in the view.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

import discord

logger = logging.getLogger(__name__)


class ButtonHandler(Protocol):
    """What the buttons call; the bot exposes one as ``client.buttons``."""

    async def reroll(
        self, interaction: discord.Interaction[Any], job_id: int, *, same_seed: bool
    ) -> None: ...

    async def cancel(self, interaction: discord.Interaction[Any], job_id: int) -> None: ...


def _handler(interaction: discord.Interaction[Any]) -> ButtonHandler:
    handler: ButtonHandler | None = getattr(interaction.client, "buttons", None)
    if handler is None:
        raise RuntimeError("this client has no button handler")
    return handler


class _JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"acejam:x:(?P<id>\d+)"):
    """Base: a button whose custom id is ``acejam:<action>:<job id>``."""

    ACTION = "x"
    LABEL = ""
    EMOJI = ""
    STYLE = discord.ButtonStyle.secondary

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=self.LABEL,
                emoji=self.EMOJI,
                style=self.STYLE,
                custom_id=f"acejam:{self.ACTION}:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> _JobButton:
        return cls(int(match["id"]))


class RerollButton(_JobButton, template=r"acejam:reroll:(?P<id>\d+)"):
    ACTION = "reroll"
    LABEL = "Re-roll"
    EMOJI = "🎲"
    STYLE = discord.ButtonStyle.primary

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).reroll(interaction, self.job_id, same_seed=False)


class SameSeedButton(_JobButton, template=r"acejam:same:(?P<id>\d+)"):
    ACTION = "same"
    LABEL = "Same seed"
    EMOJI = "🔁"

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).reroll(interaction, self.job_id, same_seed=True)


class CancelButton(_JobButton, template=r"acejam:cancel:(?P<id>\d+)"):
    ACTION = "cancel"
    LABEL = "Cancel"
    EMOJI = "✖"
    STYLE = discord.ButtonStyle.danger

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).cancel(interaction, self.job_id)


PERSISTENT_ITEMS: tuple[type[_JobButton], ...] = (RerollButton, SameSeedButton, CancelButton)


def status_view(job_id: int) -> discord.ui.View:
    """Under a status message while the job can still be stopped."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


def track_view(job_id: int) -> discord.ui.View:
    """Under a finished track."""
    view = discord.ui.View(timeout=None)
    view.add_item(RerollButton(job_id))
    view.add_item(SameSeedButton(job_id))
    return view
