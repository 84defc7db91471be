"""The /compose form (multi-line lyrics, which a slash option can't hold, plus the rest), the
"✏️ Fix and resubmit" button that reopens it filled in after a refusal, and the same form
opened by ✏️ Edit under a track, filled in with that song (its submission records the track
as the new job's parent).

What was typed is kept in memory only, in the button's view (a refusal is answered within
seconds and fixed within minutes; after a restart the button simply no longer answers).
Every form and button gets a custom id of its own: discord.py files open forms by custom id,
so two members composing at once would otherwise share one form and lose a submission.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import discord

from adapters.discord import embeds
from adapters.discord.drafts import LINE_EXAMPLE, Draft
from adapters.discord.replies import reply_privately
from bot import messages
from bot.domain import LYRICS_MAX, TAGS_MAX, Limits

logger = logging.getLogger(__name__)

TEXT_INPUT_MAX = 4000  # Discord's cap for one text input
DURATION_INPUT_MAX = 6  # "240", "1:30", "10:00s"
SEED_INPUT_MAX = 11  # "-1" or ten digits
CONTROLS_INPUT_MAX = 120  # "takes=4 bpm=120 key=F# minor time=6 lang=yue", spaced out
FORM_TIMEOUT = 15 * 60.0  # as long as the interaction that opened it lives


class SubmitDraft(Protocol):
    async def __call__(self, interaction: discord.Interaction[Any], draft: Draft) -> None: ...


class ComposeModal(discord.ui.Modal, title="Compose a song"):
    tags: discord.ui.TextInput[ComposeModal] = discord.ui.TextInput(
        label="Style tags",
        placeholder="lo-fi, chill, rainy piano",
        custom_id="tags",
        max_length=TAGS_MAX,
    )
    lyrics: discord.ui.TextInput[ComposeModal] = discord.ui.TextInput(
        label="Lyrics (leave empty for instrumental)",
        style=discord.TextStyle.paragraph,
        placeholder="[Verse]\nRain on the window, tea going cold\n[Chorus]\nStay a little longer",
        custom_id="lyrics",
        required=False,
        max_length=min(LYRICS_MAX, TEXT_INPUT_MAX),
    )
    duration: discord.ui.TextInput[ComposeModal] = discord.ui.TextInput(
        label="Duration: seconds (90) or minutes (1:30)",
        custom_id="duration",
        required=False,
        max_length=DURATION_INPUT_MAX,
    )
    seed: discord.ui.TextInput[ComposeModal] = discord.ui.TextInput(
        label="Seed (empty or -1 for a random one)",
        custom_id="seed",
        required=False,
        max_length=SEED_INPUT_MAX,
    )
    # Discord's forms hold five inputs: the musical controls share the last one.
    controls: discord.ui.TextInput[ComposeModal] = discord.ui.TextInput(
        label="Takes, tempo, key, time, language (optional)",
        placeholder=LINE_EXAMPLE,
        custom_id="controls",
        required=False,
        max_length=CONTROLS_INPUT_MAX,
    )

    def __init__(
        self,
        submit: SubmitDraft,
        limits: Limits,
        *,
        key: int,
        draft: Draft | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(custom_id=f"acejam:compose:{key}", timeout=FORM_TIMEOUT, **_title(title))
        self._submit = submit
        # Kept as they were, not shown: the track an edit began from.
        self._parent_id = draft.parent_id if draft is not None else None
        self.duration.placeholder = f"{limits.min_duration}–{limits.max_duration} s"
        if draft is not None:
            # Discord refuses a prefilled value longer than its input takes.
            for item, value in (
                (self.tags, draft.tags),
                (self.lyrics, draft.lyrics),
                (self.duration, draft.duration),
                (self.seed, draft.seed),
                (self.controls, draft.controls_line()),
            ):
                item.default = value[: item.max_length] if item.max_length else value

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        # Strings as typed: the core's validation turns "90", "90s" or "" into a request or
        # a friendly sentence.
        await self._submit(
            interaction,
            Draft(
                tags=self.tags.value,
                lyrics=self.lyrics.value,
                duration=self.duration.value,
                seed=self.seed.value,
                controls=self.controls.value,
                parent_id=self._parent_id,
            ),
        )

    # discord.py's Modal narrows BaseView.on_error (no item argument) itself.
    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        logger.error("compose form failed", exc_info=error)
        await reply_privately(interaction, embeds.problem(messages.UNEXPECTED_ERROR))


class FixView(discord.ui.View):
    """Under a refusal of a request: reopen the form with what was typed."""

    def __init__(self, submit: SubmitDraft, limits: Limits, draft: Draft, *, key: int) -> None:
        super().__init__(timeout=FORM_TIMEOUT)
        self._submit = submit
        self._limits = limits
        self._draft = draft
        button: discord.ui.Button[FixView] = discord.ui.Button(
            label="Fix and resubmit",
            emoji="✏️",
            style=discord.ButtonStyle.primary,
            custom_id=f"acejam:fix:{key}",
        )
        button.callback = self._reopen  # type: ignore[method-assign]
        self.add_item(button)

    async def _reopen(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_modal(
            ComposeModal(self._submit, self._limits, key=interaction.id, draft=self._draft)
        )


EDIT_TITLE = "Edit and make again"


def _title(title: str | None) -> dict[str, str]:
    # discord.py takes the class's title unless one is passed.
    return {"title": title} if title else {}
