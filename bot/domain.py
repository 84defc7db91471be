"""The core's vocabulary: requests, jobs, their states, and request validation.

Everything here is a frozen value; nothing does I/O. Adapters build a
:class:`GenerationRequest` through :func:`validate_request` and get back either the
request or an :class:`Invalid` carrying a sentence a user can read.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NewType

JobId = NewType("JobId", int)
UserId = NewType("UserId", int)

SEED_MAX = 2_147_483_647
# The most any backend takes; each backend's own limits (bot/ports.py) may be lower.
TAGS_MAX = 512
LYRICS_MAX = 4096
DEFAULT_DURATION = 60
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,12}")  # bounded: no 5,000-digit int() to parse
_CLOCK = re.compile(r"([0-9]{1,3}):([0-5][0-9])")  # a duration of "1:30" means 90 s


class JobState(enum.StrEnum):
    """Where a job is. Each state is committed before the side effect that follows it."""

    QUEUED = "queued"  # validated, quota reserved, waiting for a worker
    SUBMITTING = "submitting"  # claimed; the submit request may be on the wire
    SUBMITTED = "submitted"  # upstream accepted it; remote id stored
    RUNNING = "running"  # upstream says it is generating
    SUCCEEDED = "succeeded"  # audio is on our disk
    DELIVERED = "delivered"  # posted to the chat; quota charged
    FAILED = "failed"  # reason stored; quota refunded
    CANCELLED = "cancelled"  # stopped by its owner or an admin; quota refunded

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


# Jobs from `acejam generate`: no chat to post to, so SUCCEEDED is where they end.
LOCAL_PLATFORM = "cli"

FINAL_STATES = frozenset({JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED})
# Upstream work exists (or may exist) for these: they are polled, not submitted again.
IN_FLIGHT_STATES = frozenset({JobState.SUBMITTING, JobState.SUBMITTED, JobState.RUNNING})
ACTIVE_STATES = frozenset(
    {JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.RUNNING, JobState.SUCCEEDED}
)


@dataclass(frozen=True)
class Controls:
    """Musical controls (validated by :mod:`bot.controls`); None means "the model decides"."""

    bpm: int | None = None
    key_scale: str | None = None  # canonical: "C major", "F# minor", "Bb major"
    time_signature: int | None = None  # beats per bar: 2, 3, 4 or 6
    vocal_language: str | None = None  # one of bot.controls.VOCAL_LANGUAGES

    @property
    def given(self) -> bool:
        return any(
            value is not None
            for value in (self.bpm, self.key_scale, self.time_signature, self.vocal_language)
        )


NO_CONTROLS = Controls()


class Task(enum.StrEnum):
    """What a job makes: a new song, or an edit of a track (docs/edits.md)."""

    SONG = "song"
    EXTEND = "extend"  # the source, longer by ``Edit.seconds`` at its end (or start)
    REMIX = "remix"  # the source re-performed in another style, keeping its structure
    REPAINT = "repaint"  # one section of the source made again, the rest kept


@dataclass(frozen=True)
class Edit:
    """An edit's source and what to do to it. The source is a file of ours (a track's audio,
    or audio a user sent, decoded and checked) kept at least until the job ends."""

    task: Task  # never Task.SONG
    source_path: str  # under DATA_DIR/sources (bot/sources.py)
    source_seconds: float  # its decoded length
    own_audio: bool = False  # a user's upload, not one of our tracks (the card says so)
    seconds: int = 0  # EXTEND: the seconds added
    at_start: bool = False  # EXTEND: before the start rather than after the end
    start: float | None = None  # REPAINT: the section, in seconds of the source
    end: float | None = None
    strength: float = 0.5  # REMIX: 0..1, how closely it keeps the source (cover strength)
    # Where the backend has the source once ``Backend.prepare`` uploaded it (WaveSpeed), recorded
    # before the billed submit; None until then, and for every new job (a re-run uploads again).
    uploaded_url: str | None = None

    @property
    def output_seconds(self) -> float:
        """How long the result is: the whole longer song for an extend."""
        return self.source_seconds + (self.seconds if self.task == Task.EXTEND else 0)


@dataclass(frozen=True)
class GenerationRequest:
    tags: str
    lyrics: str = ""
    duration: int = DEFAULT_DURATION
    seed: int = -1  # -1: let the backend pick (we record the seed it used)
    # False when the user named no duration, so a chat's own default may apply.
    explicit_duration: bool = field(default=True, compare=False)
    takes: int = 1  # how many versions of the song one request makes (MAX_TAKES)
    controls: Controls = NO_CONTROLS
    # A song from one sentence: the backend's language model writes tags, lyrics and the
    # rest from it (the tags may then be empty until it has).
    describe: str = ""
    # An edit of a track (extend, remix, repaint); None for a new song. ``duration`` is then
    # the seconds it generates, what quota and cost count: the added seconds for an extend,
    # the whole output for a remix or repaint (Edit.output_seconds is the result's length).
    edit: Edit | None = None

    @property
    def task(self) -> Task:
        return self.edit.task if self.edit is not None else Task.SONG

    @property
    def instrumental(self) -> bool:
        return not self.lyrics.strip()


@dataclass(frozen=True)
class Invalid:
    """A request that cannot run, with the sentence to show its author."""

    message: str


@dataclass(frozen=True)
class Limits:
    """What a request may ask for: the active backend's limits (and MAX_DURATION)."""

    min_duration: int
    max_duration: int
    max_tags_chars: int = TAGS_MAX
    max_lyrics_chars: int = LYRICS_MAX
    max_takes: int = 1  # MAX_TAKES
    # The backend reads musical controls from its tags (Capabilities.controls_as_parameters
    # False): their words then count against max_tags_chars (bot.controls.read_request).
    controls_in_tags: bool = False


