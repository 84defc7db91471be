"""Jams as the core hands them to the board (bot.jams.model values), with real audio files,
for the route tests; the browser tests build theirs through the real service instead."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.domain import JobId, JobState
from bot.jams.model import Contribution, Jam, JamState, JamTake, Part, Round
from tests.fakes.audio import make_audio

TOKEN = "k3yQ9x-Board_Token-0123456789abcdEF"
START = datetime(2026, 12, 5, 13, 0, tzinfo=UTC)


def contribution(
    number: int, part: Part, text: str, name: str | None, round: int = 1
) -> Contribution:
    return Contribution(
        number=number,
        round=round,
        part=part,
        text=text,
        author_id=f"user-{name or number}",
        author_name=name,
        removed=False,
        at=START + timedelta(minutes=number),
    )


def take(audio_dir: Path, round: int, number: int, *, votes: int = 0, made: bool = True) -> JamTake:
    path = audio_dir / f"r{round}t{number}.mp3"
    if made:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_audio(4.0, "mp3"))
    return JamTake(
        round=round,
        take=number,
        job_id=JobId(100 * round + number),
        state=JobState.DELIVERED if made else JobState.RUNNING,
        seed=4200 + number if made else None,
        audio_path=str(path) if made else None,
        audio_format="mp3" if made else None,
        duration=4.0 if made else None,
        votes=votes,
    )


def jam(
    audio_dir: Path,
    *,
    theme: str = "rainy city lo-fi",
    state: JamState = JamState.VOTING,
    lines: tuple[tuple[str, str | None], ...] = (
        ("[Verse] neon puddles hum along", "Ada"),
        ("we walk where the streetlights sing", "Bo"),
    ),
    votes: tuple[int, ...] = (2, 3),
    winner: int | None = None,
    token: str | None = TOKEN,
) -> Jam:
    """A jam in round 1 with two tags, ``lines``, and a made take per entry of ``votes``."""
    contributions = (
        contribution(1, Part.TAG, "dreamy synths", "Ada"),
        contribution(2, Part.TAG, "vinyl crackle", "Cy"),
        *(contribution(3 + i, Part.LINE, text, name) for i, (text, name) in enumerate(lines)),
    )
    takes = tuple(take(audio_dir, 1, n + 1, votes=v) for n, v in enumerate(votes))
    current = Round(
        number=1,
        state=state,
        collect_ends_at=START + timedelta(minutes=10),
        vote_ends_at=START + timedelta(minutes=30) if state != JamState.COLLECTING else None,
        winner_take=winner,
        base_job_id=None,
        extended=False,
        takes=takes if state != JamState.COLLECTING else (),
        votes_cast=sum(votes) if state != JamState.COLLECTING else 0,
    )
    return Jam(
        id=7,
        platform="discord",
        chat_id="thread-1",
        origin_id="channel-1",
        scope_id="guild-1",
        host_id="user-Ada",
        host_name="Ada",
        theme=theme,
        takes=len(votes),
        collect_minutes=10,
        vote_minutes=20,
        state=state,
        round=1,
        token=token,
        context={},
        created_at=START,
        contributions=contributions,
        rounds=(current,),
    )


def two_rounds(audio_dir: Path, *, vote_ends_at: datetime = START + timedelta(minutes=55)) -> Jam:
    """Round 2 voting on an extend of round 1's winner (take 1), round 1 closed below."""
    first = jam(audio_dir, state=JamState.CLOSED, votes=(4, 2, 1), winner=1)
    words = (
        contribution(5, Part.TAG, "warm bass", "Dee", round=2),
        contribution(6, Part.LINE, "[Chorus] hold the night, don't let it go", "Cy", 2),
        contribution(7, Part.LINE, "every window hums our song", "Ada", 2),
    )
    takes = tuple(take(audio_dir, 2, n) for n in (1, 2, 3))
    second = Round(
        number=2,
        state=JamState.VOTING,
        collect_ends_at=START + timedelta(minutes=40),
        vote_ends_at=vote_ends_at,
        winner_take=None,
        base_job_id=first.current.takes[0].job_id,
        extended=True,
        takes=takes,
        votes_cast=5,
    )
    return dataclasses.replace(
        first,
        round=2,
        state=JamState.VOTING,
        contributions=first.contributions + words,
        rounds=(*first.rounds, second),
    )
