"""Fair ordering of the queue: round-robin across users, then across chats.

Pure functions over small values, so the order can be tested with tables. A user's
``k``-th queued job is served in round ``k`` (plus the jobs that user already has in
flight), so one user's ten jobs never starve another user's one.
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


def fair_order(
    queued: Iterable[QueuedRef],
    in_flight_by_user: Mapping[int, int] | None = None,
    last_served: Mapping[int, datetime] | None = None,
) -> list[QueuedRef]:
    """Every queued job, in the order the workers should take them.

    ``queued`` must be in arrival order. Within a round, users served longest ago (or
    never) go first — so fast jobs don't hand one user every turn — and a chat that
    already has a job in the round waits behind chats that don't.
    """
    in_flight = in_flight_by_user or {}
    served = last_served or {}
    seen_per_user: Counter[int] = Counter()
    ranked: list[tuple[int, int, QueuedRef]] = []
    for position, ref in enumerate(queued):
        round_ = in_flight.get(ref.user_id, 0) + seen_per_user[ref.user_id]
        seen_per_user[ref.user_id] += 1
        ranked.append((round_, position, ref))
    ranked.sort(key=lambda item: (item[0], _served_key(served.get(item[2].user_id)), item[1]))

    # Within one round, interleave chats: a busy group doesn't push a quiet DM back.
    ordered: list[QueuedRef] = []
    index = 0
    while index < len(ranked):
        round_ = ranked[index][0]
        end = index
        while end < len(ranked) and ranked[end][0] == round_:
            end += 1
        served_per_chat: Counter[str] = Counter()
        keyed = []
        for place, (_, _, ref) in enumerate(ranked[index:end]):
            keyed.append((served_per_chat[ref.chat_key], place, ref))
            served_per_chat[ref.chat_key] += 1
        keyed.sort(key=lambda item: (item[0], item[1]))
        ordered.extend(ref for _, _, ref in keyed)
        index = end
    return ordered


def _served_key(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else float("-inf")
