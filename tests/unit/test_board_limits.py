"""The jam board's rate limit (bot/jamboard/limits.py): a bucket per address that refills
with time, and whom a request counts against behind a proxy."""

from __future__ import annotations

import pytest

from bot.jamboard.limits import MAX_TRACKED, RateLimit, client_address, retry_after


def test_a_bucket_lets_a_burst_through_then_one_request_per_refill() -> None:
    now = [0.0]
    limit = RateLimit(burst=2, per_second=4.0, clock=lambda: now[0])
    assert [limit.take("a"), limit.take("a")] == [None, None]
    assert limit.take("a") == pytest.approx(0.25)
    assert limit.take("b") is None  # each address its own
    now[0] += 0.25
    assert limit.take("a") is None
    assert limit.take("a") is not None
    now[0] += 100.0  # a long pause refills up to the burst, not beyond
    assert [limit.take("a") for _ in range(3)][2] is not None


def test_idle_addresses_are_let_go_once_many_are_tracked() -> None:
    now = [0.0]
    limit = RateLimit(burst=1, per_second=1.0, clock=lambda: now[0])
    for n in range(MAX_TRACKED):
        limit.take(f"10.0.{n // 256}.{n % 256}")
    assert limit.tracked == MAX_TRACKED
    now[0] += 1.0  # every bucket full again: none is worth holding
    assert limit.take("192.0.2.1") is None
    assert limit.tracked == 1


@pytest.mark.parametrize(
    ("peer", "forwarded", "counted"),
    [
        ("198.51.100.7", None, "198.51.100.7"),
        ("198.51.100.7", "203.0.113.9", "198.51.100.7"),  # anyone can write the header
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),  # a proxy on this machine
        ("::1", "10.1.1.1, 203.0.113.9", "203.0.113.9"),  # the address the proxy appended
        ("127.0.0.1", None, "127.0.0.1"),
        (None, "203.0.113.9", "unknown"),
    ],
)
def test_whom_a_request_counts_against(
    peer: str | None, forwarded: str | None, counted: str
) -> None:
    assert client_address(peer, forwarded) == counted


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(0.01), retry_after(1.0), retry_after(1.2)] == ["1", "1", "2"]
