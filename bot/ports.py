"""The small Protocols the core talks through. Backends and adapters implement them."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bot.domain import GenerationRequest, Job, Task


# ---------------------------------------------------------------- backends
@dataclass(frozen=True)
class RemoteTask:
    """What a backend's submit answers: the upstream id, and the seed if already known."""

    remote_id: str
    seed_used: int | None = None
    queue_position: int | None = None


class RemoteState(enum.StrEnum):
    PENDING = "pending"  # accepted, waiting upstream
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # The upstream no longer knows the task (an ACE-Step server of a pool restarted or died
    # with it): where ``Backend.resubmit_safe``, the worker submits the job again.
    LOST = "lost"


@dataclass(frozen=True)
class WrittenSong:
    """What a backend's language model wrote for a song from one sentence (or polished):
    the tags, lyrics and musical values it chose. None where it did not say."""

    tags: str
    lyrics: str
    bpm: int | None = None
    key_scale: str | None = None  # as the model wrote it, e.g. "C major"
    time_signature: int | None = None  # beats per bar
    duration: float | None = None  # seconds
    vocal_language: str | None = None


@dataclass(frozen=True)
class RemoteOutput:
    """One finished take upstream: where to fetch it, its seed, and what the model wrote."""

    url: str
    seed: int | None = None
    written: WrittenSong | None = None


@dataclass(frozen=True)
class RemoteStatus:
    state: RemoteState
    progress: float | None = None  # 0..1 where the backend says
    stage: str | None = None  # short human text, e.g. "diffusion"
    # Set when SUCCEEDED: the first take's URL (what one-take code reads); ``outputs`` holds
    # every take. Give either: each is filled from the other.
    output_url: str | None = None
    seed_used: int | None = None
    error_code: str | None = None  # e.g. "1200" (moderation) or "failed"
    error_message: str | None = None  # upstream's reason (never shown raw to users)
    nsfw: bool = False
    queue_position: int | None = None
    outputs: tuple[RemoteOutput, ...] = ()

    def __post_init__(self) -> None:
        # Frozen: the two views of the first take are made to agree once, here.
        if not self.outputs and self.output_url is not None:
            first = RemoteOutput(self.output_url, self.seed_used)
            object.__setattr__(self, "outputs", (first,))
        elif self.outputs and self.output_url is None:
            object.__setattr__(self, "output_url", self.outputs[0].url)
        if self.outputs and self.seed_used is None:
            object.__setattr__(self, "seed_used", self.outputs[0].seed)


@dataclass(frozen=True)
class DownloadedAudio:
    path: Path
    format: str  # "mp3" | "wav" | "flac" | "ogg" | "m4a", from the bytes
    size: int


@dataclass(frozen=True)
class Capabilities:
    """What a request may ask of a backend beyond tags, lyrics, duration and seed. Adapters
    offer only these, and the core decides by them, never by a backend's name."""

    # Takes one submit can make (ACE-Step's batch_size); 1: each take is a submit of its own.
    takes_per_task: int = 1
    # True: BPM, key, time signature and vocal language are request parameters; False: the
    # model reads them from its tags (bot.controls.as_tags).
    controls_as_parameters: bool = False
    # A language model that writes tags, lyrics and the rest from one sentence (/describe).
    describes: bool = False
    # The edits a request may ask for (bot.domain.Task, never SONG): ACE-Step's
    # supported_task_types, WaveSpeed's edit models. Empty: none offered.
    edits: frozenset[Task] = frozenset()
    # The model each edit runs on, where it is not the song model (named on the card).
    edit_models: Mapping[Task, str] = field(default_factory=dict)


