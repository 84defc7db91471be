"""Quota arithmetic: what is left, and when enough comes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.quotas import QuotaPolicy, UsageSnapshot, admit, status

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
POLICY = QuotaPolicy(seconds_per_day=600, max_active_jobs=2)


def test_room_left_is_admitted() -> None:
    assert admit(UsageSnapshot(1, ((T0, 300),)), 240, POLICY) is None


def test_over_quota_says_when_enough_frees_up() -> None:
    usage = UsageSnapshot(0, ((T0, 200), (T0 + timedelta(hours=1), 300)))
    refusal = admit(usage, 240, POLICY)
    assert refusal is not None and refusal.code == "quota"
    assert "1 min 40 s" in refusal.message
    # 140 s must leave the window: the first reservation (200 s) does it.
    assert refusal.frees_at == T0 + timedelta(hours=24)


def test_too_many_active_jobs() -> None:
    refusal = admit(UsageSnapshot(2, ()), 10, POLICY)
    assert refusal is not None and refusal.code == "active_jobs"


def test_longer_than_the_whole_allowance() -> None:
    refusal = admit(UsageSnapshot(0, ()), 601, POLICY)
    assert refusal is not None and "whole daily allowance" in refusal.message


def test_status_reports_remaining_and_next_free() -> None:
    shown = status(UsageSnapshot(1, ((T0, 250),)), POLICY)
    assert shown.remaining_seconds == 350
    assert shown.next_free_at == T0 + timedelta(hours=24)


def test_refusals_and_quota_write_time_the_same_way() -> None:
    # The example: a refusal said "100 s of your daily 600 s" while /quota said
    # "1 min 40 s of 10 min"; both now speak minutes past a minute.
    refusal = admit(UsageSnapshot(0, ((T0, 500),)), 120, POLICY)
    assert refusal is not None
    assert refusal.message == (
        "You have 1 min 40 s of your daily 10 min left and this song needs 2 min."
    )
