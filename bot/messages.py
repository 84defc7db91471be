"""Every sentence a user reads about a job lives here, so wording stays consistent."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain import Job, JobState, Task
from bot.quotas import QuotaStatus
from bot.settlement import refunds_quota
from bot.units import humanize_seconds

FAILURE_TEXT = {
    "timeout": "The music engine never finished this song, so I gave up on it.",
    "submit_uncertain": (
        "The music engine didn't confirm it received this song; to make sure you're never "
        "charged twice, I didn't resend it."
    ),
    "upstream_failed": "The music engine couldn't make this song.",
    "moderation": "The music engine refused this request (content rules).",
    "upstream_rejected": "The music engine refused this request.",
    "auth_failed": "The bot's music-engine account isn't working; the operator has to fix it.",
    "invalid_request": "The music engine refused these settings.",
    "bad_audio": "The finished song couldn't be downloaded or wasn't playable audio.",
    "audio_too_large": "The finished song is too big for this chat, even as a short preview.",
    "download_expired": "The finished song expired before I could fetch it.",
    "delivery_failed": "I couldn't post the finished song in this chat.",
    "nsfw": "The music engine flagged this song as not safe for this chat, so I held it back.",
    "bot_blocked": "The song was made, but I can't send it: the bot is blocked here.",
    "chat_gone": "The song was made, but I can't post in this chat any more.",
    "lost": "The bot lost track of this song.",
    "poll_failed": "The music engine stopped answering about this song, so I gave up on it.",
    "download_interrupted": (
        "The finished song kept breaking off while I fetched it, until it was too late."
    ),
    # An edit whose source file vanished before it was sent (bot/worker/submit.py, and the
    # backends when it goes while they read it).
    "source_missing": (
        "The audio this edit starts from is gone; ask again (with /extend, /remix or /repaint "
        "on a track that is still kept, or send your audio again)."
    ),
    "no_language_model": (
        "The music engine has no language model right now, so it couldn't write a song from "
        "your description; give /song style tags instead, e.g. `sad piano ballad, rain, slow`."
    ),
}


# Download problems other than expiry and broken transfers read the same to a user.
_BAD_AUDIO_CODES = frozenset(
    {"download_refused", "download_failed", "download_too_large", "empty_audio", "not_audio"}
)
# A transfer that broke off, stalled or found the host down, every time until the deadline.
_TRANSFER_CODES = frozenset({"download_truncated", "download_timeout", "download_unavailable"})


STATE_WORDS = {
    JobState.QUEUED: "waiting in line",
    JobState.SUBMITTING: "being sent to the music engine",
    JobState.SUBMITTED: "being made",
    JobState.RUNNING: "being made",
    JobState.SUCCEEDED: "finished",
    JobState.DELIVERED: "finished and posted",
    JobState.FAILED: "over (it failed)",
    JobState.CANCELLED: "cancelled",
}


def state_word(state: JobState) -> str:
    return STATE_WORDS.get(state, state.value)


# Failures the same request would meet again (its content, the bot's account, the chat itself):
# no "🔁 Try again" under these.
_NOT_WORTH_RETRYING = frozenset(
    {
        "moderation",
        "upstream_rejected",
        "auth_failed",
        "invalid_request",
        "audio_too_large",
        "nsfw",
        "bot_blocked",
        "chat_gone",
        "no_language_model",
        "source_missing",  # the same source is still gone
    }
)


ALREADY_PRESSED = "Already done — see above."  # a second tap of one button within seconds


def worth_trying_again(code: str | None) -> bool:
    """Whether a failed song's "🔁 Try again" could succeed (the failure was bad luck)."""
    return code not in _NOT_WORTH_RETRYING


def failure_message(code: str | None) -> str:
    """Why the song failed, and whether it still counts against the user's quota."""
    quota = (
        "Your quota has been given back."
        if refunds_quota(code)
        else "It still counts against your quota."
    )
    if code in _BAD_AUDIO_CODES:
        code = "bad_audio"
    elif code in _TRANSFER_CODES:
        code = "download_interrupted"
    text = FAILURE_TEXT.get(code or "", "Something went wrong making this song.")
    return f"{text} {quota}"


