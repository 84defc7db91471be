"""Round-robin order: one user's flood never starves another user's single song."""

from __future__ import annotations

from bot.scheduler import QueuedRef, fair_order, fair_round


def _ids(refs: list[QueuedRef]) -> list[int]:
    return [r.job_id for r in refs]


def test_a_flood_is_interleaved_with_other_users() -> None:
    queued = [QueuedRef(i, user_id=1, chat_key="g") for i in range(1, 11)]
    queued.append(QueuedRef(11, user_id=2, chat_key="g"))
    queued.append(QueuedRef(12, user_id=3, chat_key="dm"))
    # Round one: each user once, the DM before the second job from the busy group.
    assert _ids(fair_order(queued))[:4] == [1, 12, 11, 2]


def test_users_with_jobs_in_flight_wait_their_turn() -> None:
    queued = [QueuedRef(1, 1, "g"), QueuedRef(2, 2, "g")]
    assert _ids(fair_order(queued, {1: 1})) == [2, 1]


def test_within_a_round_quiet_chats_are_not_pushed_back() -> None:
    queued = [QueuedRef(1, 1, "busy"), QueuedRef(2, 2, "busy"), QueuedRef(3, 3, "quiet")]
    assert _ids(fair_order(queued)) == [1, 3, 2]


def test_arrival_order_is_kept_for_one_user() -> None:
    queued = [QueuedRef(i, 7, "g") for i in (4, 9, 12)]
    assert _ids(fair_order(queued)) == [4, 9, 12]


def test_users_served_longest_ago_go_first_within_a_round() -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 11, 25, tzinfo=UTC)
    queued = [QueuedRef(1, 1, "a"), QueuedRef(2, 2, "b"), QueuedRef(3, 3, "c")]
    served = {1: t0 + timedelta(seconds=5), 2: t0}
    # user 3 was never served, user 2 longest ago, user 1 just now
    assert _ids(fair_order(queued, {}, served)) == [3, 2, 1]


def test_a_new_song_goes_after_the_users_latest_never_before_the_round_served() -> None:
    # Stored at queue time (start-time fair queuing): who was served recently is already in
    # their rounds, so within a round arrival decides.
    assert fair_round(None, 4) == 4  # nothing waiting: the back of the round being served
    assert fair_round(6, 4) == 7  # after their latest song queued or in flight
    assert fair_round(1, 4) == 4  # a song long finished doesn't buy an early place
