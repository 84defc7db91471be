"""SQLite for SQLAlchemy's asyncio engine without a thread hop per call.

aiosqlite runs every DB-API call (cursor, execute, fetch, close, commit) on a worker thread
and hands the answer back through the event loop: four round trips per statement, which cost
far more CPU than SQLite's own work on the bot's small indexed statements
(docs/performance.md, section 3). This connection speaks the same awaitable interface, so
SQLAlchemy's ``sqlite+aiosqlite`` dialect drives it unchanged (``async_creator``), but runs
each call in the calling thread: a statement is a function call.

What the thread was for stays covered:

* **Waiting for another process's lock.** SQLite's busy handler would sleep in this thread,
  i.e. stop the event loop. So the connection runs with a busy timeout of 0, and a call that
  finds the database locked (``SQLITE_BUSY``) is run again on a worker thread with the full
  timeout, as SQLite's own busy handler would have retried it: nothing ran the first time.
* **Long statements** (a retention sweep, ``acejam admin queue``) hold the loop for their
  milliseconds instead of releasing it; the bot's statements are index reads and writes of a
  few rows, and the whole process shares one connection anyway (``storage/db.py``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url

T = TypeVar("T")
SQLITE_BUSY = 5


def _locked(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", 0) & 0xFF == SQLITE_BUSY


class _Inline:
    """aiosqlite's job queue, as SQLAlchemy's dialect uses it (``_tx.put_nowait``) to set
    the isolation level: the call runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:
            future.set_exception(error)


class Connection:
    """The part of ``aiosqlite.Connection`` SQLAlchemy's aiosqlite dialect calls."""

    def __init__(self, conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # the dialect checks it is open
        self._busy_timeout_ms = busy_timeout_ms
        self._tx = _Inline()
        conn.execute("PRAGMA busy_timeout=0")

    async def _run(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except sqlite3.OperationalError as error:
            if not _locked(error):
                raise
        return await asyncio.to_thread(self._waiting, call)

    def _waiting(self, call: Callable[[], T]) -> T:
        # Another process holds the lock: wait for it here, off the event loop, as long as
        # the busy timeout says; then back to failing fast for the next call.
        self._conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        try:
            return call()
        finally:
            self._conn.execute("PRAGMA busy_timeout=0")

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _CursorContext:
        return _CursorContext(self)

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        cursor = Cursor(self, self._conn.cursor())
        return await cursor.execute(sql, parameters)

    async def begin(self, *, immediate: bool) -> None:
        """BEGIN, IMMEDIATE for a writer (``storage/db.py`` calls it from SQLAlchemy's
        "begin" event): here rather than as a statement through the engine, whose
        bookkeeping for it cost more than the BEGIN itself."""
        sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        await self._run(lambda: self._conn.execute(sql))

    async def commit(self) -> None:
        await self._run(self._conn.commit)

    async def rollback(self) -> None:
        await self._run(self._conn.rollback)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def create_function(self, name: str, num_params: int, func: Any, **kw: Any) -> None:
        self._conn.create_function(name, num_params, func, **kw)


class _CursorContext:
    """What ``aiosqlite.Connection.cursor()`` returns: awaited (``__aenter__``) for the cursor."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def __aenter__(self) -> Cursor:
        return Cursor(self._connection, self._connection._conn.cursor())

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __await__(self) -> Any:
        return self.__aenter__().__await__()


class Cursor:
    """The part of ``aiosqlite.Cursor`` SQLAlchemy's aiosqlite dialect calls."""

    def __init__(self, connection: Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Cursor:
        cursor = self._cursor
        if parameters is None:
            await self._connection._run(lambda: cursor.execute(sql))
        else:
            await self._connection._run(lambda: cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor:
        rows = list(parameters)
        await self._connection._run(lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return await self._connection._run(self._cursor.fetchone)

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = self._cursor.arraysize if size is None else size
        return await self._connection._run(lambda: self._cursor.fetchmany(size))

    async def fetchall(self) -> list[Any]:
        return await self._connection._run(self._cursor.fetchall)

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


def connector(url: str, timeout: float) -> Callable[[], Any]:
    """``create_async_engine(url, async_creator=connector(url, timeout))``: the file (and
    options) of a ``sqlite+aiosqlite`` URL, read as SQLAlchemy's SQLite dialect reads it."""
    args, kwargs = SQLiteDialect_pysqlite().create_connect_args(make_url(url))
    kwargs = {**kwargs, "timeout": timeout, "check_same_thread": False}

    open_file: Callable[..., sqlite3.Connection] = sqlite3.connect

    async def connect() -> Connection:
        return Connection(open_file(*args, **kwargs), int(timeout * 1000))

    return connect
