"""What the jam board shows of a jam, as plain data: the page (bot/jamboard/page.py) renders
it, ``/jam/<token>.json`` is it. Pure: whether a take's file is still on disk is asked
through ``has_audio``, so the page never offers a player for audio the retention sweep took.

Only names reach the page, never a platform's user ids: the board is public."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.jams.model import OPEN_STATES, Contribution, Jam, JamState, JamTake, Round, words_for

STATE_TEXT = {
    JamState.COLLECTING: "Collecting tags and lines",
    JamState.RENDERING: "Making the takes",
    JamState.VOTING: "Voting",
    JamState.CLOSED: "Round closed",
    JamState.ENDED: "Jam over",
}
# What a running round is counting down to.
ENDS_WHAT = {JamState.COLLECTING: "collecting", JamState.VOTING: "voting"}
AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
}
SOMEONE = "a member"  # a contributor the platform gave no name for

HasAudio = Callable[[JamTake], bool]


def audio_type(take: JamTake) -> str:
    return AUDIO_TYPES.get((take.audio_format or "").lower(), "application/octet-stream")


def audio_name(jam: Jam, take: JamTake) -> str:
    """The download's file name: the theme in plain letters, the round and the take."""
    slug = re.sub(r"[^a-z0-9]+", "-", jam.theme.lower()).strip("-")[:40].strip("-") or "jam"
    extension = (take.audio_format or "mp3").lower()
    if not extension.isalnum():
        extension = "mp3"
    return f"{slug}-round{take.round}-take{take.take}.{extension}"


def audio_path(token: str, take: JamTake) -> str:
    """The take's address below ``/jam/``."""
    return f"{token}/audio/{take.round}/{take.take}"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _author(c: Contribution) -> str:
    return (c.author_name or "").strip() or SOMEONE


def _take(jam: Jam, token: str, round: Round, take: JamTake, has_audio: HasAudio) -> dict[str, Any]:
    playable = take.made and take.audio_path is not None and has_audio(take)
    if take.made:
        state = "made" if playable else "gone"
    elif take.ended:
        state = "failed"
    else:
        state = "making"
    counted = round.state not in OPEN_STATES  # counts are shown once voting closed
    return {
        "take": take.take,
        "state": state,
        "seed": take.seed,
        "duration": take.duration,
        "audio": audio_path(token, take) if playable else None,
        "download_name": audio_name(jam, take) if playable else None,
        "type": audio_type(take) if playable else None,
        "votes": take.votes if counted else None,
        "winner": round.winner_take == take.take,
    }


def _round(jam: Jam, token: str, round: Round, has_audio: HasAudio) -> dict[str, Any]:
    words = words_for(jam, round.number, extended=round.extended)
    ends = round.collect_ends_at if round.state == JamState.COLLECTING else None
    if round.state == JamState.VOTING:
        ends = round.vote_ends_at
    return {
        "number": round.number,
        "state": round.state.value,
        "state_text": STATE_TEXT[round.state],
        "ends_at": _iso(ends),
        "ends_what": ENDS_WHAT.get(round.state),
        "builds_on_winner": round.base_job_id is not None,
        "extended": round.extended,
        "tags": words.tags,
        "lyrics": words.lyrics,
        "contributions": [
            {"number": c.number, "part": c.part.value, "text": c.text, "author": _author(c)}
            for c in jam.standing(round.number)
        ],
        "takes": [
            _take(jam, token, round, take, has_audio)
            for take in sorted(round.takes, key=lambda t: t.take)
        ],
        "takes_asked": jam.takes,
        "votes_cast": round.votes_cast,
        "winner_take": round.winner_take,
    }


def board_data(jam: Jam, token: str, has_audio: HasAudio) -> dict[str, Any]:
    """Everything the board shows, rounds newest first (the current one, then earlier)."""
    rounds = sorted(jam.rounds, key=lambda r: r.number, reverse=True)
    return {
        "theme": jam.theme,
        "state": jam.state.value,
        "state_text": STATE_TEXT[jam.state],
        "round": jam.round,
        "host": (jam.host_name or "").strip() or SOMEONE,
        "platform": jam.platform,
        "started_at": _iso(jam.created_at),
        "contributors": [(name or "").strip() or SOMEONE for _id, name in jam.contributors],
        "rounds": [_round(jam, token, r, has_audio) for r in rounds],
    }
