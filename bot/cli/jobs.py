"""`acejam jobs` (recent songs, for people or scripts, by state and age), `jobs show` (one
job's timeline), `jobs export` and `db upgrade`."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich import box
from rich.table import Column, Table

from bot.app import open_core
from bot.backends.acestep_routing import server_of
from bot.cli.common import console, db_app, err_console, jobs_app, load, run_async
from bot.config import Settings
from bot.domain import Job, JobState, Task
from bot.messages import lineage
from storage.jobs import SqlJobStore
from storage.jobs.events import Transition

SINCE = re.compile(r"([0-9]+)\s*([mhdw])")
SINCE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
UPLOAD = "the user's audio"  # an edit of audio a user sent, as the operator reads it


def parse_since(text: str) -> timedelta:
    """``30m``, ``12h``, ``1d``, ``2w`` (minutes, hours, days, weeks)."""
    match = SINCE.fullmatch(text.strip().lower())
    if match is None:
        raise typer.BadParameter("give a number and m, h, d or w: 30m, 12h, 1d, 2w")
    return timedelta(**{SINCE_UNITS[match.group(2)]: int(match.group(1))})


def parse_states(names: list[str]) -> set[JobState] | None:
    known = {state.value: state for state in JobState}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)}: not one of {', '.join(known)}")
    return {known[name] for name in names} or None


@jobs_app.callback(invoke_without_command=True)
def jobs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many recent jobs.")] = 20,
    state: Annotated[
        list[str],
        typer.Option(help="Only jobs in this state (queued, failed, delivered, ...); repeatable."),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    since: Annotated[
        str | None, typer.Option(help="Only jobs made within this long: 30m, 12h, 1d, 2w.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON list, whole values, for scripts.")
    ] = False,
) -> None:
    """Recent jobs and their states; `acejam jobs show ID` for one job's timeline."""
    if ctx.invoked_subcommand is not None:
        return
    states = parse_states(state)
    cutoff = datetime.now(UTC) - parse_since(since) if since else None
    settings = load()
    rows = run_async(_recent_jobs(settings, limit, states, cutoff))
    if as_json:
        found = [_job_json(job) | _server_json(job, settings) for job in rows]
        typer.echo(json.dumps(found, ensure_ascii=False, indent=2))
    else:
        console.print(_jobs_table(rows, settings))


async def _recent_jobs(
    settings: Settings, limit: int, states: set[JobState] | None, cutoff: datetime | None
) -> list[Job]:
    async with open_core(settings) as core:
        rows = await core.store.list_jobs(limit=limit, states=states)
    # Newest first, and ids grow with time: the newest ``limit`` of the window are the
    # newest ``limit`` overall that are not older than it.
    return [job for job in rows if cutoff is None or _aware(job.created_at) >= cutoff]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _seed_of(job: Job) -> int | None:
    """The seed that makes this song again: the one used, else the one asked for."""
    if job.seed_used is not None:
        return job.seed_used
    return job.request.seed if job.request.seed >= 0 else None


def _tags_of(job: Job) -> str:
    """The tags, after where an edit came from: "(remix of #7) bossa nova"."""
    origin = lineage(job, own_audio=UPLOAD)
    return f"({origin}) {job.request.tags}" if origin else job.request.tags


def _server_of(job: Job, settings: Settings) -> str | None:
    """Which server of an ACE-Step pool made the job, by its remote id ("3dc776
    (gpu1:8001)"; docs/operations.md); None without a pool or before a submit."""
    urls = settings.acestep_urls
    if job.backend != "acestep" or len(urls) < 2 or not job.remote_id:
        return None
    found = server_of(job.remote_id, urls)
    if found is None:
        return "a server no longer in ACESTEP_API_URL"
    key, url = found
    return f"{key} ({urlsplit(url).netloc})"


def _server_json(job: Job, settings: Settings) -> dict[str, object]:
    """``server``: the pool's server that made it (only where a pool runs)."""
    if settings.backend_name != "acestep" or len(settings.acestep_urls) < 2:
        return {}
    found = server_of(job.remote_id, settings.acestep_urls) if job.backend == "acestep" else None
    return {"server": None if found is None else {"key": found[0], "url": found[1]}}