def validate_request(
    *,
    tags: str | None,
    lyrics: str | None = None,
    duration: int | str | None = None,
    seed: int | str | None = None,
    takes: int | str | None = None,
    controls: Controls = NO_CONTROLS,
    describe: str | None = None,
    limits: Limits,
) -> GenerationRequest | Invalid:
    """Turn raw user input into a request, or into a friendly reason why not.

    Musical controls arrive already checked (:func:`bot.controls.parse_controls`)."""
    # Control characters (and any whitespace run) become one space.
    clean_tags = _one_line(tags)
    clean_describe = _one_line(describe)
    if not clean_tags and not clean_describe:
        return Invalid("Tell me the style first, e.g. `lo-fi, chill, rainy piano`.")
    if len(clean_describe) > limits.max_tags_chars:
        return Invalid(
            f"The description is {len(clean_describe)} characters long; please keep it to "
            f"{limits.max_tags_chars}."
        )
    if len(clean_tags) > limits.max_tags_chars:
        return Invalid(
            f"The style tags are {len(clean_tags)} characters long; please keep them to "
            f"{limits.max_tags_chars}."
        )
    clean_lyrics = _clean_lyrics(lyrics or "")
    if len(clean_lyrics) > limits.max_lyrics_chars:
        return Invalid(
            f"The lyrics are {len(clean_lyrics)} characters long; the model takes at most "
            f"{limits.max_lyrics_chars}."
        )
    parsed_duration = _seconds(duration, default=min(DEFAULT_DURATION, limits.max_duration))
    if parsed_duration is None:
        return Invalid(
            f"“{_quoted(duration)}” isn't a length I can use: write seconds like `90` or "
            "minutes like `1:30`."
        )
    if not limits.min_duration <= parsed_duration <= limits.max_duration:
        nearest = min(max(parsed_duration, limits.min_duration), limits.max_duration)
        return Invalid(
            f"{parsed_duration} s is too {'long' if parsed_duration > nearest else 'short'}: "
            f"songs here are {limits.min_duration} to {limits.max_duration} s long. "
            f"Try `{nearest}`."
        )
    parsed_seed = _whole_number(seed, default=-1)
    if parsed_seed is None or not (parsed_seed == -1 or 0 <= parsed_seed <= SEED_MAX):
        return Invalid(
            f"“{_quoted(seed)}” isn't a seed: use a whole number from 0 to {SEED_MAX}, "
            "or -1 (or nothing) for a random one."
        )
    parsed_takes = _whole_number(takes, default=1)
    if parsed_takes is None or not 1 <= parsed_takes <= limits.max_takes:
        if limits.max_takes == 1:
            return Invalid("This bot makes one take per request; leave out `takes`.")
        return Invalid(
            f"“{_quoted(takes)}” isn't a number of takes I can make: ask for 1 to "
            f"{limits.max_takes}, e.g. `takes=2`."
        )
    return GenerationRequest(
        tags=clean_tags,
        lyrics=clean_lyrics,
        duration=parsed_duration,
        seed=parsed_seed,
        explicit_duration=not _is_blank(duration),
        takes=parsed_takes,
        controls=controls,
        describe=clean_describe,
    )


def _one_line(text: str | None) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text or "").split())


