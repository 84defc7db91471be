"""What jams say, the same on every platform (the adapters add their own formatting)."""

from __future__ import annotations

from datetime import datetime

from bot.jams.model import MAX_MINUTES, Contribution, Jam, JamState, Part, Round
from bot.messages import until

NO_JAM = "There's no jam here; start one with /jam start <theme>."
NOT_FOUND = "I can't find that jam any more."
BLOCKED_USER = "You can't join jams here right now; ask an admin if that's a mistake."
BLOCKED_WORD = "That uses a word that isn't allowed here."
EMPTY_THEME = "Give the jam a theme, e.g. `/jam start rainy city lo-fi`."
EMPTY_TEXT = "Add some words, e.g. `/jam tag dreamy synths` or `/jam line [Chorus] we rise`."
HOST_ONLY = "Only the jam's host or an admin can do that."
REMOVE_WHO = "Only its author, the jam's host or an admin can remove that."
BOARD_OFF = "The jam board isn't switched on for this bot (it needs a PUBLIC_URL)."
BOARD_REVOKED = "The old board link is switched off; /jam board makes a new one."
CHAT_PAYS_NO_BUDGET = (
    "This chat pays for jams (jam_pays=chat) but has no monthly budget; an admin can set "
    "one, or switch back with jam_pays=host."
)


def _who(name: str | None, user_id: str) -> str:
    return name or f"user {user_id}"


def state_word(state: JamState) -> str:
    return {
        JamState.COLLECTING: "collecting words",
        JamState.RENDERING: "making its takes",
        JamState.VOTING: "voting",
        JamState.CLOSED: "closed",
        JamState.ENDED: "over",
    }[state]


def open_here(jam: Jam) -> str:
    return (
        f"There's already a jam here (jam #{jam.id}, “{jam.theme}”, {state_word(jam.state)}); "
        "join in, or its host can /jam close it first."
    )


def bad_takes(most: int) -> str:
    return f"A jam makes 1 to {most} takes."


def bad_minutes(what: str) -> str:
    return f"The {what} time is 1 to {MAX_MINUTES} minutes."


def started(jam: Jam) -> str:
    return (
        f"🎶 Jam #{jam.id} is on: “{jam.theme}”. Add style words with /jam tag and lyric lines "
        f"with /jam line. In {jam.collect_minutes} min (or at /jam render by "
        f"{_who(jam.host_name, jam.host_id)}) it becomes {jam.takes} take(s) to vote on."
    )


def not_collecting(jam: Jam) -> str:
    return f"Jam #{jam.id} isn't taking words now: it is {state_word(jam.state)}."


def too_long(part: Part, length: int, most: int, left: int) -> str:
    what = "style tags" if part == Part.TAG else "lyrics"
    return (
        f"That doesn't fit: the jam's {what} would be {length} characters, and the music "
        f"engine takes {most}; {max(0, left)} are left."
    )


def added(c: Contribution, tags_left: int, lyrics_left: int) -> str:
    what = "Tag" if c.part == Part.TAG else "Line"
    return (
        f"{what} #{c.number} added by {_who(c.author_name, c.author_id)}. Room left: "
        f"{tags_left} characters of tags, {lyrics_left} of lyrics."
    )


def no_contribution(number: int) -> str:
    return f"This round has no contribution #{number} to remove."


def removed(number: int) -> str:
    return f"Contribution #{number} removed."


def rendering(jam: Jam) -> str:
    base = " on the last round's winner" if jam.round > 1 else ""
    return (
        f"🎛 Jam #{jam.id}, round {jam.round}: making {jam.takes} take(s){base}. "
        "Each arrives with a 🗳 vote button."
    )


def not_now(jam: Jam, action: str) -> str:
    return f"Jam #{jam.id} can't {action} now: it is {state_word(jam.state)}."


def render_failed(jam: Jam, reason: str | None = None) -> str:
    why = f" ({reason})" if reason else ""
    return (
        f"Jam #{jam.id}: none of the takes could be made{why}. The words are kept; "
        "/jam render tries again."
    )


def voting(jam: Jam, now: datetime) -> str:
    ends = jam.current.vote_ends_at
    left = f" for {until(ends, now)}" if ends is not None else ""
    return f"🗳 Jam #{jam.id}: every take is in. Voting is open{left}; one vote each."


def no_take(round: int, take: int) -> str:
    return f"Round {round} has no take {take} to vote for."


def vote_closed(jam: Jam) -> str:
    return f"Voting for that round of jam #{jam.id} is over."


def voted(take: int, changed: bool) -> str:
    return f"Your vote is for take {take}." if changed else f"You already vote for take {take}."


def winner(jam: Jam, round: Round) -> str:
    names = ", ".join(_who(name, user_id) for user_id, name in _credits(jam, round.number))
    counts = ", ".join(f"take {t.take}: {t.votes}" for t in round.takes if t.made)
    credit = f" Written by {names}." if names else ""
    return (
        f"🏆 Jam #{jam.id}, round {round.number}: take {round.winner_take} wins ({counts})."
        f"{credit} /jam next starts round {round.number + 1} on it."
    )


def _credits(jam: Jam, round: int) -> list[tuple[str, str | None]]:
    seen: dict[str, str | None] = {jam.host_id: jam.host_name}
    for c in jam.standing(round):
        seen.setdefault(c.author_id, c.author_name)
    return list(seen.items())


def next_round(jam: Jam) -> str:
    how = "extends" if jam.current.extended else "builds on"
    return (
        f"🎶 Jam #{jam.id}, round {jam.round}: it {how} round {jam.round - 1}'s winner. "
        f"Add new tags and lines; it renders in {jam.collect_minutes} min."
    )


def ended(jam: Jam) -> str:
    return f"Jam #{jam.id} (“{jam.theme}”) is over."


def board(url: str) -> str:
    return f"The jam board: {url}"
