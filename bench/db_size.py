"""How many bytes one song costs in the database, per table and index.

    .venv/bin/python bench/db_size.py [--songs N] [--lyrics CHARS] [--postgres URL]

N songs (default 1,000) by 100 users go the whole way through the real service and worker
(``GenerationService.submit`` → claim → submit → poll → download → deliver, with the instant
backend of ``throughput.py``), tags like ``bench 17, lo-fi, chill`` and ``--lyrics`` characters
of lyrics each. Then the space of every table and index is divided by N: on SQLite the pages
each uses (``dbstat``, 4 KiB pages, after a ``VACUUM``), on PostgreSQL (``--postgres``, a fresh
database made on that server) ``pg_total_relation_size`` after ``VACUUM FULL``. The last row is
what stays once the job events are pruned (``EVENT_RETENTION_DAYS``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import tempfile
from pathlib import Path
from typing import Any

import _common as c
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from throughput import CountingDelivery, bench_settings, until_done, worker_for

from bot.app import open_core
from bot.domain import Destination
from bot.service import Accepted

USERS = 100
EVENTS = ("job_events", "ix_job_events_job_id", "job_events_pkey", "job_events (TOAST)")


async def run(songs: int, lyrics: int, database_url: str | None) -> dict[str, tuple[int, int]]:
    """name -> (rows or 0 for an index, bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(Path(tmp), "http://127.0.0.1:9", 50, 0.001)
        if database_url is not None:
            settings = settings.model_copy(update={"database_url": database_url})
        async with open_core(settings) as core:
            worker = worker_for(core, "instant", 50)
            delivery = CountingDelivery(expected=songs)
            core.service.register_delivery(delivery)
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            words = ("la " * lyrics)[:lyrics]
            for i in range(songs):
                who = c.user(i % USERS)
                request = core.service.validate(
                    tags=f"bench {i}, lo-fi, chill", lyrics=words, duration=5
                )
                where = Destination(who.platform, f"chat-{who.user_id}", who.user_id)
                outcome = await core.service.submit(who, where, request)
                assert isinstance(outcome, Accepted), outcome
            await until_done(delivery, task)
            stop.set()
            await task
        return await measure(settings.resolved_database_url)


async def measure(url: str) -> dict[str, tuple[int, int]]:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    sizes: dict[str, tuple[int, int]] = {}
    try:
        async with engine.connect() as connection:
            tables = ("jobs", "job_events", "quota_ledger", "users")
            counts = {
                t: int((await connection.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one())
                for t in tables
            }
            if connection.dialect.name == "sqlite":
                await connection.execute(text("VACUUM"))
                rows = await connection.execute(
                    text("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
                )
                sizes = {name: (counts.get(name, 0), int(size)) for name, size in rows.all()}
            else:
                await connection.execute(text("VACUUM FULL"))
                rows = await connection.execute(
                    text(
                        "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 't')"
                        " ORDER BY 2 DESC"
                    )
                )
                sizes = {name: (counts.get(name, 0), int(size)) for name, size in rows.all()}
                for table in tables:  # TOAST of long lyrics, if any
                    toast = await connection.execute(
                        text(
                            "SELECT coalesce(pg_total_relation_size(reltoastrelid), 0)"
                            " FROM pg_class WHERE relname = :t"
                        ),
                        {"t": table},
                    )
                    extra = int(toast.scalar_one())
                    if extra:
                        sizes[f"{table} (TOAST)"] = (0, extra)
    finally:
        await engine.dispose()
    return sizes


async def fresh_postgres(admin_url: str) -> tuple[str, Any, str]:
    from sqlalchemy.engine import make_url

    name = f"acejam_size_{secrets.token_hex(4)}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, admin, name


async def main_async(args: argparse.Namespace) -> None:
    if args.postgres:
        url, admin, name = await fresh_postgres(args.postgres)
        try:
            sizes = await run(args.songs, args.lyrics, url)
        finally:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.dispose()
        where = "PostgreSQL"
    else:
        sizes = await run(args.songs, args.lyrics, None)
        where = "SQLite"
    n = args.songs
    rows = [
        [name, str(count), f"{count / n:.1f}" if count else "", f"{size / n:,.0f}"]
        for name, (count, size) in sizes.items()
        if size
    ]
    total = sum(size for _, size in sizes.values())
    kept = sum(size for name, (_, size) in sizes.items() if name not in EVENTS)
    rows.append(["all", "", "", f"{total / n:,.0f}"])
    rows.append(["all but the job events (after pruning)", "", "", f"{kept / n:,.0f}"])
    c.table(
        f"{where}: {n:,} songs delivered, {args.lyrics} characters of lyrics each",
        ["table or index", "rows", "rows per song", "bytes per song"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=1000)
    parser.add_argument("--lyrics", type=int, default=0, help="characters of lyrics per song")
    parser.add_argument("--postgres", help="a server URL (postgresql+asyncpg://...)")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    c.console.print(c.machine())
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
