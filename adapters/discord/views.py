"""Buttons that keep working after a restart.

Each button is a :class:`discord.ui.DynamicItem` whose ``custom_id`` carries the job id
(``acejam:reroll:42``); the bot registers the classes at start-up (``add_dynamic_items``), so
a press on a message posted by an earlier process is still routed here. The job itself is
read from the database by the handler; nothing lives in the view.

A button that was used is shown green (``success``), as Midjourney highlights a used button:
its look is the only memory of the press, kept on the message itself.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

import discord

logger = logging.getLogger(__name__)

_CUSTOM_ID = re.compile(r"acejam:(?P<action>[a-z]+):(?P<id>\d+)")


class ButtonHandler(Protocol):
    """What the buttons call; the bot exposes one as ``client.buttons``."""

    async def reroll(
        self, interaction: discord.Interaction[Any], job_id: int, *, same_seed: bool
    ) -> None: ...

    async def retry(self, interaction: discord.Interaction[Any], job_id: int) -> None: ...

    async def cancel(self, interaction: discord.Interaction[Any], job_id: int) -> None: ...

    async def edit(self, interaction: discord.Interaction[Any], job_id: int) -> None: ...

    async def extend(self, interaction: discord.Interaction[Any], job_id: int) -> None: ...


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

    def __init__(self, job_id: int, *, used: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label=self.LABEL,
                emoji=self.EMOJI,
                style=discord.ButtonStyle.success if used else self.STYLE,
                custom_id=custom_id(self.ACTION, job_id),
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
    """🎲 New take: the same request with a new seed."""

    ACTION = "reroll"
    LABEL = "New take"
    EMOJI = "🎲"
    STYLE = discord.ButtonStyle.primary

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).reroll(interaction, self.job_id, same_seed=False)


class SameSeedButton(_JobButton, template=r"acejam:same:(?P<id>\d+)"):
    """🔁 Same seed: the same request and seed again."""

    ACTION = "same"
    LABEL = "Same seed"
    EMOJI = "🔁"

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).reroll(interaction, self.job_id, same_seed=True)


class RetryButton(_JobButton, template=r"acejam:retry:(?P<id>\d+)"):
    """🔁 Try again, under a failure: the same action as Same seed, where a seed is known."""

    ACTION = "retry"
    LABEL = "Try again"
    EMOJI = "🔁"
    STYLE = discord.ButtonStyle.primary

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).retry(interaction, self.job_id)


class EditButton(_JobButton, template=r"acejam:edit:(?P<id>\d+)"):
    """✏️ Edit: the compose form filled in with this song; what it makes records its parent."""

    ACTION = "edit"
    LABEL = "Edit"
    EMOJI = "✏️"

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).edit(interaction, self.job_id)


class ExtendButton(_JobButton, template=r"acejam:extend:(?P<id>\d+)"):
    """➕ Extend: the track longer by the core's default, continuing its style (#15)."""

    ACTION = "extend"
    LABEL = "Extend"
    EMOJI = "➕"

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).extend(interaction, self.job_id)


class CancelButton(_JobButton, template=r"acejam:cancel:(?P<id>\d+)"):
    ACTION = "cancel"
    LABEL = "Cancel"
    EMOJI = "✖"
    STYLE = discord.ButtonStyle.danger

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).cancel(interaction, self.job_id)


PERSISTENT_ITEMS: tuple[type[_JobButton], ...] = (
    RerollButton,
    SameSeedButton,
    RetryButton,
    CancelButton,
    EditButton,
    ExtendButton,
)
_BY_ACTION = {item.ACTION: item for item in PERSISTENT_ITEMS}


def custom_id(action: str, job_id: int) -> str:
    return f"acejam:{action}:{job_id}"


def status_view(job_id: int) -> discord.ui.View:
    """Under a status message while the job can still be stopped."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


def track_view(job_id: int, *, extend: bool = False) -> discord.ui.View:
    """Under a finished track; ``extend``: ➕ too, where the backend offers extending."""
    view = discord.ui.View(timeout=None)
    view.add_item(RerollButton(job_id))
    view.add_item(SameSeedButton(job_id))
    view.add_item(EditButton(job_id))
    if extend:
        view.add_item(ExtendButton(job_id))
    return view


def failure_view(job_id: int) -> discord.ui.View:
    """Under a failure that another attempt may fix."""
    view = discord.ui.View(timeout=None)
    view.add_item(RetryButton(job_id))
    return view


def used_view(message: discord.Message, pressed: str) -> discord.ui.View | None:
    """The buttons of ``message`` again, with ``pressed`` (a custom id) and those used
    before it shown used; None when the message has none of ours."""
    view = discord.ui.View(timeout=None)
    for row_number, row in enumerate(message.components):
        for child in getattr(row, "children", ()):
            custom = getattr(child, "custom_id", None) or ""
            found = _CUSTOM_ID.fullmatch(custom)
            item = _BY_ACTION.get(found["action"]) if found else None
            button: discord.ui.Item[Any]
            if found is not None and item is not None:
                used = custom == pressed or child.style == discord.ButtonStyle.success
                button = item(int(found["id"]), used=used)
            elif custom.startswith("acejam:") and isinstance(child, discord.components.Button):
                button = discord.ui.Button.from_component(child)  # another of ours (▶ Keep)
            else:
                continue
            button.row = row_number  # the rows stay as they were
            view.add_item(button)
    return view if view.children else None