def until(moment: datetime, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return humanize_seconds(max(0.0, (moment - now).total_seconds()))


def describe(job: Job) -> str:
    """A one-line summary: 'lo-fi, chill — 90 s, seed 1234'."""
    seed = job.seed_used if job.seed_used is not None else job.request.seed
    seed_text = f", seed {seed}" if seed is not None and seed >= 0 else ""
    return f"{job.request.tags} — {job.request.duration} s{seed_text}"


# ---------------------------------------------------------------- progress and account lines
# Plain text; `backticks` mark literal input, which adapters render as code.


def queued_line(position: int) -> str:
    """The first thing a user reads after asking: where the song stands in line."""
    if position <= 0:
        return "Queued — starting now."
    if position == 1:
        return "Queued — position 1 (next up)."
    return f"Queued — position {position}."


def running_line(progress: float | None, eta: datetime | None, now: datetime | None = None) -> str:
    """'Making your song — 40%, about 12 s left.' with whatever the backend told us."""
    parts = []
    if progress is not None:
        parts.append(f"{max(0, min(100, round(progress * 100)))}%")
    if eta is not None:
        left = (eta - (now or datetime.now(UTC))).total_seconds()
        parts.append(f"about {humanize_seconds(left)} left" if left >= 1 else "almost done")
    if not parts:
        return "Making your song…"
    return f"Making your song — {', '.join(parts)}."


FINISHING_LINE = "Finished — sending it now…"
DELIVERED_LINE = "Done — your song is below."


def quota_lines(status: QuotaStatus, now: datetime | None = None) -> list[str]:
    """/quota: seconds left in the rolling 24 h, when used seconds come back, active jobs."""
    active = f"Songs queued or running: {status.active_jobs} of {status.max_active_jobs}."
    if status.unlimited:
        return ["You can make as much music as you like here.", active]
    lines = [
        f"You have {humanize_seconds(status.remaining_seconds)} of "
        f"{humanize_seconds(status.limit_seconds)} left (a rolling 24 hours)."
    ]
    if status.next_free_at is not None and status.used_seconds > 0:
        lines.append(f"Your oldest song's seconds come back in {until(status.next_free_at, now)}.")
    lines.append(active)
    return lines


def queue_line(job: Job, position: int) -> str:
    """/queue: one of the user's unfinished songs and where it is."""
    if job.state == JobState.SUCCEEDED:
        where = "finished, being sent"
    elif position > 0:
        where = f"position {position} in the queue"
    elif job.progress is not None:
        where = f"running ({round(job.progress * 100)}%)"
    else:
        where = "running"
    return f"#{job.id} {job.request.tags} — {job.request.duration} s: {where}"


# A description, where the backend has no language model to write a song from one.
NO_LANGUAGE_MODEL = (
    "This bot's music engine has no language model, so it can't write a song from a "
    "description; give /song style tags instead, e.g. `sad piano ballad, rain, slow`."
)
SONG_GONE = "I can't find that song any more."
SOMEONE_ELSES_SONG = "That's someone else's song; ask for your own with /song."
NO_QUEUE = "You have no songs queued or running."
NO_HISTORY = "You haven't made any songs yet."
NOTHING_TO_CANCEL = "You have nothing queued or running to cancel."


# ---------------------------------------------------------------- delivery notes (Discord adapter)


def preview_line(seconds: float, full_seconds: float) -> str:
    """The label of a track cut to fit a chat's upload limit."""
    return (
        f"Preview: the first {humanize_seconds(seconds)} of {humanize_seconds(full_seconds)} — "
        "the whole song is too big to upload here"
    )


COMMAND_GONE = "That command isn't available any more; type / to see what I can do."
UNEXPECTED_ERROR = "Something went wrong on my side; please try again in a moment."


# ---------------------------------------------------------------- admin actions (every platform)

# On the owner's status message when an admin stopped their song.
ADMIN_CANCELLED = "Cancelled by an admin. The quota has been given back."
NOT_AN_ADMIN = "Sorry, only this chat's admins can change its settings."


def cancel_message(job: Job) -> str:
    """What the owner of a cancelled song reads."""
    if job.error_code == "cancelled_by_admin":
        return ADMIN_CANCELLED
    return "Cancelled. Your quota has been given back."


def cancelled_for_owner(job: Job) -> str:
    """What the admin reads after cancelling someone else's song."""
    return f"Cancelled #{job.id}; its owner got the quota back."


def quota_value(seconds: int | None, default: int) -> str:
    """A daily quota as admins set it: seconds, unlimited (-1), or None for the default."""
    if seconds is None:
        return f"{quota_value(default, default)} (the default)"
    if seconds < 0:
        return "unlimited"
    return f"{humanize_seconds(seconds)} a day"


# ---------------------------------------------------------------- edits (docs/edits.md)
# Platform-neutral: each adapter says its own way to switch it on before the core is asked.
OWN_AUDIO_OFF = (
    "Editing audio you send isn't switched on in this chat; an admin can turn it on in the "
    "bot's admin settings, or send it to me in a direct message."
)
_LINEAGE = {Task.EXTEND: "extended from", Task.REMIX: "remix of", Task.REPAINT: "repaint of"}


def lineage(job: Job, *, own_audio: str = "your audio") -> str | None:
    """Where an edit came from, for its card, /history and `acejam jobs`: "extended from
    #12", "remix of your audio" (``own_audio`` names a user's upload: the operator reads
    "the user's audio"); None for a song made from scratch (or a re-roll of one)."""
    edit = job.request.edit
    if edit is None:
        return None
    if edit.own_audio or job.parent_id is None:
        return f"{_LINEAGE[edit.task]} {own_audio}"
    return f"{_LINEAGE[edit.task]} #{job.parent_id}"
