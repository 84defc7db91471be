"""Jobs per second with one and with two worker processes on the same PostgreSQL.

    .venv/bin/python bench/multi_worker.py [--quick] [--jobs N] [--workers 1 2]
                                           [--postgres URL] [--runtime S]
                                           [--concurrency N] [--poll-scale F]

Each row is a fresh database on the PostgreSQL server given (``--postgres``, else
``TEST_DATABASE_URL``). This process queues N songs (platform ``cli``, as `acejam generate`
does: they end at ``succeeded``, with no chat to deliver to) through ``GenerationService``,
then starts K ``python -m bot run --role worker`` processes at once, as a deployment would
run them. Each song is claimed, sent to a loopback WaveSpeed (its own process) that takes
``--runtime`` seconds per song, polled, downloaded and probed.

The concurrency limit (``WAVESPEED_MAX_CONCURRENCY``, shared by every worker) is 400 by
default, so the backend is not the limit: the workers and the database are. (At 100, a
fast machine's workers fill it: jobs/s then stops at 100 ÷ the time a song is in flight,
however many workers there are; the second table shows that time.)

*jobs/s* counts the middle 80 % of the songs (10th to 90th finish, from ``jobs.finished_at``),
so the processes' start and the last stragglers do not count. CPU per job is user+system
time of the worker processes, of the PostgreSQL server's processes (when this user can read
them in /proc) and of the fake, over the whole run, divided by N. The goal (issue #18): two
workers finish at least 1.5× the jobs per second of one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as c
from _fake_server import ServerProcess
from split_latency import fresh_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import open_core
from bot.domain import Destination
from bot.service import Accepted, Requester

DURATION = 5  # WaveSpeed's shortest song
USERS = 50
GOAL_SPEEDUP = 1.5
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    workers: int
    jobs: int
    rate: float  # jobs/s over the middle 80 %
    wall: float  # workers started → last song finished
    worker_cpu: float  # seconds, all worker processes
    db_cpu: float  # seconds, the PostgreSQL server's processes (nan: not readable)
    fake_cpu: float
    claims_per_job: float
    queued_left: int
    idle: float  # share of the machine's CPU time idle during the run (all cores)
    phases: dict[str, float]  # median seconds between states, and in flight (phase_medians)


def fakes_cpu(fakes: list[ServerProcess]) -> float:
    return sum(fake.cpu_now() for fake in fakes)


def proc_cpu(pid: int) -> float:
    """user+system seconds of a process (and its reaped children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICKS


def machine_times() -> tuple[float, float]:
    """(idle, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return float(fields[3] + fields[4]), float(sum(fields[:8]))


def postgres_cpu() -> float:
    """CPU seconds of every process named postgres this user can see (nan if none)."""
    total, seen = 0.0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if (entry / "comm").read_text().strip() == "postgres":
                total += proc_cpu(int(entry.name))
                seen = True
    return total if seen else float("nan")


def worker_env(
    data_dir: Path, database_url: str, base_url: str, poll_scale: float, concurrency: int
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "DISCORD_", "WAVESPEED_", "ACESTEP_", "DATABASE_"))
    }
    env.update(
        BACKEND="wavespeed",
        WAVESPEED_API_KEY=c.WAVESPEED_KEY,
        WAVESPEED_BASE_URL=base_url,
        WAVESPEED_MAX_CONCURRENCY=str(concurrency),
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        # WaveSpeed asks for 2 s between polls: scaled to 0.1 s, so a song is seen done
        # soon after the fake finishes it (the politeness interval is policy, not cost).
        POLL_TIME_SCALE=str(poll_scale),
        LOG_LEVEL="WARNING",
        QUOTA_SECONDS_PER_DAY=str(10**9),
        MAX_ACTIVE_JOBS_PER_USER=str(10**6),
        MAX_ACTIVE_JOBS_PER_CHAT=str(10**6),
    )
    return env


async def queue_songs(data_dir: Path, database_url: str, base_url: str, n: int) -> None:
    settings = c.settings_for("wavespeed", data_dir, base_url, database_url=database_url)
    async with open_core(settings) as core:  # migrates the fresh database too
        for i in range(n):
            who = Requester("cli", f"user-{i % USERS}")
            request = core.service.validate(tags=f"bench {i}, lo-fi", duration=DURATION)
            outcome = await core.service.submit(
                who, Destination("cli", "local", who.user_id), request, enforce_quota=False
            )
            if not isinstance(outcome, Accepted):
                raise RuntimeError(f"refused: {outcome}")


@contextlib.asynccontextmanager
async def workers(envs: list[dict[str, str]], cwd: Path) -> AsyncIterator[list[int]]:
    procs: list[asyncio.subprocess.Process] = []
    try:
        for n, env in enumerate(envs):
            log = (cwd / f"worker-{n}.log").open("w")
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", "run", "--role", "worker",
                    env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        yield [p.pid for p in procs]
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


async def measure(args: argparse.Namespace, count: int, fakes: list[ServerProcess]) -> Row:
    """``count`` workers, each sending its songs to ``fakes[i % len(fakes)]``."""
    used = fakes[:count]
    n = args.jobs
    async with fresh_database(args.postgres) as url:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp) / "data"
            await queue_songs(data_dir, url, fakes[0].base_url, n)
            engine = create_async_engine(url)
            try:
                fake0, db0, start = fakes_cpu(used), postgres_cpu(), time.monotonic()
                idle0, total0 = machine_times()
                envs = [
                    worker_env(
                        data_dir,
                        url,
                        fakes[i % len(fakes)].base_url,
                        args.poll_scale,
                        args.concurrency,
                    )
                    for i in range(count)
                ]
                async with workers(envs, Path(tmp)) as pids:
                    cpu: dict[int, float] = dict.fromkeys(pids, 0.0)
                    deadline = start + args.timeout
                    while True:
                        for pid in pids:  # the last reading before they exit
                            with contextlib.suppress(OSError):
                                cpu[pid] = proc_cpu(pid)
                        async with engine.connect() as conn:
                            left = await conn.scalar(
                                text("SELECT count(*) FROM jobs WHERE finished_at IS NULL")
                            )
                        if not left or time.monotonic() > deadline:
                            break
                        await asyncio.sleep(0.2)
                    wall = time.monotonic() - start
                idle1, total1 = machine_times()
                worker_cpu, db_cpu = sum(cpu.values()), postgres_cpu() - db0
                fake_cpu = fakes_cpu(used) - fake0
                async with engine.connect() as conn:
                    finished = [
                        row[0].timestamp()
                        for row in await conn.execute(
                            text(
                                "SELECT finished_at FROM jobs WHERE state = 'succeeded' "
                                "ORDER BY finished_at"
                            )
                        )
                    ]
                    claims = await conn.scalar(
                        text("SELECT count(*) FROM job_events WHERE to_state = 'submitting'")
                    )
                    phases = await phase_medians(conn)
            finally:
                await engine.dispose()
    low, high = int(len(finished) * 0.1), int(len(finished) * 0.9) - 1
    rate = (high - low) / (finished[high] - finished[low]) if high > low else float("nan")
    return Row(
        count,
        n,
        rate,
        wall,
        worker_cpu,
        db_cpu,
        fake_cpu,
        (claims or 0) / n,
        int(left or 0),
        (idle1 - idle0) / max(total1 - total0, 1.0),
        phases,
    )


PHASES = ("submitting", "submitted", "running", "succeeded")


async def phase_medians(conn: Any) -> dict[str, float]:
    """Median seconds from each state to the next one a job reached (job_events), and in
    flight as a whole (claimed → succeeded): with the shared concurrency limit, jobs/s can't
    pass limit ÷ time in flight, however many workers there are."""
    at: dict[int, dict[str, float]] = {}
    rows = await conn.execute(text("SELECT job_id, to_state, at FROM job_events"))
    for job_id, state, when in rows:
        at.setdefault(job_id, {})[state] = when.timestamp()
    spans: dict[str, list[float]] = {}
    for seen in at.values():
        reached = [p for p in PHASES if p in seen]
        for here, there in itertools.pairwise(reached):
            spans.setdefault(f"{here}→{there}", []).append(seen[there] - seen[here])
        if len(reached) > 1:
            spans.setdefault("in flight", []).append(seen[reached[-1]] - seen[reached[0]])
    return {name: statistics.median(values) for name, values in spans.items()}


async def run(args: argparse.Namespace) -> None:
    c.header(
        "bench/multi_worker.py: jobs/s with 1 and 2 `acejam run --role worker` processes",
        f"PostgreSQL {args.postgres.rsplit('@', 1)[-1]}; a fresh database per row; "
        f"{args.jobs} songs queued first; loopback WaveSpeed (own process), "
        f"{args.runtime:g} s per song",
    )
    rows: list[Row] = []
    fake_args = ("--runtime", str(args.runtime), "--time-scale", "1")
    with contextlib.ExitStack() as stack:
        fakes = [
            stack.enter_context(ServerProcess("wavespeed", *fake_args))
            for _ in range(max(args.workers) if args.fake_per_worker else 1)
        ]
        for count in args.workers:
            rows.append(await measure(args, count, fakes))
    base = rows[0].rate if rows else float("nan")
    table_rows = []
    for row in rows:
        n = row.jobs
        speedup = row.rate / base
        table_rows.append(
            [
                f"{row.workers} worker{'s' if row.workers > 1 else ''}",
                str(n),
                c.fmt(row.wall, 1),
                c.fmt(row.rate, 1),
                f"{speedup:.2f}×",
                c.fmt(1000 * row.worker_cpu / n, 1),
                c.fmt(1000 * row.db_cpu / n, 1),
                c.fmt(1000 * row.fake_cpu / n, 1),
                c.fmt(row.claims_per_job, 2),
                str(row.queued_left),
                f"{100 * row.idle:.0f} %",
                "-" if row.workers == rows[0].workers else c.verdict(speedup >= GOAL_SPEEDUP),
            ]
        )
    c.table(
        "Throughput by worker processes (PostgreSQL)",
        [
            "workers",
            "jobs",
            "wall s",
            "jobs/s (middle 80 %)",
            "vs first row",
            "worker CPU ms/job",
            "PostgreSQL CPU ms/job",
            "fake CPU ms/job",
            "claims/job",
            "unfinished",
            "machine idle",
            f"≥ {GOAL_SPEEDUP}×?",
        ],
        table_rows,
    )
    c.table(
        "Where a song's time in flight goes (median seconds)",
        ["workers", *rows[0].phases] if rows else [],
        [[str(r.workers), *(c.fmt(v, 3) for v in r.phases.values())] for r in rows],
    )
    total = [(r.worker_cpu + (r.db_cpu if r.db_cpu == r.db_cpu else 0) + r.fake_cpu) for r in rows]
    c.console.print(
        f"goal: {args.workers[-1]} workers ≥ {GOAL_SPEEDUP}× the jobs/s of {args.workers[0]}. "
        f"{os.cpu_count()} CPUs; all processes (workers, PostgreSQL, fake) share them: CPU "
        f"seconds used per row {', '.join(f'{t:.1f}' for t in total)}, i.e. the rate at "
        "which the machine runs out of cores is CPU s/job ÷ cores. 'machine idle' is the "
        "share of all cores' time nobody used during the run (other programs included): "
        "near 0 %, a second worker has no core to run on.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 songs instead of 1,000")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runtime", type=float, default=0.5, help="seconds per song upstream")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=400,
        help="WAVESPEED_MAX_CONCURRENCY, shared by every worker (high: not the limit)",
    )
    parser.add_argument(
        "--fake-per-worker",
        action="store_true",
        help="a WaveSpeed fake process per worker (the real service is not one process)",
    )
    parser.add_argument(
        "--poll-scale", type=float, default=0.05, help="POLL_TIME_SCALE of the workers"
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"))
    args = parser.parse_args()
    if not args.postgres:
        parser.error("--postgres URL (or TEST_DATABASE_URL) is needed")
    args.jobs = args.jobs or (200 if args.quick else 1000)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
