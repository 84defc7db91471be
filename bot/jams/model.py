"""A jam's values and its pure rules (docs/jams.md): what a jam is, how its contributions
become one request, who wins a round, and what is due when.

Everything here is a frozen value or a function of values; nothing does I/O. The store
(:class:`bot.stores.JamStore`) hands these back, the service and the clock decide with the
functions below, the adapters and the board render them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain import JobId, JobState

MAX_MINUTES = 1440  # collecting and voting last at most a day
DEFAULT_TAKES = 3
DEFAULT_COLLECT_MINUTES = 10
DEFAULT_VOTE_MINUTES = 10
EXTEND_SECONDS = 30  # round 2+: how much longer each take makes the winner
TAG_SEPARATOR = ", "


class JamState(enum.StrEnum):
    """Where a jam's current round is (and, as ``ended``, the jam itself)."""

    COLLECTING = "collecting"  # members add tags and lines
    RENDERING = "rendering"  # its takes are being made; votes for delivered takes count
    VOTING = "voting"  # every take ended; votes until vote_ends_at or /jam close
    CLOSED = "closed"  # this round has a winner; /jam next may follow
    ENDED = "ended"  # superseded by a new /jam start in the place, or nothing left to do

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATES


OPEN_STATES = frozenset({JamState.COLLECTING, JamState.RENDERING, JamState.VOTING})
# Votes are taken while takes arrive and while voting is open.
VOTABLE_STATES = frozenset({JamState.RENDERING, JamState.VOTING})


class Part(enum.StrEnum):
    TAG = "tag"  # style words: joined with ", " after the theme
    LINE = "line"  # a lyric line (or several; [Verse] markers kept)


class JamNewsKind(enum.StrEnum):
    CHANGED = "changed"  # a contribution added or removed: refresh the jam message
    RENDERING = "rendering"
    VOTING = "voting"  # every take is in; voting open until the round's vote_ends_at
    CLOSED = "closed"  # a winner: the news' message is the announcement
    RENDER_FAILED = "render_failed"  # no take succeeded: back to collecting
    NEXT_ROUND = "next_round"
    ENDED = "ended"


@dataclass(frozen=True)
class Contribution:
    number: int  # per jam, 1-based: what /jam remove <n> names
    round: int
    part: Part
    text: str
    author_id: str
    author_name: str | None
    removed: bool
    at: datetime


@dataclass(frozen=True)
class JamTake:
    round: int
    take: int  # 1-based
    job_id: JobId
    state: JobState  # its job's
    seed: int | None
    audio_path: str | None
    audio_format: str | None
    duration: float | None
    votes: int  # the live count (chats show counts once the round is closed)

    @property
    def ended(self) -> bool:
        """Its job is over: posted in the chat, failed or cancelled."""
        return self.state.is_final

    @property
    def posted(self) -> bool:  # in the chat with its vote button
        return self.state == JobState.DELIVERED

    @property
    def made(self) -> bool:
        return self.state in (JobState.SUCCEEDED, JobState.DELIVERED)


@dataclass(frozen=True)
class JamTakeRef:
    jam_id: int
    round: int
    take: int


@dataclass(frozen=True)
class Round:
    number: int
    state: JamState
    collect_ends_at: datetime | None
    vote_ends_at: datetime | None
    winner_take: int | None
    base_job_id: JobId | None  # the previous round's winner this round builds on
    extended: bool  # the base is extended (else a new song from both rounds' words)
    takes: tuple[JamTake, ...] = ()
    votes_cast: int = 0
    # Which render of this round the takes are (a render that made nothing may be tried
    # again: its takes' jobs are new ones, jam:<id>:<round>:<take>:<attempt>).
    attempt: int = 1

    def take(self, number: int) -> JamTake | None:
        return next((t for t in self.takes if t.take == number), None)


@dataclass(frozen=True)
class Jam:
    id: int
    platform: str
    chat_id: str  # where it lives: the Discord thread, the Telegram chat (or "chat:topic")
    origin_id: str  # where /jam start was typed (Discord's parent channel; = chat_id elsewhere)
    scope_id: str  # the guild or chat whose rules and admins apply
    host_id: str
    host_name: str | None
    theme: str
    takes: int
    collect_minutes: int
    vote_minutes: int
    state: JamState  # the current round's, or ENDED
    round: int
    token: str | None  # the board's; None once revoked (a new one on /jam board)
    context: dict[str, Any]  # the adapter's (jam message id, topic, ...; "job": see docs)
    created_at: datetime
    contributions: tuple[Contribution, ...] = ()  # every round's, in order
    rounds: tuple[Round, ...] = ()

    @property
    def current(self) -> Round:
        return next(r for r in self.rounds if r.number == self.round)

    def round_of(self, number: int) -> Round | None:
        return next((r for r in self.rounds if r.number == number), None)

    @property
    def contributors(self) -> tuple[tuple[str, str | None], ...]:
        """(id, name) of everyone whose contribution stands, first contribution first."""
        seen: dict[str, str | None] = {}
        for c in self.contributions:
            if not c.removed and c.author_id not in seen:
                seen[c.author_id] = c.author_name
        return tuple(seen.items())

    def standing(self, round: int) -> tuple[Contribution, ...]:
        return tuple(c for c in self.contributions if c.round == round and not c.removed)

    def tags_of(self, round: int) -> tuple[Contribution, ...]:
        return tuple(c for c in self.standing(round) if c.part == Part.TAG)

    def lines_of(self, round: int) -> tuple[Contribution, ...]:
        return tuple(c for c in self.standing(round) if c.part == Part.LINE)


