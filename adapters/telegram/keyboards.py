"""Inline keyboards. A button carries only ``<action>:<job id>`` (well under Telegram's 64-byte
``callback_data`` limit), so buttons keep working after a restart: the job is in the database."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

REROLL = "rr"  # 🎲 same tags and lyrics, new seed
SAME_SEED = "ss"  # 🔁 same tags, lyrics and seed
CANCEL = "cx"  # ✖ cancel a queued or running job
KEEP = "kp"  # ▶ keep take N of a job with several: kp:<job id>:<take>
EXTEND = "ex"  # ➕ the track, longer by the default seconds
VOTE = "jv"  # 🗳 a jam take: jv:<jam id>:<round>:<take> (the jam's, not the job's, ids)

MAX_JOB_ID = 2**63 - 1  # ids are 64-bit integers in the database
# What CallbackQueryHandler routes to the button handler.
PATTERN = re.compile(rf"^({REROLL}|{SAME_SEED}|{CANCEL}):(\d{{1,19}})$")
KEEP_PATTERN = re.compile(rf"^{KEEP}:(\d{{1,19}}):([1-9])$")
EXTEND_PATTERN = re.compile(rf"^{EXTEND}:(\d{{1,19}})$")
VOTE_PATTERN = re.compile(rf"^{VOTE}:(\d{{1,19}}):(\d{{1,9}}):(\d{{1,9}})$")


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


def parse_extend(data: str | None) -> int | None:
    """The job a ➕ press extends."""
    match = EXTEND_PATTERN.match(data or "")
    if match is None or int(match.group(1)) > MAX_JOB_ID:
        return None
    return int(match.group(1))


NEW_TAKE_LABEL = "🎲 New take"
SAME_SEED_LABEL = "🔁 Same seed"
TRY_AGAIN_LABEL = "🔁 Try again"
EXTEND_LABEL = "➕ Extend"
USED_MARK = " ✓"  # a used button says so (pressing it again changes nothing)


def track_keyboard(job_id: int, *, extend: bool = False) -> InlineKeyboardMarkup:
    """Under a delivered track; ``extend``: the engine can make it longer (➕)."""
    row = [
        InlineKeyboardButton(NEW_TAKE_LABEL, callback_data=f"{REROLL}:{job_id}"),
        InlineKeyboardButton(SAME_SEED_LABEL, callback_data=f"{SAME_SEED}:{job_id}"),
    ]
    if extend:
        row.append(InlineKeyboardButton(EXTEND_LABEL, callback_data=f"{EXTEND}:{job_id}"))
    return InlineKeyboardMarkup([row])


KEEP_LABEL = "▶ Keep {take}"
KEEPS_PER_ROW = 4
KEPT_LABEL = "✅ Kept {take}"


@dataclass(frozen=True)
class KeepPress:
    job_id: int
    take: int


def parse_keep(data: str | None) -> KeepPress | None:
    match = KEEP_PATTERN.match(data or "")
    if match is None or int(match.group(1)) > MAX_JOB_ID:
        return None
    return KeepPress(int(match.group(1)), int(match.group(2)))


def takes_keyboard(job_id: int, takes: Sequence[int], kept: int | None) -> InlineKeyboardMarkup:
    """Under a job's takes (an album takes no buttons, so under the message below it): one
    ▶ Keep per take (four to a row, so eight still read), ✅ on the kept one; then 🎲 / 🔁,
    which start from the kept take."""
    keep = [
        InlineKeyboardButton(
            (KEPT_LABEL if take == kept else KEEP_LABEL).format(take=take),
            callback_data=f"{KEEP}:{job_id}:{take}",
        )
        for take in takes
    ]
    rows = [keep[start : start + KEEPS_PER_ROW] for start in range(0, len(keep), KEEPS_PER_ROW)]
    return InlineKeyboardMarkup([*rows, *track_keyboard(job_id).inline_keyboard])


def try_again_keyboard(job_id: int, *, seed_known: bool) -> InlineKeyboardMarkup:
    """Under a failure notice: the same request again, with its seed when it had one."""
    action = SAME_SEED if seed_known else REROLL
    button = InlineKeyboardButton(TRY_AGAIN_LABEL, callback_data=f"{action}:{job_id}")
    return InlineKeyboardMarkup([[button]])


def marked_used(markup: InlineKeyboardMarkup | None, data: str) -> InlineKeyboardMarkup | None:
    """``markup`` with the button carrying ``data`` marked as used; None when there is
    nothing to change (no such button, or it is marked already)."""
    if markup is None:
        return None
    changed = False
    rows = []
    for row in markup.inline_keyboard:
        buttons = []
        for button in row:
            if button.callback_data == data and not button.text.endswith(USED_MARK):
                button = InlineKeyboardButton(button.text + USED_MARK, callback_data=data)
                changed = True
            buttons.append(button)
        rows.append(buttons)
    return InlineKeyboardMarkup(rows) if changed else None


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


VOTE_LABEL = "🗳 Vote for take {take}"


@dataclass(frozen=True)
class VotePress:
    jam_id: int
    round: int
    take: int


def vote_keyboard(jam_id: int, round: int, take: int) -> InlineKeyboardMarkup:
    """Under a jam's take: everything the vote needs is in the button, so it works however
    late it is pressed (the core says when voting is over)."""
    button = InlineKeyboardButton(
        VOTE_LABEL.format(take=take), callback_data=f"{VOTE}:{jam_id}:{round}:{take}"
    )
    return InlineKeyboardMarkup([[button]])


def parse_vote(data: str | None) -> VotePress | None:
    match = VOTE_PATTERN.match(data or "")
    if match is None or int(match.group(1)) > MAX_JOB_ID:
        return None
    return VotePress(int(match.group(1)), int(match.group(2)), int(match.group(3)))
