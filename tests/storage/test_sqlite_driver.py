"""SQLite runs its statements in the event loop's thread (storage/sqlite_driver.py), so a
lock held by another program must be waited for elsewhere: the bot keeps answering meanwhile,
and its write goes through once the lock is let go."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select

from storage.db import create_engine, session_factory, upgrade
from storage.models import UserRow


def _hold_write_lock(path: Path, held: threading.Event, release: threading.Event) -> None:
    other = sqlite3.connect(path, isolation_level=None)  # another program on the same file
    try:
        other.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(10)
        other.execute("COMMIT")
    finally:
        other.close()


async def test_a_write_waits_for_another_programs_lock_while_the_loop_runs_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "acejam.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        for attempt in range(2):  # and again: waiting once leaves no long wait behind it
            held, release = threading.Event(), threading.Event()
            holder = asyncio.create_task(asyncio.to_thread(_hold_write_lock, path, held, release))
            await asyncio.to_thread(held.wait, 10)

            async def write(n: int = attempt) -> None:
                async with sessions.begin() as session:
                    await session.execute(
                        insert(UserRow).values(
                            platform="telegram",
                            platform_user_id=f"u{n}",
                            created_at=datetime.now(UTC),
                        )
                    )

            writing = asyncio.create_task(write())
            # Only the event loop lets the lock go: had the waiting write stopped the loop,
            # the write could only fail after the 30 s busy timeout.
            asyncio.get_running_loop().call_later(0.2, release.set)
            await asyncio.wait_for(writing, timeout=10)
            await holder
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(UserRow)) == 2
    finally:
        await engine.dispose()