def _jobs_table(rows: list[Job], settings: Settings) -> Table:
    """id, state and seed are never cut (the seed is what makes a song again): in a narrow
    terminal or a pipe (80 columns) the tags and details wrap instead. Where a pool of
    ACE-Step servers runs, a last column says which one made each song."""
    pool = settings.backend_name == "acestep" and len(settings.acestep_urls) > 1
    cells = [
        (
            str(job.id),
            job.state.value,
            str(seed) if (seed := _seed_of(job)) is not None else "random",
            f"{job.request.duration} s",
            job.destination.platform,
            job.created_at.strftime("%Y-%m-%d %H:%M"),
            _tags_of(job),
            job.error_code or (Path(job.audio_path).name if job.audio_path else ""),
            *([_server_of(job, settings) or ""] if pool else []),
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
        *([Column("server", ratio=1, overflow="fold")] if pool else []),
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
        "task": job.request.task.value,
        "parent_id": job.parent_id,
        "lineage": lineage(job, own_audio=UPLOAD),
        "edit": _edit_json(job),
        "backend": job.backend,
        "platform": job.destination.platform,
        "chat_id": job.destination.chat_id,
        "user_id": job.destination.user_id,
        "created_at": when(job.created_at),
        "finished_at": when(job.finished_at),
        "error_code": job.error_code,
        "error_message": job.error_message,
        "cost_usd": job.cost_usd,  # what the upstream billed, refunded quota or not
        "remote_id": job.remote_id,
        "audio_path": job.audio_path,
        "audio_format": job.audio_format,
        "audio_duration": job.audio_duration,
    }


def _edit_json(job: Job) -> dict[str, object] | None:
    edit = job.request.edit
    if edit is None:
        return None
    return {
        "source_path": edit.source_path,
        "source_seconds": edit.source_seconds,
        "own_audio": edit.own_audio,
        "seconds": edit.seconds,
        "at_start": edit.at_start,
        "start": edit.start,
        "end": edit.end,
        "strength": edit.strength,
        "output_seconds": edit.output_seconds,
    }


def _edit_line(job: Job) -> str | None:
    """What an edit did, on one line: "edit: extended from #12, 30 s added at the end"."""
    edit = job.request.edit
    if edit is None:
        return None
    done = {
        Task.EXTEND: f"{edit.seconds} s added at the {'start' if edit.at_start else 'end'}",
        Task.REMIX: f"strength {edit.strength:g}",
        Task.REPAINT: f"{edit.start or 0:g} s to {edit.end or 0:g} s made again",
    }[edit.task]
    return (
        f"edit: {lineage(job, own_audio=UPLOAD)}, {done} "
        f"(source {edit.source_seconds:g} s: {edit.source_path})"
    )


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[int, typer.Argument(help="The job's id (see `acejam jobs`).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="The job and its timeline as one JSON object.")
    ] = False,
) -> None:
    """One job: what was asked, where it went, and its timeline (every state change with
    its time and detail, the upstream's id and the error)."""
    settings = load()
    found = run_async(_job_and_timeline(settings, job_id))
    if found is None:
        err_console.print(f"No job {job_id}.")
        raise typer.Exit(1)
    job, timeline = found
    if as_json:
        events = [
            {
                "at": step.at.isoformat(),
                "from": step.from_state,
                "to": step.to_state,
                "detail": step.detail,
            }
            for step in timeline
        ]
        shown = _job_json(job) | _server_json(job, settings) | {"events": events}
        typer.echo(json.dumps(shown, ensure_ascii=False, indent=2))
        return
    for line in _job_lines(job, timeline, _server_of(job, settings)):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


async def _job_and_timeline(settings: Settings, job_id: int) -> tuple[Job, list[Transition]] | None:
    async with open_core(settings) as core:
        store = core.store
        # open_core always stores in SQL; the timeline is read from the audit trail there.
        assert isinstance(store, SqlJobStore)
        job = await store.get(job_id)
        return (job, await store.timeline(job_id)) if job is not None else None


def _job_lines(job: Job, timeline: list[Transition], server: str | None = None) -> list[str]:
    where = job.destination
    seed = _seed_of(job)
    lines = [
        f"job {job.id}: {job.state.value}",
        f"asked: {job.request.tags} | {job.request.duration} s | seed "
        f"{seed if seed is not None else 'random'}",
        f"from: {where.platform} chat {where.chat_id}, user {where.user_id}",
        f"backend: {job.backend}, upstream id {job.remote_id or '(none yet)'}",
        *([f"server: {server}"] if server else []),
    ]
    if (edit := _edit_line(job)) is not None:
        lines.append(edit)
    lines += [
        f"take {take.number}: {take.state.value}, upstream id {take.remote_id or '(none)'}"
        for take in job.takes
    ]
    if job.error_code or job.error_message:
        lines.append(f"error: {job.error_code or '?'}: {job.error_message or ''}".rstrip(": "))
    if job.audio_path:
        lines.append(f"audio: {job.audio_path}")
    lines.append("timeline:")
    for step in timeline:
        moved = f"{step.from_state} → {step.to_state}" if step.from_state else step.to_state
        detail = f"  ({step.detail})" if step.detail else ""
        lines.append(f"  {step.at.strftime('%Y-%m-%d %H:%M:%S')}  {moved}{detail}")
    if not timeline:
        lines.append("  (pruned after EVENT_RETENTION_DAYS)")
    return lines


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
