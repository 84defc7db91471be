"""`/song` → track in a split deployment against one process, on the same PostgreSQL.

    .venv/bin/python bench/split_latency.py [--quick] [--songs N] [--postgres URL]
                                            [--baseline-code DIR]

The bot runs as `acejam run` runs it, in processes of its own (``python -m bot run``), with
the settings a deployment would have (``LEASE_SECONDS`` 30: a lease round every 10 s);
a loopback Telegram (this process) and a loopback WaveSpeed (this process, songs ready 3 s
after they are sent, real time) stand in for the outside world. Each row is a fresh
database on the PostgreSQL server given (``--postgres``, else ``TEST_DATABASE_URL``):

* ``one process``: `acejam run` (worker and Telegram adapter together);
* ``split``: `acejam run --role adapters` beside `acejam run --role worker`.

One user after another sends `/song bench tune | 5` in their private chat and waits for the
track; *latency* is from the message sent to the audio in the chat. Each row starts with
one song that is not counted (processes warming up). From the database afterwards:
*claim* is queued → claimed (``job_events``), *hand-over* is succeeded → delivered (the
upload included). The goal (issue #18): the split row's median at most 1 s above the one
process row's, in the same run.

``--baseline-code DIR`` runs both rows again with the bot's code from ``DIR`` (e.g. an
earlier commit: ``git archive <rev> | tar -x -C DIR``), the same fakes and server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import _common as c
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.telegram import FakeTelegram
from tests.fakes.wavespeed import FakeWaveSpeed

TOKEN = "123456:BENCH-TOKEN"
DURATION = 5  # WaveSpeed's shortest song
UPSTREAM_SECONDS = 3.0
GOAL_ADDED_SECONDS = 1.0
LABELS: dict[Path, str] = {}  # each tree's commit, read once (others may commit meanwhile)
START_TIMEOUT = 60.0
SONG_TIMEOUT = 60.0


@dataclass
class Row:
    name: str
    code: str
    latencies: list[float] = field(default_factory=list)
    claims: list[float] = field(default_factory=list)
    handovers: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)


def bot_env(
    code: Path, data_dir: Path, database_url: str, tg: FakeTelegram, ws_url: str
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "DISCORD_", "WAVESPEED_", "ACESTEP_", "DATABASE_"))
    }
    env.update(
        PYTHONPATH=str(code),
        PTB_TIMEDELTA="true",
        BACKEND="wavespeed",
        WAVESPEED_API_KEY=c.WAVESPEED_KEY,
        WAVESPEED_BASE_URL=ws_url,
        WAVESPEED_MAX_CONCURRENCY="4",
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        TELEGRAM_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=tg.base_url,
        QUOTA_SECONDS_PER_DAY=str(10**9),
        MAX_ACTIVE_JOBS_PER_USER="100",
        MAX_ACTIVE_JOBS_PER_CHAT="100",
        LOG_LEVEL="WARNING",
    )
    return env


@contextlib.asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    name = f"acejam_bench_{secrets.token_hex(4)}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


@contextlib.asynccontextmanager
async def bots(roles: Sequence[str], env: dict[str, str], cwd: Path) -> AsyncIterator[None]:
    """``python -m bot run --role R`` for each role (the first migrates; the others wait for
    it, as a deployment's would); SIGTERM and a wait on exit."""
    procs: list[asyncio.subprocess.Process] = []
    try:
        for role in roles:
            log = (cwd / f"{role}.log").open("w")
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", "run", "--role", role,
                    env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        yield
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def one_song(tg: FakeTelegram, n: int) -> float:
    person = tg.user(20_000 + n, f"Bench{n}", f"bench{n}")
    chat = tg.private_chat(person)
    began = time.monotonic()
    await tg.send_message(chat, person, f"/song bench tune {n}, lo-fi | {DURATION}")
    await tg.wait_for_audio(chat, timeout=SONG_TIMEOUT)
    return time.monotonic() - began


async def job_timings(database_url: str) -> tuple[list[float], list[float]]:
    """(queued → claimed, succeeded → delivered) per delivered job, from the audit trail."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT job_id, to_state, min(at) FROM job_events "
                        "GROUP BY job_id, to_state ORDER BY job_id"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    at: dict[int, dict[str, float]] = {}
    for job_id, state, moment in rows:
        at.setdefault(job_id, {})[state] = moment.timestamp()
    claims, handovers = [], []
    for states in list(at.values())[1:]:  # the first song warms up
        if {"queued", "submitting", "succeeded", "delivered"} <= set(states):
            claims.append(states["submitting"] - states["queued"])
            handovers.append(states["delivered"] - states["succeeded"])
    return claims, handovers


async def measure(
    name: str,
    roles: Sequence[str],
    code: Path,
    server_url: str,
    tg: FakeTelegram,
    ws_url: str,
    songs: int,
    first: int,
) -> Row:
    row = Row(name, LABELS.get(code) or LABELS.setdefault(code, code_label(code)))
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database(server_url) as database_url:
            env = bot_env(code, Path(tmp) / "data", database_url, tg, ws_url)
            async with bots(roles, env, Path(tmp)):
                polls = len(tg.calls_to("getUpdates"))
                await tg.wait_until(
                    lambda: len(tg.calls_to("getUpdates")) > polls,
                    what="the adapter polling",
                    timeout=START_TIMEOUT,
                )
                await one_song(tg, first)  # not counted: every process warms up
                for n in range(1, songs + 1):
                    row.latencies.append(await one_song(tg, first + n))
            row.claims, row.handovers = await job_timings(database_url)
    c.console.print(f"  {name} ({row.code}): {', '.join(f'{x:.2f}' for x in row.latencies)}")
    return row


def code_label(code: Path) -> str:
    found = subprocess.run(
        ["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    if found.returncode == 0 and code == c.ROOT:
        dirty = subprocess.run(
            ["git", "-C", str(code), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return found.stdout.strip() + ("+changes" if dirty else "")
    return code.name


def cells(row: Row) -> list[str]:
    def spread(values: list[float]) -> str:
        if not values:
            return "-"
        return f"{statistics.median(values):.2f} / {max(values):.2f}"

    return [
        f"{row.name} ({row.code})",
        str(len(row.latencies)),
        f"{row.median:.2f}",
        f"{min(row.latencies):.2f} – {max(row.latencies):.2f}",
        spread(row.claims),
        spread(row.handovers),
    ]


async def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    c.warm_fake_audio(DURATION)
    codes = [c.ROOT] + ([Path(args.baseline_code).resolve()] if args.baseline_code else [])
    pairs: list[tuple[Row, Row]] = []
    async with (
        FakeWaveSpeed(time_scale=1.0, api_key=c.WAVESPEED_KEY) as ws,
        FakeTelegram(token=TOKEN, bot_username="AceJamBot", time_scale=1.0) as tg,
    ):
        ws.runtime = UPSTREAM_SECONDS
        first = 0
        for code in codes:
            one = await measure(
                "one process", ["all"], code, args.postgres, tg, ws.base_url, args.songs, first
            )
            first += args.songs + 1
            split = await measure(
                "split",
                ["adapters", "worker"],
                code,
                args.postgres,
                tg,
                ws.base_url,
                args.songs,
                first,
            )
            first += args.songs + 1
            pairs.append((one, split))
    c.table(
        f"/song → track, {args.songs} songs of {DURATION} s, upstream {UPSTREAM_SECONDS:.0f} s, "
        "PostgreSQL (real seconds)",
        ["deployment", "songs", "median", "range", "claim p50 / max", "hand-over p50 / max"],
        [cells(row) for pair in pairs for row in pair],
    )
    for one, split in pairs:
        added = split.median - one.median
        met = added <= GOAL_ADDED_SECONDS
        c.console.print(
            f"goal ({split.code}): split adds ≤ {GOAL_ADDED_SECONDS:.0f} s to the median: "
            f"{split.median:.2f} − {one.median:.2f} = {added:+.2f} s: "
            + ("[green]met[/green]" if met else "[red]missed[/red]")
        )
    c.console.print(
        "claim = queued → claimed by a worker; hand-over = succeeded → delivered (the upload "
        "included), both from job_events. Lease round: 10 s (LEASE_SECONDS 30, the default).\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 songs per row")
    parser.add_argument("--songs", type=int, help="songs per row (default 10; quick 4)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEST_DATABASE_URL"),
        help="a PostgreSQL server (postgresql+asyncpg://...); a database is made per row",
    )
    parser.add_argument("--baseline-code", help="a source tree to measure side by side")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("--postgres URL (or TEST_DATABASE_URL) is needed")
    args.songs = args.songs or (4 if args.quick else 10)
    c.header(
        "bench/split_latency.py: /song → track, split deployment vs one process",
        "real time; each row its own processes and a fresh database on the same server",
    )
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