@dataclass(frozen=True)
class Words:
    """What a round's request is made of."""

    tags: str
    lyrics: str


def combine(theme: str, contributions: Iterable[Contribution], round: int) -> tuple[str, str]:
    """One round's words: the theme then each tag, joined ", "; the lines joined by new
    lines, markers kept. Removed contributions and other rounds' are left out."""
    tags = [theme.strip()] if theme.strip() else []
    lines: list[str] = []
    for c in contributions:
        if c.round != round or c.removed:
            continue
        (tags if c.part == Part.TAG else lines).append(c.text.strip())
    return TAG_SEPARATOR.join(t for t in tags if t), "\n".join(lines)


def words_for(jam: Jam, round: int, *, extended: bool) -> Words:
    """The request of ``round``: round 1, or an extend (``extended``), is that round's own
    words (an extend without new tags keeps the nearest earlier round's that had some);
    otherwise a new song from every round's words so far, the earlier first."""
    if round <= 1 or extended:
        lyrics = combine(jam.theme, jam.contributions, round)[1]
        with_tags = next(
            (n for n in range(round, 0, -1) if jam.tags_of(n)), round
        )  # the theme alone where no round had tags
        return Words(combine(jam.theme, jam.contributions, with_tags)[0], lyrics)
    tags = [jam.theme.strip()] if jam.theme.strip() else []
    lines: list[str] = []
    for number in range(1, round + 1):
        tags.extend(c.text.strip() for c in jam.tags_of(number))
        lines.extend(c.text.strip() for c in jam.lines_of(number))
    return Words(TAG_SEPARATOR.join(tags), "\n".join(lines))


@dataclass(frozen=True)
class Room:
    tags_left: int
    lyrics_left: int

    @property
    def fits(self) -> bool:
        return self.tags_left >= 0 and self.lyrics_left >= 0


def room(words: Words, *, max_tags: int, max_lyrics: int) -> Room:
    """How many characters are left for tags and lyrics (negative: over the limit)."""
    return Room(max_tags - len(words.tags), max_lyrics - len(words.lyrics))


def winner(round: Round) -> int | None:
    """The take with most votes; a tie goes to the earlier take; with no votes, the earliest
    take that was made. None when no take was made."""
    made = [t for t in round.takes if t.made]
    if not made:
        return None
    best = max(made, key=lambda t: (t.votes, -t.take))
    return best.take


class Due(enum.StrEnum):
    """What the jam clock must do for a jam now."""

    RENDER = "render"  # collecting time is up
    SUBMIT = "submit"  # rendering, but fewer takes recorded than asked (a crash between)
    OPEN_VOTING = "open_voting"  # every take ended, one at least made
    RENDER_FAILED = "render_failed"  # every take ended, none made
    CLOSE = "close"  # voting time is up


def due(jam: Jam, now: datetime) -> Due | None:
    if not jam.state.is_open or not jam.rounds:
        return None
    current = jam.current
    if current.state == JamState.COLLECTING:
        ends = current.collect_ends_at
        return Due.RENDER if ends is not None and ends <= now else None
    if current.state == JamState.RENDERING:
        if len(current.takes) < jam.takes:
            return Due.SUBMIT
        if all(t.ended for t in current.takes):
            return Due.OPEN_VOTING if any(t.made for t in current.takes) else Due.RENDER_FAILED
        return None
    ends = current.vote_ends_at
    return Due.CLOSE if ends is not None and ends <= now else None


def next_deadline(jam: Jam) -> datetime | None:
    """When the clock must look at this jam next (None: only when a take ends)."""
    if not jam.state.is_open or not jam.rounds:
        return None
    current = jam.current
    if current.state == JamState.COLLECTING:
        return current.collect_ends_at
    if current.state == JamState.VOTING:
        return current.vote_ends_at
    return None


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class JamChanged:
    """The general answer: the jam as it is now, and the sentence to say."""

    jam: Jam
    message: str


@dataclass(frozen=True)
class Added:
    jam: Jam
    contribution: Contribution
    tags_left: int
    lyrics_left: int
    message: str


@dataclass(frozen=True)
class Voted:
    jam: Jam
    take: int
    changed: bool  # False: the same vote pressed again
    message: str


@dataclass(frozen=True)
class MemberStats:
    user_id: str
    name: str | None
    contributions: int
    wins: int  # rounds with a winner that they contributed to


@dataclass(frozen=True)
class JamStats:
    rows: tuple[MemberStats, ...] = ()  # most wins first, then most contributions
    jams: int = 0


@dataclass(frozen=True)
class JamNews:
    kind: JamNewsKind
    jam: Jam
    message: str


@dataclass(frozen=True)
class NewJam:
    """What the store needs to open a jam (its first round collecting)."""

    platform: str
    chat_id: str
    scope_id: str
    host_id: str
    host_name: str | None
    theme: str
    takes: int
    collect_minutes: int
    vote_minutes: int
    token: str
    context: dict[str, Any] = field(default_factory=dict)
