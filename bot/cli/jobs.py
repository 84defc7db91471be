"""`acejam jobs` (recent songs, for people or scripts), `jobs export` and `db upgrade`."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Column, Table

from bot.app import open_core
from bot.cli.common import console, db_app, err_console, jobs_app, load, run_async
from bot.config import Settings
from bot.domain import Job


@jobs_app.callback(invoke_without_command=True)
def jobs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many recent jobs.")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON list, whole values, for scripts.")
    ] = False,
) -> None:
    """Recent jobs and their states."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load()
    rows = run_async(_recent_jobs(settings, limit))
    if as_json:
        typer.echo(json.dumps([_job_json(job) for job in rows], ensure_ascii=False, indent=2))
    else:
        console.print(_jobs_table(rows))


async def _recent_jobs(settings: Settings, limit: int) -> list[Job]:
    async with open_core(settings) as core:
        return list(await core.store.list_jobs(limit=limit))


def _seed_of(job: Job) -> int | None:
    """The seed that makes this song again: the one used, else the one asked for."""
    if job.seed_used is not None:
        return job.seed_used
    return job.request.seed if job.request.seed >= 0 else None


def _jobs_table(rows: list[Job]) -> Table:
    """id, state and seed are never cut (the seed is what makes a song again): in a narrow
    terminal or a pipe (80 columns) the tags and details wrap instead."""
    cells = [
        (
            str(job.id),
            job.state.value,
            str(seed) if (seed := _seed_of(job)) is not None else "random",
            f"{job.request.duration} s",
            job.destination.platform,
            job.created_at.strftime("%Y-%m-%d %H:%M"),
            job.request.tags,
            job.error_code or (Path(job.audio_path).name if job.audio_path else ""),
        )
        for job in rows
    ]

    def whole(header: str, index: int) -> Column:
        widest = max([len(header), *(len(row[index]) for row in cells)])
        return Column(header, no_wrap=True, min_width=widest)

    table = Table(
        whole("id", 0),
        whole("state", 1),
        whole("seed", 2),
        whole("length", 3),
        whole("platform", 4),
        Column("created", min_width=10),  # the time goes under the date if need be
        Column("tags", ratio=3, overflow="fold"),
        Column("detail", ratio=1, overflow="fold"),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for row in cells:
        table.add_row(*row)
    return table


def _job_json(job: Job) -> dict[str, object]:
    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": job.id,
        "state": job.state.value,
        "seed": _seed_of(job),
        "requested_seed": job.request.seed,
        "duration": job.request.duration,
        "tags": job.request.tags,
        "lyrics": job.request.lyrics,
        "backend": job.backend,
        "platform": job.destination.platform,
        "chat_id": job.destination.chat_id,
        "user_id": job.destination.user_id,
        "created_at": when(job.created_at),
        "finished_at": when(job.finished_at),
        "error_code": job.error_code,
        "error_message": job.error_message,
        "cost_usd": job.cost_usd,  # what the upstream billed, refunded quota or not
        "audio_path": job.audio_path,
        "audio_format": job.audio_format,
        "audio_duration": job.audio_duration,
    }


@jobs_app.command("export")
def jobs_export(
    job_id: Annotated[int, typer.Argument(help="The job's id (see `acejam jobs`).")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Where to write it.")
    ] = None,
) -> None:
    """Copy a job's full-length audio out of DATA_DIR (e.g. when a chat only got a preview)."""
    settings = load()

    async def _find() -> Job | None:
        async with open_core(settings) as core:
            return await core.store.get(job_id)

    job = run_async(_find())
    if job is None or job.audio_path is None or not Path(job.audio_path).exists():
        err_console.print(f"Job {job_id} has no audio on disk.")
        raise typer.Exit(1)
    source = Path(job.audio_path)
    target = output or Path.cwd() / f"acejam-{job.id}{source.suffix}"
    shutil.copyfile(source, target)
    console.print(f"file: {target}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (also done at every start)."""
    settings = load()

    async def _upgrade() -> None:
        async with open_core(settings):
            pass

    run_async(_upgrade())
    console.print("database is up to date")
