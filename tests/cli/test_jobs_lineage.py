"""`acejam jobs` and `acejam jobs show` say where an edit came from ("extended from #1",
"remix of the user's audio") and what it did."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from bot.domain import Destination, Edit, GenerationRequest, Job, Task
from bot.stores import Enqueued, NewJob, UserKey
from storage.db import create_engine, session_factory, upgrade
from storage.jobs import SqlJobStore
from tests.kit.cli import acejam_env, run_acejam

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


async def _jobs(data: Path) -> list[Job]:
    """A song, an extend of it and a remix of a user's upload, queued in the bot's database."""
    data.mkdir()
    engine = create_engine(f"sqlite+aiosqlite:///{data / 'acejam.db'}")
    try:
        await upgrade(engine)
        store = SqlJobStore(session_factory(engine))
        made: list[Job] = []
        asks = [
            (GenerationRequest(tags="lo-fi piano", duration=40), None),
            (GenerationRequest(tags="lo-fi piano", duration=30, edit=Edit(
                Task.EXTEND, "/data/sources/tg-9.mp3", 40.0, seconds=30, at_start=True
            )), 0),
            (GenerationRequest(tags="bossa nova", duration=13, edit=Edit(
                Task.REMIX, "/data/sources/tg-10.ogg", 12.5, own_audio=True, strength=0.7
            )), None),
        ]  # fmt: skip
        for request, parent in asks:
            queued = await store.enqueue(
                NewJob(
                    user=UserKey("telegram", "42"),
                    request=request,
                    destination=Destination("telegram", "-100", "42"),
                    backend="wavespeed",
                    parent_id=made[parent].id if parent is not None else None,
                ),
                admit=lambda usage: None,
                now=NOW,
            )
            assert isinstance(queued, Enqueued)
            made.append(queued.job)
        return made
    finally:
        await engine.dispose()


async def test_jobs_show_where_each_edit_came_from(tmp_path: Path) -> None:
    data = tmp_path / "data"
    song, extend, _ = await _jobs(data)
    env = acejam_env(data, "http://127.0.0.1:9")  # nothing is sent upstream
    # Two runs, side by side (each starts Python and the bot's modules: seconds).
    (code, table, err), (show_code, shown, _) = await asyncio.gather(
        run_acejam("jobs", env=env, cwd=tmp_path),
        run_acejam("jobs", "show", str(extend.id), env=env, cwd=tmp_path),
    )
    assert code == show_code == 0, err
    assert f"(extended from #{song.id}) lo-fi piano" in table
    assert "(remix of the user's audio) bossa nova" in table
    assert f"({song.id}) lo-fi" not in table  # a song from scratch has no lineage
    assert (
        f"edit: extended from #{song.id}, 30 s added at the start "
        "(source 40 s: /data/sources/tg-9.mp3)"
    ) in shown.splitlines()