def _quoted(value: int | str | None, limit: int = 24) -> str:
    """What the user typed, short enough to repeat back in one line."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_blank(value: int | str | None) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _clean_lyrics(text: str) -> str:
    # Keep line structure ([Verse], [Chorus] markers live on their own lines) but drop
    # control characters that no model or chat renders.
    lines = [
        "".join(ch for ch in line if ch == "\t" or ch.isprintable()).rstrip()
        for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ]
    return "\n".join(lines).strip()


def _seconds(value: int | str | None, *, default: int) -> int | None:
    """A duration: ``90``, ``90s`` or ``1:30`` (both platforms take all three)."""
    if isinstance(value, str) and (clock := _CLOCK.fullmatch(value.strip())):
        return int(clock[1]) * 60 + int(clock[2])
    return _whole_number(value, default=default)


def _whole_number(value: int | str | None, *, default: int) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = value.strip().lower().removesuffix("s").strip()
    if not text:
        return default
    # One optional minus and ASCII digits only: int() would also take "+9", "٩٠" or
    # "1_000", and str.isdigit() lets "--90" through to an int() that raises.
    if _WHOLE_NUMBER.fullmatch(text):
        return int(text)
    return None


@dataclass(frozen=True)
class Destination:
    """Where a job's events and audio go.

    ``platform`` is ``"telegram"``, ``"discord"`` or ``"cli"``. ``chat_id`` and
    ``user_id`` are the platform's own ids, as strings. ``context`` belongs to the adapter
    (status message id, interaction token and its expiry, guild name, ...): the core
    stores it and hands it back, never reads it.
    """

    platform: str
    chat_id: str
    user_id: str
    context: dict[str, Any] = field(default_factory=dict)
    # The community whose rules apply: the Discord guild; for Telegram, the chat itself.
    scope_id: str | None = None

    @property
    def scope(self) -> str:
        return self.scope_id or self.chat_id


UNLIMITED = -1  # a quota of -1 seconds means no limit
EVERYWHERE = "*"  # a user override that applies in every scope


@dataclass(frozen=True)
class ChatRules:
    """A guild's or chat's own settings; None means "use the bot-wide setting"."""

    quota_seconds_per_day: int | None = None
    role_quotas: dict[str, int] = field(default_factory=dict)
    max_active_jobs: int | None = None
    default_duration: int | None = None
    max_duration: int | None = None
    allowed_channels: tuple[str, ...] = ()
    others_may_press: bool = False
    allow_nsfw: bool = False
    blocked_words: tuple[str, ...] = ()
    monthly_budget_usd: float | None = None
    # Whether members may edit audio they send (/remix, /extend on an upload); None: the
    # default, on in direct messages and off in groups (bot/edits.py).
    own_audio: bool | None = None
    # Who pays for a jam's takes (bot/jams/render.py): "host" (their daily seconds) or
    # "chat" (the chat's monthly budget only; allowed where the chat has one).
    jam_pays: str = "host"
    # The operator's (`acejam admin`), not the chat's: how far past QUOTA_SECONDS_PER_DAY and
    # MAX_ACTIVE_JOBS_PER_CHAT this chat may go. The chat's own values above stay within them.
    operator_quota_seconds_per_day: int | None = None
    operator_max_active_jobs: int | None = None


@dataclass(frozen=True)
class UserRules:
    scope_id: str  # EVERYWHERE or one scope
    quota_seconds_per_day: int | None = None  # the scope's admins' choice (within the ceiling)
    blocked: bool = False
    note: str | None = None
    operator_quota_seconds_per_day: int | None = None  # the operator's grant: a new ceiling


class TakeState(enum.StrEnum):
    """Where one take of a job with several is (the job's own state says where the job is)."""

    PENDING = "pending"  # not submitted yet (WaveSpeed: its own submit is still to come)
    SUBMITTED = "submitted"  # upstream has it: its remote id (or place in a batch) is stored
    READY = "ready"  # its audio is on our disk
    FAILED = "failed"  # it alone failed: its quota share goes back, the other takes go on


@dataclass(frozen=True)
class Take:
    """One take of a job that asked for several (``request.takes > 1``)."""

    number: int  # 1-based, the order the chat shows them in
    state: TakeState = TakeState.PENDING
    seed: int | None = None
    audio_path: str | None = None
    audio_format: str | None = None
    audio_duration: float | None = None
    error_code: str | None = None
    # Its own upstream task where each take is a submit of its own (WaveSpeed); None where
    # one task makes every take (ACE-Step's batch: the job's remote id).
    remote_id: str | None = None
    # A failed take the upstream made (and billed) all the same: its cost stays.
    billed: bool = False


@dataclass(frozen=True)
class Job:
    id: JobId
    user_id: UserId
    request: GenerationRequest
    destination: Destination
    state: JobState
    backend: str
    created_at: datetime
    updated_at: datetime
    remote_id: str | None = None
    seed_used: int | None = None
    attempts: int = 0
    progress: float | None = None
    progress_text: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    audio_path: str | None = None
    audio_format: str | None = None
    audio_duration: float | None = None
    delivered_message_id: str | None = None
    parent_id: JobId | None = None
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    nsfw: bool = False
    cost_usd: float | None = None
    gpu_seconds: float | None = None
    # One per take when the request asked for several; () for a one-take job, which keeps
    # using the job's own fields above.
    takes: tuple[Take, ...] = ()
    # The take its owner kept (▶ Keep N); None: not chosen, take 1 counts.
    kept_take: int | None = None
