"""What the bot writes, rendered for ``parse_mode=HTML``.

Every piece of user text goes through :func:`esc`; the core's sentences go through
:func:`rich`, which also turns their `backticks` into code. Wording shared with other
platforms comes from :mod:`bot.messages`.
"""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import datetime

from bot import messages
from bot.domain import Job, Limits
from bot.quotas import QuotaStatus
from bot.service import QueueEntry

CAPTION_LIMIT = 1024  # visible characters, after entity parsing
ANSWER_LIMIT = 200  # answerCallbackQuery text
LIST_TAGS_LIMIT = 100  # tags of one song in a list: cut, so a list stays under 4096
LIST_LIMIT = 20
_TICKS = re.compile(r"`([^`\n]+)`")

EXAMPLE = (
    "/song lo-fi, chill, rainy piano | 30\n"
    "[Verse]\n"
    "Rain on the window, tea going cold\n"
    "[Chorus]\n"
    "Stay a little longer"
)


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def rich(sentence: str) -> str:
    """A core sentence (plain text, `literal` in backticks) as HTML."""
    return _TICKS.sub(r"<code>\1</code>", esc(sentence))


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def problem(sentence: str) -> str:
    """A friendly one-liner about something that didn't work."""
    return f"⚠️ {rich(sentence)}"


def plain_answer(sentence: str) -> str:
    """A callback answer: plain text (no parse mode there), at most 200 characters."""
    return clip(sentence.replace("`", ""), ANSWER_LIMIT)


def summary(job: Job) -> str:
    """The second line of a status message: what is being made, and its number (for
    ``/cancel 12``; ``/queue`` lists the same numbers)."""
    seed = f" · seed {job.request.seed}" if job.request.seed >= 0 else ""
    tags = esc(clip(job.request.tags, 200))
    return f"<i>{tags}</i> · {job.request.duration} s{seed} · #{job.id}"


def status(icon: str, line: str, job: Job) -> str:
    return f"{icon} {rich(line)}\n{summary(job)}"


def song_format(limits: Limits) -> str:
    return (
        "<b>/song</b> <i>tags</i> | <i>duration</i> | <i>seed</i>\n"
        f"Style tags first; the duration ({limits.min_duration}–{limits.max_duration} s) and "
        "the seed are optional. Put lyrics on the lines below, or send /song as a reply to a "
        "message holding them. No lyrics makes an instrumental.\n\n"
        f"For example:\n<pre>{esc(EXAMPLE)}</pre>"
    )


def help_text(limits: Limits) -> str:
    return (
        "🎵 <b>AceJam</b> makes songs with the ACE-Step music model.\n\n"
        f"{song_format(limits)}\n\n"
        "/queue — your songs in line\n"
        "/cancel — stop your latest song (or reply /cancel to its message)\n"
        "/quota — how many seconds of music you have left\n"
        "/history — your last songs and their seeds\n"
        "/help — this message\n\n"
        "Under each song: 🎲 makes another take, 🔁 makes it again with the same seed."
    )


def start_text(limits: Limits, first_name: str | None) -> str:
    hello = f"Hi {esc(first_name)}! " if first_name else "Hi! "
    return f"👋 {hello}Tell me a style and I'll make you a song.\n\n{help_text(limits)}"


def quota_text(quota: QuotaStatus, now: datetime | None = None) -> str:
    return "🎚 " + "\n".join(rich(line) for line in messages.quota_lines(quota, now))


def queue_text(entries: list[QueueEntry]) -> str:
    if not entries:
        return f"📭 {rich(messages.NO_QUEUE)} Ask for one with /song."
    lines = [
        f"• {esc(messages.queue_line(_short(entry.job), entry.position))}"
        for entry in entries[:LIST_LIMIT]
    ]
    if len(entries) > LIST_LIMIT:
        lines.append(f"… and {len(entries) - LIST_LIMIT} more")
    return "🎶 <b>Your songs in progress</b>\n" + "\n".join(lines)


def history_text(jobs: list[Job]) -> str:
    if not jobs:
        return f"📭 {rich(messages.NO_HISTORY)} Ask for one with /song."
    lines = [f"• #{job.id} {esc(messages.describe(_short(job)))}" for job in jobs]
    return (
        "🕘 <b>Your last songs</b>\n"
        + "\n".join(lines)
        + "\n\nTo make one again: <code>/song tags | duration | seed</code>"
    )


def caption(
    job: Job,
    *,
    title: str,
    seconds: float,
    full_seconds: float,
    is_preview: bool,
) -> str:
    """The audio caption: title, tags, length and seed (so anyone can make it again)."""
    seed = job.seed_used if job.seed_used is not None else job.request.seed
    seed_text = f"🌱 seed <code>{seed}</code>" if seed is not None and seed >= 0 else ""
    lines = [
        f"🎵 <b>{esc(title)}</b>",
        f"🏷 {esc(clip(job.request.tags, 600))}",
        " · ".join(part for part in (f"⏱ {_clock(seconds)}", seed_text) if part),
    ]
    if is_preview:
        lines.append(
            f"🔎 Preview: the first {_clock(seconds)} of {_clock(full_seconds)} — the whole "
            "song is too big to send here."
        )
    return "\n".join(lines)


def _short(job: Job) -> Job:
    """The job with its tags cut for a list line (the seed and state at the end must show)."""
    tags = clip(job.request.tags, LIST_TAGS_LIMIT)
    return dataclasses.replace(job, request=dataclasses.replace(job.request, tags=tags))


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"