class Backend(Protocol):
    """One generation service. Implementations turn HTTP into these values and
    :mod:`bot.errors` exceptions; the worker never sees a status code."""

    name: str  # "wavespeed" | "acestep"
    # What one submit may carry: requests are validated against these before they are
    # queued, so nothing waits in line only to be refused at submit.
    min_duration: int
    max_duration: int  # seconds of audio
    max_tags_chars: int
    max_lyrics_chars: int
    max_concurrency: int  # upstream jobs in flight at once
    min_poll_interval: float  # seconds between two polls of one job
    resubmit_safe: bool  # may a job whose submit outcome is unknown be sent again?
    polls_in_batches: bool  # does one poll call cover many jobs as cheaply as one?
    # Is a job the upstream failed (never made) still paid for? If not, it costs nothing
    # (WaveSpeed refunds failed generations; a self-hosted engine bills nothing).
    bills_failed_jobs: bool
    # Is a job's run time our own GPU's time, counted in usage reports (self-hosted)?
    accounts_gpu_seconds: bool
    # RemoteStatus.error_code values that mean the upstream's moderation refused the song.
    moderation_error_codes: frozenset[str]

    @property
    def capabilities(self) -> Capabilities:
        """What requests may ask for; it may change at run time (an ACE-Step server's
        language model is known once it has answered)."""
        ...

    async def refresh_capabilities(self) -> Capabilities:
        """Ask the upstream now what it can do (the shell calls it at start, so the first
        requests see a known answer), and answer ``capabilities``."""
        ...

    @property
    def uses_webhook(self) -> bool:
        """Are finished jobs pushed to us (bot/webhooks.py)? Then polls are a slow safety
        net. It may change at run time (WaveSpeed: once the signing secret is known)."""
        ...

    def needs_preparing(self, request: GenerationRequest) -> bool:
        """Is there unbilled work to do before ``submit`` (WaveSpeed: upload an edit's source)?
        The worker records what ``prepare`` did before it submits, so a job that crashed while
        this still says True sent nothing billed and is queued again (docs/jobs.md)."""
        ...

    async def prepare(self, request: GenerationRequest) -> GenerationRequest:
        """Do that work and answer the request to submit, carrying what was done (e.g.
        ``Edit.uploaded_url``). Never billed: it raises TransientBackendError (try later) or
        PermanentBackendError, never SubmitUncertain."""
        ...

    async def submit(self, request: GenerationRequest) -> RemoteTask: ...

    async def poll(self, remote_ids: Sequence[str]) -> Mapping[str, RemoteStatus]:
        """Status of each id. Ids missing from the answer are treated as transient errors."""
        ...

    async def download(self, output_url: str, dest: Path, *, max_bytes: int) -> DownloadedAudio:
        """Stream the output to ``dest`` (host allowlist, size cap, format sniffed)."""
        ...

    async def expected_seconds(self, request: GenerationRequest) -> float | None:
        """The backend's own estimate of the run time, if it offers one."""
        ...


class WebhookSource(Protocol):
    """What the webhook receiver (bot/webhooks.py) needs of a backend that pushes news."""

    async def webhook_secret(self) -> str:
        """The key deliveries are signed with; a BackendError while it can't be had."""
        ...

    def parse_webhook(self, body: Mapping[str, Any]) -> tuple[str, RemoteStatus] | None:
        """(remote id, status) from a delivery's body; None if it names no job."""
        ...


# ---------------------------------------------------------------- delivery
class EventKind(enum.StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class JobEvent:
    kind: EventKind
    job: Job
    position: int | None = None  # QUEUED: 1 = next
    progress: float | None = None  # PROGRESS: 0..1
    eta: datetime | None = None
    message: str | None = None  # FAILED/CANCELLED: the sentence for the user


@dataclass(frozen=True)
class TrackFile:
    """One finished take on our disk, as a delivery posts it (with its seed on its label)."""

    take: int  # 1-based; 1 for a one-take job
    seed: int | None
    path: Path


@dataclass(frozen=True)
class DeliveryReceipt:
    """Proof the chat has the track: the platform's message id."""

    message_id: str


class Delivery(Protocol):
    """One chat platform, as the core sees it. Implemented in ``adapters/``."""

    platform: str

    async def on_event(self, event: JobEvent) -> None:
        """Show progress. Best effort: errors are logged, never fatal to the job."""
        ...

    async def deliver(self, job: Job, tracks: Sequence[TrackFile]) -> DeliveryReceipt:
        """Post the finished takes (one for most songs) in one message. Raise to have the
        worker try again later. Adapters do it through :class:`bot.delivery.DeliveryPipeline`,
        posting what it fits."""
        ...


# ---------------------------------------------------------------- other processes
class Nudge(enum.StrEnum):
    """What one process tells the others the moment it happens (``acejam run --role``
    beside other roles on one PostgreSQL). A nudge is only a hint to look now: the database
    holds what changed, and every listener's timers find the same change later when a
    nudge is lost (docs/jobs.md, "Across processes")."""

    # Key: a backend. A job was queued, or one in flight handed back: claim, adopt.
    WORK = "work"
    # Key: a platform. A job is ready to deliver (succeeded, or handed back): adopt it.
    DELIVER = "deliver"
    # Key: a platform. A job event for one of its chats: relay it (the payload is a
    # progress report, or empty for "read the event feed now").
    EVENT = "event"


class Nudges(Protocol):
    """Nudges between the processes sharing one database. Implemented in ``storage/``
    (PostgreSQL's LISTEN/NOTIFY); a process alone on its database has nothing to tell
    (:class:`bot.relay.NoNudges`)."""

    def send(self, nudge: Nudge, key: str, payload: str = "") -> None:
        """Tell every process listening for ``(nudge, key)``, this one included, once what
        it is about is committed. Returns at once; best effort (may be lost)."""
        ...

    def on(self, nudge: Nudge, key: str, hear: Callable[[str], None]) -> None:
        """Call ``hear(payload)`` for each ``(nudge, key)`` told from now on, and
        ``hear("")`` when listening starts again after a break, since what was told
        meanwhile is lost. ``hear`` must be quick and must not raise."""
        ...
