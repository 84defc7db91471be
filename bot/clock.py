"""Time, in one place: aware UTC datetimes for the database, monotonic for timers."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
