"""A database that can't answer reaches the core as StoreUnavailable, never as the driver's
own exception (the worker and the relay wait those out without knowing SQLAlchemy)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.errors import StoreUnavailable
from storage.db import create_engine, session_factory
from storage.jobs import SqlJobStore
from storage.rules import SqlRulesStore


async def test_a_database_that_cannot_be_opened_is_unavailable_to_every_store(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'acejam.db'}")
    shutil.rmtree(tmp_path / "data")
    (tmp_path / "data").write_text("a file where the database's directory was")
    try:
        jobs = SqlJobStore(session_factory(engine))
        rules = SqlRulesStore(session_factory(engine))
        with pytest.raises(StoreUnavailable) as raised:
            await jobs.get(1)  # a read (JobStore)
        assert raised.value.kind == "OperationalError"
        with pytest.raises(StoreUnavailable):
            await jobs.last_event_id()  # a part of the composed store (EventFeed)
        with pytest.raises(StoreUnavailable):
            await rules.chat_rules("telegram", "1")
    finally:
        await engine.dispose()
