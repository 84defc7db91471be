"""🗳 Vote for take N (#16): the button under each take of a jam round.

A :class:`discord.ui.DynamicItem` whose custom id carries the jam, the round and the take
(``jam:vote:<jam>:<round>:<take>``), registered at start-up, so a press on a take posted by an
earlier process still counts. The vote itself is the core's (one per member and round,
changeable; pressing again changes nothing); the handler is the client's ``jams``
(:class:`adapters.discord.jams.JamDesk`).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from bot.jams.model import JamTakeRef


class VoteHandler(Protocol):
    async def vote(
        self, interaction: discord.Interaction[Any], jam_id: int, round: int, take: int
    ) -> None: ...


def vote_id(ref: JamTakeRef) -> str:
    return f"jam:vote:{ref.jam_id}:{ref.round}:{ref.take}"


class VoteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"jam:vote:(?P<jam>\d+):(?P<round>\d+):(?P<take>\d+)",
):
    def __init__(self, ref: JamTakeRef) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"Vote for take {ref.take}",
                emoji="🗳️",
                style=discord.ButtonStyle.primary,
                custom_id=vote_id(ref),
            )
        )
        self.ref = ref

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> VoteButton:
        return cls(JamTakeRef(int(match["jam"]), int(match["round"]), int(match["take"])))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        handler: VoteHandler | None = getattr(interaction.client, "jams", None)
        if handler is None:
            raise RuntimeError("this client has no jam handler")
        await handler.vote(interaction, self.ref.jam_id, self.ref.round, self.ref.take)


def vote_view(ref: JamTakeRef) -> discord.ui.View:
    """Under a jam's take, instead of a song's 🎲 / 🔁 / ✏️: the take belongs to the jam."""
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton(ref))
    return view
