"""Inline keyboards. A button carries only ``<action>:<job id>`` (well under Telegram's 64-byte
``callback_data`` limit), so buttons keep working after a restart: the job is in the database."""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

REROLL = "rr"  # 🎲 same tags and lyrics, new seed
SAME_SEED = "ss"  # 🔁 same tags, lyrics and seed
CANCEL = "cx"  # ✖ cancel a queued or running job

MAX_JOB_ID = 2**63 - 1  # ids are 64-bit integers in the database
# What CallbackQueryHandler routes to the button handler.
PATTERN = re.compile(rf"^({REROLL}|{SAME_SEED}|{CANCEL}):(\d{{1,19}})$")


@dataclass(frozen=True)
class Press:
    action: str  # REROLL | SAME_SEED | CANCEL
    job_id: int


def parse(data: str | None) -> Press | None:
    match = PATTERN.match(data or "")
    if match is None or int(match.group(2)) > MAX_JOB_ID:
        return None
    return Press(match.group(1), int(match.group(2)))


def cancel_keyboard(job_id: int) -> InlineKeyboardMarkup:
    """Under the status message while the job is queued or running."""
    button = InlineKeyboardButton("✖ Cancel", callback_data=f"{CANCEL}:{job_id}")
    return InlineKeyboardMarkup([[button]])


def track_keyboard(job_id: int) -> InlineKeyboardMarkup:
    """Under a delivered track."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("🎲 Re-roll", callback_data=f"{REROLL}:{job_id}"),
                InlineKeyboardButton("🔁 Same seed", callback_data=f"{SAME_SEED}:{job_id}"),
            ]
        ]
    )


def job_of(markup: InlineKeyboardMarkup | None) -> int | None:
    """The job a message's buttons belong to (how ``/cancel`` as a reply finds its target)."""
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            data = button.callback_data if isinstance(button.callback_data, str) else None
            press = parse(data)
            if press is not None:
                return press.job_id
    return None
