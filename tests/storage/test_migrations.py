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

from bot.domain import Destination, GenerationRequest, JobState
from storage.db import HEAD_REVISION, alembic_config, create_engine, session_factory, upgrade
from storage.jobs import Enqueued, NewJob, SqlJobStore, UserKey
from storage.models import Base
from storage.rules import SqlRulesStore

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


async def test_0003_keeps_jobs_and_makes_the_operators_grants_ceilings(database_url: str) -> None:
    # 0003 widens job ids (PostgreSQL rewrites jobs, job_events and quota_ledger) and moves an
    # everywhere-quota, which only `acejam admin` could set, to the operator's grant.
    engine = create_engine(database_url)
    try:
        await upgrade(engine, "0002")
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
                    " context, tags, lyrics, duration, seed, state, backend, attempts, nsfw,"
                    " created_at, updated_at) VALUES (7, 1, 'telegram', 'c', 'c', 'u1', '{}',"
                    " 'lo-fi', '', 30, -1, 'queued', 'wavespeed', 0, false, :now, :now)"
                ),
                {"now": NOW},
            )
            await connection.execute(
                text(
                    "INSERT INTO quota_ledger (user_id, job_id, kind, seconds, created_at) "
                    "VALUES (1, 7, 'reserve', 30, :now)"
                ),
                {"now": NOW},
            )
            for scope, seconds in (("*", 1200), ("c", 30)):
                await connection.execute(
                    text(
                        "INSERT INTO user_overrides (platform, platform_user_id, scope_id,"
                        " quota_seconds_per_day, blocked, updated_at)"
                        " VALUES ('telegram', 'u1', :scope, :seconds, false, :now)"
                    ),
                    {"scope": scope, "seconds": seconds, "now": NOW},
                )
        await upgrade(engine)
        store = SqlJobStore(session_factory(engine))
        job = await store.get(7)
        assert job is not None and job.state == JobState.QUEUED
        assert await store.ledger_balance(1) == {"reserve": 30}
        assert await store.queue_order("wavespeed") == [7]
        rules = SqlRulesStore(session_factory(engine))
        found = {r.scope_id: r for r in await rules.user_rules("telegram", "u1", "c")}
        assert found["*"].operator_quota_seconds_per_day == 1200
        assert found["*"].quota_seconds_per_day is None
        assert found["c"].quota_seconds_per_day == 30  # a chat's own: capped like any admin's
        assert found["c"].operator_quota_seconds_per_day is None
    finally:
        await engine.dispose()


async def test_0004_stores_the_fair_order_the_queue_had(database_url: str) -> None:
    # Queued jobs at 0003 keep the order 0003 computed (a user's k-th queued job in round k +
    # their jobs in flight; chats take turns; users served longest ago first; arrival), and a
    # song queued after the upgrade joins the round being served.
    engine = create_engine(database_url)
    try:
        await upgrade(engine, "0003")
        async with engine.begin() as connection:
            for user, served in ((1, None), (2, NOW), (3, None)):
                await connection.execute(
                    text(
                        "INSERT INTO users (id, platform, platform_user_id, created_at,"
                        " last_served_at) VALUES (:id, 'telegram', :name, :now, :served)"
                    ),
                    {"id": user, "name": f"u{user}", "now": NOW, "served": served},
                )
            # id: (user, chat, state)
            jobs = {
                1: (2, "g", "submitted"),
                2: (2, "g", "queued"),
                3: (1, "g", "queued"),
                4: (1, "g", "queued"),
                5: (2, "g", "queued"),
                6: (3, "g", "queued"),
                7: (3, "dm", "queued"),
            }
            for job_id, (user, chat, state) in jobs.items():
                await connection.execute(
                    text(
                        "INSERT INTO jobs (id, user_id, platform, chat_id, scope_id,"
                        " platform_user_id, context, tags, lyrics, duration, seed, state,"
                        " backend, attempts, nsfw, created_at, updated_at) VALUES (:id, :user,"
                        " 'telegram', :chat, :chat, :name, '{}', 'lo-fi', '', 30, -1, :state,"
                        " 'wavespeed', 0, false, :now, :now)"
                    ),
                    {
                        "id": job_id,
                        "user": user,
                        "chat": chat,
                        "name": f"u{user}",
                        "state": state,
                        "now": NOW,
                    },
                )
            if connection.dialect.name == "postgresql":  # ids given above: move the sequences on
                for table in ("users", "jobs"):
                    await connection.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 100)")
                    )
        await upgrade(engine)
        store = SqlJobStore(session_factory(engine))
        # Round 0: users 1 and 3's first songs; round 1: user 1's second, user 3's DM (a DM
        # before a second song of g), user 2's first (one in flight, served lately); round 2.
        order = [3, 6, 4, 7, 2, 5]
        assert await store.queue_order("wavespeed") == order
        places = await store.positions(await store.get_many(order))
        assert places == {job_id: n for n, job_id in enumerate(order, start=1)}
        late = await store.enqueue(
            NewJob(
                user=UserKey("telegram", "u9", "u9"),
                request=GenerationRequest(tags="lo-fi", duration=10),
                destination=Destination("telegram", "dm9", "u9"),
                backend="wavespeed",
            ),
            admit=lambda usage: None,
            now=NOW,
        )
        # Round 0 is being served: a new DM joins it, before the second song of group g.
        assert isinstance(late, Enqueued) and late.position == 2
    finally:
        await engine.dispose()


async def test_0007_reads_earlier_jobs_as_songs(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine, "0006")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO users (id, platform, platform_user_id, created_at)"
                    " VALUES (1, 'telegram', 'u1', :now)"
                ),
                {"now": NOW},
            )
            await connection.execute(
                text(
                    "INSERT INTO jobs (id, user_id, platform, chat_id, scope_id,"
                    " platform_user_id, context, tags, lyrics, duration, seed, state,"
                    " backend, attempts, nsfw, created_at, updated_at) VALUES (1, 1,"
                    " 'telegram', 'c1', 'c1', 'u1', '{}', 'lo-fi', '', 30, -1, 'delivered',"
                    " 'wavespeed', 0, false, :now, :now)"
                ),
                {"now": NOW},
            )
            await connection.execute(
                text(
                    "INSERT INTO chat_settings (platform, scope_id, role_quotas,"
                    " allowed_channels, others_may_press, allow_nsfw, blocked_words,"
                    " updated_at) VALUES ('telegram', 'c1', '{}', '[]', true, false, '[]', :now)"
                ),
                {"now": NOW},
            )
        await upgrade(engine)
        sessions = session_factory(engine)
        job = await SqlJobStore(sessions).get(1)
        assert job is not None and job.request.edit is None and job.request.task == "song"
        rules = await SqlRulesStore(sessions).chat_rules("telegram", "c1")
        assert rules is not None and rules.others_may_press and rules.own_audio is None
    finally:
        await engine.dispose()
