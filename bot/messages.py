"""Every sentence a user reads about a job lives here, so wording stays consistent."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain import Job

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
    "lost": "The bot lost track of this song.",
}


# Download problems other than expiry read the same to a user.
_BAD_AUDIO_CODES = frozenset(
    {"download_refused", "download_failed", "download_too_large", "download_truncated"}
    | {"empty_audio", "not_audio", "download_unavailable"}
)


def failure_message(code: str | None) -> str:
    if code in _BAD_AUDIO_CODES:
        code = "bad_audio"
    text = FAILURE_TEXT.get(code or "", "Something went wrong making this song.")
    return f"{text} Your quota has been given back."


def humanize_seconds(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def until(moment: datetime, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return humanize_seconds(max(0.0, (moment - now).total_seconds()))


def describe(job: Job) -> str:
    """A one-line summary: 'lo-fi, chill — 90 s, seed 1234'."""
    seed = job.seed_used if job.seed_used is not None else job.request.seed
    seed_text = f", seed {seed}" if seed is not None and seed >= 0 else ""
    return f"{job.request.tags} — {job.request.duration} s{seed_text}"
