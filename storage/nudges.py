"""Nudges between the processes sharing one PostgreSQL (:class:`bot.ports.Nudges`):
``NOTIFY`` to tell, ``LISTEN`` to hear, on one connection of each process's own.

A nudge is a hint, never the news itself: it is sent after the change it announces is
committed (the listener then reads it), and it may be lost: a process that dies between
its commit and its ``NOTIFY``, a batch sent while the connection was down (dropped, not
kept), anything told while a listener was reconnecting. The workers' and the relay's
timers find every such change anyway (docs/jobs.md, "Across processes"); when this
process listens again after a dropped connection, it tells its own hearers to look once.

The connection is asyncpg's own (``add_listener``), not one of SQLAlchemy's pool: a pool
hands connections out and takes them back, and a listener must stay put. It is opened
with the engine's own connection arguments and named in ``pg_stat_activity``
(``application_name``), so an operator sees who listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ports import Nudge, Nudges
from bot.relay import NoNudges
from bot.retry import backoff
from bot.worker.config import new_owner_id

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
MAX_RELISTEN_PAUSE = 10.0  # seconds between attempts while the database is away
CLOSE_GRACE = 2.0  # seconds to send what is left (the leases a stopping worker gave back)
# Errors of a connection that broke or could not be made; anything else is a bug.
CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
# SQLAlchemy's own options among the engine's connection arguments (asyncpg refuses them).
SQLALCHEMY_OPTIONS = ("prepared_statement_cache_size", "prepared_statement_name_func")
NOTIFY_MANY = "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)"


def channel(nudge: Nudge, key: str) -> str:
    """One channel per kind and key (``acejam_work_wavespeed``), so a process hears only
    what it acts on."""
    return f"acejam_{nudge.value}_{key}"


class PgNudges:
    """:class:`bot.ports.Nudges` on PostgreSQL. Use as ``async with``: it keeps its
    connection (and listens again after it drops, with back-off) until the block ends."""

    def __init__(self, connect_args: dict[str, Any], *, name: str) -> None:
        self._connect_args = connect_args
        self.name = name  # application_name in pg_stat_activity
        self._hearers: dict[str, list[Callable[[str], None]]] = {}
        self._outbox: dict[tuple[str, str], None] = {}  # ordered, each nudge once per batch
        self._changed = asyncio.Event()  # something to send, or a new channel to listen on
        self._heard_before: set[str] = set()  # channels listened on by an earlier connection
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def send(self, nudge: Nudge, key: str, payload: str = "") -> None:
        self._outbox[(channel(nudge, key), payload)] = None
        self._changed.set()

    def on(self, nudge: Nudge, key: str, hear: Callable[[str], None]) -> None:
        self._hearers.setdefault(channel(nudge, key), []).append(hear)
        self._changed.set()

    async def __aenter__(self) -> PgNudges:
        self._task = asyncio.create_task(self._keep(), name="nudges")
        return self

    async def __aexit__(self, *_: object) -> None:
        self._closing = True
        self._changed.set()
        if self._task is None:
            return
        # What is left in the outbox goes out first (a stopping worker's handed-back leases).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), CLOSE_GRACE)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    # ------------------------------------------------------------ the connection
    async def _keep(self) -> None:
        failures = 0
        while not self._closing:
            try:
                connection = await asyncpg.connect(
                    **self._connect_args,
                    timeout=CONNECT_TIMEOUT,
                    server_settings={"application_name": self.name},
                )
            except CONNECTION_ERRORS as exc:
                failures += 1
                self._outbox.clear()  # nobody could hear it now; the timers will find it
                pause = backoff(failures, base=0.2, cap=MAX_RELISTEN_PAUSE)
                logger.warning("nudges: cannot connect (%s); trying again in %.1f s", exc, pause)
                await self._pause(pause)
                continue
            try:
                await self._serve(connection, after_failures=failures)
                return  # closing
            except CONNECTION_ERRORS as exc:
                # Whatever was told meanwhile is lost; the hearers look once we listen again.
                failures = 1
                self._outbox.clear()
                logger.warning("nudges: connection lost (%s); listening again", exc)
            finally:
                with contextlib.suppress(*CONNECTION_ERRORS):
                    await connection.close(timeout=1.0)
                connection.terminate()

    async def _serve(self, connection: asyncpg.Connection, *, after_failures: int) -> None:
        """Listen and send on ``connection`` until closing; raise when it breaks."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        listening: set[str] = set()
        while True:
            self._changed.clear()
            new = sorted(set(self._hearers) - listening)
            for name in new:
                await connection.add_listener(name, self._heard)
                listening.add(name)
            if new and after_failures:
                logger.info("nudges: listening again after %d failure(s)", after_failures)
            for name in set(new) & self._heard_before:  # deaf for a while: look once
                self._tell(name, "")
            self._heard_before.update(new)
            if self._outbox:
                batch, self._outbox = list(self._outbox), {}
                await connection.execute(NOTIFY_MANY, [c for c, _ in batch], [p for _, p in batch])
            if self._closing:
                return
            changed = asyncio.ensure_future(self._changed.wait())
            gone = asyncio.ensure_future(lost.wait())
            try:
                await asyncio.wait([changed, gone], return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                gone.cancel()
            if lost.is_set() or connection.is_closed():
                raise ConnectionResetError("the listening connection closed")

    def _heard(self, _connection: object, _pid: int, name: str, payload: object) -> None:
        self._tell(name, str(payload))

    def _tell(self, name: str, payload: str) -> None:
        for hear in self._hearers.get(name, ()):
            try:
                hear(payload)
            except Exception:  # a hearer's bug must not stop the listening
                logger.exception("nudges: %s hearer failed", name)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._until_closing(), seconds)

    async def _until_closing(self) -> None:
        while not self._closing:
            self._changed.clear()
            await self._changed.wait()


@contextlib.asynccontextmanager
async def open_nudges(engine: AsyncEngine) -> AsyncIterator[Nudges]:
    """This process's nudges on ``engine``'s database: LISTEN/NOTIFY on PostgreSQL; none
    on SQLite, where one process holds the database (its parts nudge each other)."""
    if engine.dialect.name != "postgresql":
        yield NoNudges()
        return
    _, connect_args = engine.dialect.create_connect_args(engine.url)
    for option in SQLALCHEMY_OPTIONS:
        connect_args.pop(option, None)
    async with PgNudges(dict(connect_args), name=f"acejam {new_owner_id()}") as nudges:
        yield nudges
