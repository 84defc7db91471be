"""Engine, sessions and migrations. SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE
so that concurrent writers (a second process, `acejam generate` beside `acejam run`) queue
up instead of failing."""

from __future__ import annotations

import logging
import os
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.util import await_

from storage import sqlite_driver

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions (tests/storage check it): a database stamped
# with it is current, and starting on it never imports alembic.
HEAD_REVISION = "0008"
READ_ONLY = "acejam_read_only"  # execution option of the engine behind read-only sessions
BUSY_TIMEOUT_S = 30.0  # SQLite: how long a statement waits for another process's lock
IDLE_PING_SECONDS = 10.0  # PostgreSQL: a pooled connection idle this long is checked first
IDLE_SINCE = "acejam_idle_since"  # its key in the pool's connection record


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, idle_ping_seconds: float = IDLE_PING_SECONDS) -> AsyncEngine:
    if is_sqlite(url):
        path = url.split(":///", 1)[-1].partition("?")[0] if ":///" in url else ""
        if path and path != ":memory:":
            private_database_file(Path(path))
        # One connection per process: SQLite has a single writer anyway, and sessions waiting
        # in the pool (an asyncio queue) cost far less than connections sleeping in SQLite's
        # busy handler for each other's write lock. Other processes still meet the busy timeout
        # (30 s), waited for off the event loop (storage/sqlite_driver.py).
        engine = create_async_engine(
            url,
            async_creator=sqlite_driver.connector(url, BUSY_TIMEOUT_S),
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
        )
        _tune_sqlite(engine)
        return engine
    # 20 kept open: a busy worker has that many transactions at once, and each one past the
    # pool used to be a new connection (a fork on the server), closed again at its end.
    engine = create_async_engine(url, pool_size=20, max_overflow=10)
    ping_when_idle(engine, idle_ping_seconds)
    return engine


def ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Check a pooled connection before it is used, but only one that sat idle for
    ``idle_seconds``: one a server restart or an idle timeout may have closed. A dead one is
    replaced before anyone uses it (the pool's DisconnectionError). SQLAlchemy's
    ``pool_pre_ping`` checks every checkout with three round trips (BEGIN, ``;``, ROLLBACK),
    which was a quarter of PostgreSQL's CPU per song in a busy worker; a connection in steady
    use is known alive, and one that dies mid-use fails like any outage (bot/retry.py)."""

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _idle_from(dbapi_connection: Any, record: Any) -> None:
        record.info[IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _alive(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(IDLE_SINCE)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError(f"an idle connection is gone: {exc}") from exc


def private_dir(path: Path) -> None:
    """Create ``path`` (and parents) for its owner only: it holds the database, whose
    rows carry users' ids, lyrics and chat names. An existing directory is tightened too."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(path, 0o700)


def private_database_file(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (it would make it 0644, and its -wal
    and -shm files take the main file's mode). An empty file is an empty database.

    Its folder is made 0700 when we create it, but an existing one is left as it is: a
    DATABASE_URL may name a file in a shared folder (``/tmp``, ``/var/lib``) that is not
    ours to lock (DATA_DIR, which is, is tightened by ``private_dir``)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if part.exists():
            _tighten(part, 0o600)


def _tighten(path: Path, mode: int) -> None:
    if path.stat().st_mode & 0o777 & ~mode:
        try:
            path.chmod(mode)
        except OSError:  # not ours to change: say so, but it needn't stop the bot
            logger.warning("%s can be read by other users; chmod %o it", path, mode)


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's own BEGIN is deferred and can deadlock
        # two writers that both read first).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front; readers only need WAL's snapshot (a deferred BEGIN
        # never waits for a writer).
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        driver = cast(sqlite_driver.Connection, conn.connection.driver_connection)
        await_(driver.begin(immediate=not read_only))


class Sessions:
    """What a store works with: sessions for transactions that write, and sessions for
    queries only (on SQLite a deferred BEGIN, which never waits for the write lock).

    The statements every song runs (queueing, claiming, state changes, a chat's rules) use
    plain connections instead (:meth:`_writing`, :meth:`_querying`): their statements are
    Core ones built once, and an ORM session's layers cost more than SQLite's own work for
    them (~100 µs per transaction, ~40 µs per statement; docs/performance.md, section 12)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._sessions = sessions  # transactions that write
        self._reads = reads or sessions  # queries only (SQLite: no write lock taken)

    def _writing(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction on a connection of its own, committed at the end (BEGIN IMMEDIATE
        on SQLite, like a writing session's)."""
        engine: AsyncEngine = self._sessions.kw["bind"]
        return engine.begin()

    def _querying(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for queries only (on SQLite a deferred BEGIN), rolled back at the end."""
        engine: AsyncEngine = self._reads.kw["bind"]
        return engine.connect()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for queries that never write (on SQLite: a deferred BEGIN)."""
    read_only = engine.execution_options(**{READ_ONLY: True})
    return async_sessionmaker(read_only, expire_on_commit=False)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations on this engine (run at every start; a no-op when current).

    A current database costs a look at ``alembic_version``: alembic itself (~11 MB once
    imported, never freed) is only loaded when there is something to migrate.
    """

    def _run(connection: Connection) -> None:
        from alembic import command

        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes may start at once on a fresh database: one migrates,
            # the others wait and then find nothing to do.
            await connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
        if revision == "head" and await connection.run_sync(_stamped) == {HEAD_REVISION}:
            return
        await connection.run_sync(_run)


async def stamped_revisions(engine: AsyncEngine) -> set[str]:
    """The revisions the database is at, read without a write lock (`acejam doctor`)."""
    async with engine.execution_options(**{READ_ONLY: True}).connect() as connection:
        return await connection.run_sync(_stamped)


def _stamped(connection: Connection) -> set[str]:
    """The revisions the database says it is at (none before the first migration)."""
    if not inspect(connection).has_table("alembic_version"):
        return set()
    return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
