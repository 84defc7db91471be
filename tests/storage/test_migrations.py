"""The migrated schema is exactly what models.py describes, on both databases; a current
database starts without loading alembic, one that is behind is still upgraded."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from bot.domain import JobState
from storage.db import HEAD_REVISION, alembic_config, create_engine, session_factory, upgrade
from storage.jobs import SqlJobStore
from storage.models import Base

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def test_migrations_reach_the_models_schema(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # a second start is a no-op

        def diff(connection: object) -> list[object]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})  # type: ignore[arg-type]
            return compare_metadata(context, Base.metadata)

        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
        assert differences == []
    finally:
        await engine.dispose()


def test_the_head_that_skips_alembic_is_the_newest_migration() -> None:
    # A new migration must move HEAD_REVISION too, or current-looking databases skip it.
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD_REVISION]


async def test_a_database_behind_the_head_is_upgraded(database_url: str) -> None:
    def to_base(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with engine.begin() as connection:
            await connection.run_sync(to_base)  # alembic_version stays, empty
            assert await connection.run_sync(tables) == {"alembic_version"}

        await upgrade(engine)

        async with engine.connect() as connection:
            assert await connection.run_sync(tables) == {"alembic_version", *Base.metadata.tables}
    finally:
        await engine.dispose()


async def test_starting_on_a_current_database_does_not_load_alembic(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    await upgrade(engine)
    await engine.dispose()
    start = (
        "import asyncio, sys\n"
        "from storage.db import create_engine, upgrade\n"
        "async def main():\n"
        "    engine = create_engine(sys.argv[1])\n"
        "    await upgrade(engine)\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", start, sqlite_url, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0
    assert out.decode().strip() == "False"  # alembic costs ~11 MB that is never freed


async def test_jobs_made_before_0002_survive_it(database_url: str) -> None:
    # 0002 drops a column of `jobs`, which other tables point at: existing rows must stay.
    engine = create_engine(database_url)
    try:
        await upgrade(engine, "0001")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO users (id, platform, platform_user_id, created_at) "
                    "VALUES (1, 'telegram', 'u1', :now)"
                ),
                {"now": NOW},
            )
            await connection.execute(
                text(
                    "INSERT INTO jobs (id, user_id, platform, chat_id, scope_id, platform_user_id,"
                    " context, tags, lyrics, duration, seed, state, backend, attempts, polls,"
                    " nsfw, created_at, updated_at) VALUES (1, 1, 'telegram', 'c', 'c', 'u1',"
                    " '{}', 'lo-fi', '', 30, -1, 'delivered', 'wavespeed', 1, 3, false, :now,"
                    " :now)"
                ),
                {"now": NOW},
            )
            await connection.execute(
                text(
                    "INSERT INTO job_events (job_id, at, from_state, to_state) "
                    "VALUES (1, :now, NULL, 'queued')"
                ),
                {"now": NOW},
            )
        await upgrade(engine)
        store = SqlJobStore(session_factory(engine))
        job = await store.get(1)
        assert job is not None and job.state == JobState.DELIVERED and job.request.tags == "lo-fi"
        assert await store.events(1) == [(None, "queued", None)]
    finally:
        await engine.dispose()
