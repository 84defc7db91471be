"""Fair ordering of the queue: round-robin across users, then across chats.

The order is fixed when a song is queued (start-time fair queuing), so the database keeps it
in an index and never computes it over the whole queue:

* a new song's round is the round after the user's latest song still queued or in flight,
  but never earlier than the round being served now (:func:`fair_round`): one user's ten
  songs never starve another user's one, and a newcomer joins the current round;
* its served mark is when the user was last served, as they queue it (never: first): within a
  round, users served longest ago go first, so fast songs don't hand one user every turn;
* its turn is how many songs of the same chat are already queued in that round: a busy group
  doesn't push a quiet DM back;
* songs are served in (round, served mark, turn, arrival) order. A song handed back to the
  queue (a refused submit, a crash) keeps its place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class QueuedRef:
    job_id: int
    user_id: int
    chat_key: str  # platform + chat id


def fair_round(latest: int | None, serving: int) -> int:
    """The round of a user's new song: after ``latest`` (their latest song queued or in
    flight, None without one), never before ``serving`` (the round being served now)."""
    return serving if latest is None else max(latest + 1, serving)


def fair_order(
    queued: Iterable[QueuedRef],
    in_flight_by_user: Mapping[int, int] | None = None,
    last_served: Mapping[int, datetime] | None = None,
) -> list[QueuedRef]:
    """The order of songs queued one after the other (``queued`` in arrival order) while
    round 0 is served, a user's songs in flight holding that user's first rounds, and users
    last served at ``last_served`` (never when missing)."""
    in_flight = in_flight_by_user or {}
    served = last_served or {}
    latest: dict[int, int] = {user: n - 1 for user, n in in_flight.items() if n > 0}
    turns: Counter[tuple[int, str]] = Counter()
    keyed: list[tuple[int, float, int, int, QueuedRef]] = []
    for position, ref in enumerate(queued):
        round_ = fair_round(latest.get(ref.user_id), 0)
        latest[ref.user_id] = round_
        mark = _served_key(served.get(ref.user_id))
        keyed.append((round_, mark, turns[round_, ref.chat_key], position, ref))
        turns[round_, ref.chat_key] += 1
    keyed.sort(key=lambda item: item[:4])
    return [ref for *_, ref in keyed]


def _served_key(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else float("-inf")
