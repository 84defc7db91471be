"""Retry pauses, and who bears a song that never reached the chat: pure rules, in tables."""

from __future__ import annotations

import pytest

from bot import messages
from bot.retry import backoff
from bot.settlement import refunds_quota


@pytest.mark.parametrize(
    ("failures", "pause"),
    [(0, 0.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (10_000, 30.0)],
)
def test_a_pause_doubles_from_the_base_up_to_the_cap(failures: int, pause: float) -> None:
    assert backoff(failures, base=2.0, cap=30.0) == pause


@pytest.mark.parametrize(
    ("code", "refunded"),
    [
        # The song was made, and the chat it was asked from turned it away.
        ("nsfw", False),
        ("bot_blocked", False),
        ("chat_gone", False),
        # The upstream or the bot failed: never the user's to pay.
        ("upstream_failed", True),
        ("timeout", True),
        ("poll_failed", True),
        ("download_refused", True),
        ("download_truncated", True),
        ("download_timeout", True),
        ("download_expired", True),
        ("delivery_failed", True),
        ("audio_too_large", True),
        (None, True),
    ],
)
def test_the_user_is_told_whether_the_song_still_counts(code: str | None, refunded: bool) -> None:
    assert refunds_quota(code) is refunded
    told = messages.failure_message(code)
    if refunded:
        assert told.endswith("Your quota has been given back."), told
    else:
        assert told.endswith("It still counts against your quota."), told
    assert "Something went wrong" not in told or code is None
