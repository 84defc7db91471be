"""A job's several takes on Discord: one message with a file per take, and ▶ Keep.

The takes arrive as one message: each file is named with its take and seed
(``take-2-seed-123.mp3``), the card lists every take's seed, and under it ▶ Keep 1 … ▶ Keep N
then 🎲 / 🔁, which the core applies to the kept take (take 1 until one is kept). A press of
▶ Keep goes to :class:`adapters.discord.keeping.TakeKeeper`, which shows the kept take on the
message's buttons (green, ✅) with :func:`kept_view`.

A ▶ Keep button is a :class:`discord.ui.DynamicItem` like the others (``acejam:keep:<job>:<take>``),
so it works on messages posted before a restart; the client registers it with the rest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, Protocol

import discord

from adapters.discord import embeds
from adapters.discord.embeds import TrackCard
from adapters.discord.views import track_view
from bot.delivery import FittedTake
from bot.domain import Job

logger = logging.getLogger(__name__)

ROW_WIDTH = 5  # buttons in one row of a Discord message (MAX_TAKES may be 8)
_KEEP_ID = re.compile(r"acejam:keep:(?P<id>\d+):(?P<take>\d+)")


def takes_embed(job: Job, takes: Sequence[FittedTake], limit: int) -> discord.Embed:
    """The track card for several takes: the song's card, with every take's seed in place
    of the one seed."""
    first = takes[0].track
    preview = any(fitted.track.is_preview for fitted in takes)
    title = embeds.track_tags(job, None).title
    card = TrackCard(
        title=f"{title} (preview)" if preview else title,
        duration=first.duration,
        full_duration=first.full_duration,
        is_preview=preview,
        limit_bytes=limit,
        with_image=False,
    )
    embed = embeds.track_embed(job, card)
    for index, field in enumerate(embed.fields):
        if field.name == "Seed":
            seeds = seeds_field([(fitted.take, fitted.seed) for fitted in takes])
            embed.set_field_at(index, name="Takes", value=seeds)
    embed.set_footer(text=f"Job #{job.id} · ▶ Keep a take · 🎲 New take · 🔁 Same seed")
    return embed


def take_filename(take: int, seed: int | None) -> str:
    """A take's file name: which take, and the seed that makes it again."""
    return f"take-{take}-seed-{seed}.mp3" if seed is not None else f"take-{take}.mp3"


def seeds_field(takes: Sequence[tuple[int, int | None]]) -> str:
    """The card's list of takes and their seeds (one line each)."""
    return "\n".join(
        f"Take {take}: seed {seed if seed is not None else 'random'}" for take, seed in takes
    )


class KeepHandler(Protocol):
    """What ▶ Keep calls; the bot exposes one as ``client.takes``
    (:class:`adapters.discord.keeping.TakeKeeper`)."""

    async def keep(self, interaction: discord.Interaction[Any], job_id: int, take: int) -> None: ...


class KeepButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"acejam:keep:(?P<id>\d+):(?P<take>\d+)",
):
    """▶ Keep N: take N is the one 🎲 / 🔁 (and history) build on."""

    def __init__(self, job_id: int, take: int, *, kept: bool = False, row: int = 0) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"Kept {take}" if kept else f"Keep {take}",
                emoji="✅" if kept else "▶️",
                style=discord.ButtonStyle.success if kept else discord.ButtonStyle.secondary,
                custom_id=f"acejam:keep:{job_id}:{take}",
                row=row,
            )
        )
        self.job_id = job_id
        self.take = take

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> KeepButton:
        return cls(int(match["id"]), int(match["take"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        keeper: KeepHandler | None = getattr(interaction.client, "takes", None)
        if keeper is None:
            raise RuntimeError("this client has no take keeper")
        await keeper.keep(interaction, self.job_id, self.take)


def takes_view(
    job_id: int, takes: Sequence[int], kept: int | None = None, *, extend: bool = False
) -> discord.ui.View:
    """Under a message with several takes: ▶ Keep per take (five to a row), then the
    track's own buttons in a row of their own (➕ extends the kept take, where offered)."""
    view = discord.ui.View(timeout=None)
    for index, take in enumerate(takes):
        view.add_item(KeepButton(job_id, take, kept=take == kept, row=index // ROW_WIDTH))
    for item in track_view(job_id, extend=extend).children:
        item.row = (len(takes) - 1) // ROW_WIDTH + 1
        view.add_item(item)
    return view


def kept_view(message: discord.Message, kept: int) -> discord.ui.View | None:
    """The buttons of ``message`` again with take ``kept`` shown kept (and no other), the
    rest as they were (a used 🎲 stays green); None when nothing would change."""
    view = discord.ui.View(timeout=None)
    changed = False
    for row_number, row in enumerate(message.components):
        for child in getattr(row, "children", ()):
            if not isinstance(child, discord.components.Button):
                continue
            found = _KEEP_ID.fullmatch(child.custom_id or "")
            if found is None:
                button = discord.ui.Button[Any].from_component(child)
                button.row = row_number
                view.add_item(button)
                continue
            take = int(found["take"])
            was_kept = child.style == discord.ButtonStyle.success
            changed |= was_kept != (take == kept)
            view.add_item(KeepButton(int(found["id"]), take, kept=take == kept, row=row_number))
    return view if changed else None
