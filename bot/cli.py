"""`acejam` command line: run, generate, jobs, db upgrade. Thin: it parses and prints."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import shutil
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from bot.admin import AdminService
from bot.app import Core, enabled_adapters, install_signal_handlers, open_core, run_bot
from bot.config import Settings, load_settings
from bot.domain import (
    EVERYWHERE,
    FINAL_STATES,
    LOCAL_PLATFORM,
    UNLIMITED,
    ChatRules,
    Destination,
    Invalid,
    Job,
    JobState,
)
from bot.errors import ConfigError
from bot.logs import setup_logging
from bot.ports import DeliveryReceipt, EventKind, JobEvent
from bot.service import Accepted, Done, Refused, Requester
from storage.rules import CHAT_RULE_FIELDS

app = typer.Typer(help="AceJam: make songs together in Discord and Telegram.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
jobs_app = typer.Typer(help="Recent jobs; `export` copies one's audio out.")
admin_app = typer.Typer(
    help="Operator controls: quotas, blocks, queue, usage.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
app.add_typer(admin_app, name="admin")
T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)

ENV_HINT = """\
No chat platform is configured, so AceJam only works through its queue.
Put one or both of these in .env (see .env.example) and run `acejam run` again:
  TELEGRAM_TOKEN=...   (from @BotFather)
  DISCORD_TOKEN=...    (from the Discord developer portal)"""


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        _stop_on_setting(exc)
    setup_logging(settings.log_level, settings.secrets())
    return settings


def _run_async(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, where a setting that only fails at start-up (a database that can't
    be opened) ends in the same one line as one that fails to parse."""
    try:
        return asyncio.run(main)
    except ConfigError as exc:
        _stop_on_setting(exc)


def _stop_on_setting(exc: ConfigError) -> NoReturn:
    # One line whatever the width: no markup, no highlighting, no wrapping.
    err_console.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2) from None


@app.command()
def run(
    role: Annotated[
        str,
        typer.Option(
            help="all: everything here; worker: only generate songs; adapters: only chat "
            "(run several workers beside one adapters process on a shared PostgreSQL)."
        ),
    ] = "all",
) -> None:
    """Run the bot: the generation worker plus every chat adapter whose token is set."""
    if role not in ("all", "worker", "adapters"):
        err_console.print("--role must be all, worker or adapters.")
        raise typer.Exit(2)
    settings = _settings()
    if role != "worker" and not enabled_adapters(settings):
        err_console.print(ENV_HINT)
    _run_async(run_bot(settings, role=role))  # type: ignore[arg-type]


@app.command()
def generate(
    tags: Annotated[str, typer.Option(help="Style tags, e.g. 'lo-fi, chill, rainy piano'.")],
    lyrics_file: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Lyrics text file.")
    ] = None,
    duration: Annotated[int | None, typer.Option(help="Length in seconds.")] = None,
    seed: Annotated[int, typer.Option(help="Seed; -1 for random.")] = -1,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Where to write it.")
    ] = None,
) -> None:
    """Make one song through the same queue and database, with a progress display."""
    settings = _settings()
    lyrics = lyrics_file.read_text(encoding="utf-8") if lyrics_file else None
    raise typer.Exit(_run_async(_generate(settings, tags, lyrics, duration, seed, output)))


class _ProgressDisplay:
    """The `cli` platform: shows job events as a rich progress bar."""

    platform = LOCAL_PLATFORM

    def __init__(self, progress: Progress, task_id: object) -> None:
        self._progress = progress
        self._task_id = task_id

    async def on_event(self, event: JobEvent) -> None:
        text = {
            EventKind.STARTED: "generating",
            EventKind.PROGRESS: event.job.progress_text or "generating",
            EventKind.SUCCEEDED: "downloaded",
            EventKind.FAILED: "failed",
            EventKind.CANCELLED: "cancelled",
        }.get(event.kind, event.kind.value)
        completed = (event.progress or 0.0) * 100 if event.kind == EventKind.PROGRESS else None
        if event.kind == EventKind.SUCCEEDED:
            completed = 100
        self._progress.update(self._task_id, description=text, completed=completed)  # type: ignore[arg-type]

    async def deliver(self, job: Job, audio: Path) -> DeliveryReceipt:
        # Local jobs end at SUCCEEDED and are never handed to a delivery; `generate`
        # copies the file itself.
        return DeliveryReceipt(message_id=str(audio))


async def _generate(
    settings: Settings,
    tags: str,
    lyrics: str | None,
    duration: int | None,
    seed: int,
    output: Path | None,
) -> int:
    stop = asyncio.Event()
    install_signal_handlers(stop)
    async with open_core(settings) as core:
        request = core.service.validate(tags=tags, lyrics=lyrics, duration=duration, seed=seed)
        if isinstance(request, Invalid):
            err_console.print(request.message)
            return 2
        user = getpass.getuser()
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err_console
        ) as progress:
            task_id = progress.add_task("queued", total=100)
            core.service.register_delivery(_ProgressDisplay(progress, task_id))
            outcome = await core.service.submit(
                Requester(LOCAL_PLATFORM, user, user, is_admin=True),
                Destination(
                    LOCAL_PLATFORM, "local", user, {"output": str(output) if output else None}
                ),
                request,
                enforce_quota=False,
            )
            if not isinstance(outcome, Accepted):
                err_console.print(outcome.message)
                return 2
            job_id = outcome.job.id
            worker = asyncio.create_task(core.worker.run(stop))
            try:
                job = await _wait_until_done(core, job_id, stop)
            finally:
                stop.set()
                await worker
    if job is None:
        err_console.print(f"Interrupted; job {job_id} goes on with the next `acejam run`.")
        return 130
    if job.state != JobState.SUCCEEDED or job.audio_path is None:
        err_console.print(f"Job {job.id} {job.state.value}: {job.error_message or job.error_code}")
        return 1
    source = Path(job.audio_path)
    target = output or Path.cwd() / f"acejam-{job.id}{source.suffix}"
    if output is not None and output.suffix.lower() != source.suffix.lower():
        err_console.print(f"Note: the engine made {source.suffix[1:]}; writing it as is.")
    shutil.copyfile(source, target)
    console.print(f"file: {target}")
    console.print(f"seed: {job.seed_used if job.seed_used is not None else 'unknown'}")
    console.print(f"duration: {job.audio_duration:.1f} s")
    return 0


async def _wait_until_done(core: Core, job_id: int, stop: asyncio.Event) -> Job | None:
    done_states = FINAL_STATES | {JobState.SUCCEEDED}
    while not stop.is_set():
        job = await core.store.get(job_id)
        if job is not None and job.state in done_states:
            return job
        async with core.worker.finished:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(core.worker.finished.wait(), timeout=0.5)
    return None


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
    settings = _settings()
    rows = _run_async(_recent_jobs(settings, limit))
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
    settings = _settings()

    async def _find() -> Job | None:
        async with open_core(settings) as core:
            return await core.store.get(job_id)

    job = _run_async(_find())
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
    settings = _settings()

    async def _upgrade() -> None:
        async with open_core(settings):
            pass

    _run_async(_upgrade())
    console.print("database is up to date")


# ---------------------------------------------------------------- admin
Platform = Annotated[str, typer.Option("--platform", help="telegram or discord.")]
Scope = Annotated[
    str, typer.Option("--scope", help="Guild id (Discord) or chat id (Telegram); * = everywhere.")
]


def _with_admin(settings: Settings, action: Callable[[AdminService], Awaitable[T]]) -> T:
    async def _run() -> T:
        async with open_core(settings) as core:
            return await action(core.admin)

    return _run_async(_run())


@admin_app.command("quota")
def admin_quota(
    platform: Platform,
    user: Annotated[str, typer.Option("--user", help="The user's platform id.")],
    value: Annotated[str, typer.Argument(help="Seconds per day, 'unlimited' or 'default'.")],
    scope: Scope = EVERYWHERE,
) -> None:
    """Set one user's daily quota (in one chat, or everywhere)."""
    settings = _settings()
    seconds = _parse_quota(value)
    _with_admin(settings, lambda admin: admin.set_user_quota(platform, user, scope, seconds))
    console.print(
        f"{platform} user {user}: quota {value} ({'everywhere' if scope == EVERYWHERE else scope})"
    )


def _parse_quota(value: str) -> int | None:
    word = value.strip().lower()
    if word == "default":
        return None
    if word == "unlimited":
        return UNLIMITED
    if word.isdigit():
        return int(word)
    err_console.print("The quota is a number of seconds, 'unlimited' or 'default'.")
    raise typer.Exit(2)


@admin_app.command("block")
def admin_block(
    platform: Platform,
    user: Annotated[str, typer.Option("--user", help="The user's platform id.")],
    scope: Scope = EVERYWHERE,
    note: Annotated[str | None, typer.Option(help="Why (kept for other admins).")] = None,
) -> None:
    """Stop a user from making songs."""
    settings = _settings()
    _with_admin(settings, lambda admin: admin.set_blocked(platform, user, scope, True, note))
    console.print(f"{platform} user {user} is blocked")


@admin_app.command("unblock")
def admin_unblock(
    platform: Platform,
    user: Annotated[str, typer.Option("--user", help="The user's platform id.")],
    scope: Scope = EVERYWHERE,
) -> None:
    """Let a blocked user make songs again."""
    settings = _settings()
    _with_admin(settings, lambda admin: admin.set_blocked(platform, user, scope, False))
    console.print(f"{platform} user {user} is unblocked")


@admin_app.command("queue")
def admin_queue(
    platform: Annotated[str | None, typer.Option(help="Only this platform.")] = None,
    scope: Annotated[str | None, typer.Option(help="Only this guild/chat.")] = None,
) -> None:
    """Every unfinished job, in the order they will be served."""
    settings = _settings()
    entries = _with_admin(settings, lambda admin: admin.queue(platform, scope))
    table = Table("id", "position", "state", "platform", "scope", "user", "duration", "tags")
    for entry in entries:
        job = entry.job
        table.add_row(
            str(job.id),
            str(entry.position or "-"),
            job.state.value,
            job.destination.platform,
            job.destination.scope,
            job.destination.user_id,
            f"{job.request.duration} s",
            job.request.tags[:40],
        )
    console.print(table)


@admin_app.command("cancel")
def admin_cancel(job_id: Annotated[int, typer.Argument(help="The job to cancel.")]) -> None:
    """Cancel any job; its owner gets the quota back."""
    settings = _settings()
    operator = Requester(LOCAL_PLATFORM, getpass.getuser(), is_admin=True)

    async def _cancel(admin: AdminService) -> Done | Refused:
        job = await admin.job(job_id)
        if job is None:
            return Refused("No such job.", "not_found")
        as_admin = Requester(
            job.destination.platform, operator.user_id, is_admin=True, admin_scope=EVERYWHERE
        )
        return await admin.cancel(job_id, as_admin)

    outcome = _with_admin(settings, _cancel)
    if isinstance(outcome, Refused):
        err_console.print(outcome.message)
        raise typer.Exit(1)
    console.print(f"job {job_id} cancelled")


@admin_app.command("usage")
def admin_usage(
    days: Annotated[int, typer.Option(help="How many days back.")] = 30,
    platform: Annotated[str | None, typer.Option(help="Only this platform.")] = None,
    scope: Annotated[str | None, typer.Option(help="Only this guild/chat.")] = None,
) -> None:
    """Per user: jobs, seconds of audio, cost and GPU time."""
    settings = _settings()
    rows = _with_admin(
        settings, lambda admin: admin.usage(days=days, platform=platform, scope_id=scope)
    )
    table = Table("platform", "user", "name", "jobs", "seconds", "cost (USD)", "GPU s", "last job")
    for row in rows:
        table.add_row(
            row.platform,
            row.user_id,
            row.display_name or "",
            str(row.jobs),
            str(row.seconds),
            f"{row.cost_usd:.4f}",
            f"{row.gpu_seconds:.1f}",
            row.last_job_at.strftime("%Y-%m-%d %H:%M") if row.last_job_at else "",
        )
    console.print(table)


@admin_app.command("settings")
def admin_settings(
    platform: Platform,
    scope: Scope,
    changes: Annotated[
        list[str] | None,
        typer.Argument(help="name=value pairs, e.g. max_duration=120 blocked_words=a,b"),
    ] = None,
) -> None:
    """Show a guild's/chat's settings, or change some (name=value ...)."""
    settings = _settings()
    try:
        parsed = dict(_parse_setting(item) for item in changes or [])
    except ValueError as exc:
        err_console.print(str(exc))
        raise typer.Exit(2) from None

    async def _apply(admin: AdminService) -> ChatRules:
        if parsed:
            return await admin.update_chat_rules(platform, scope, **parsed)
        return await admin.chat_rules(platform, scope)

    try:
        rules = _with_admin(settings, _apply)
    except ValueError as exc:
        err_console.print(str(exc))
        raise typer.Exit(2) from None
    for name, value in vars(rules).items():
        console.print(f"{name} = {value}")


def _parse_setting(item: str) -> tuple[str, object]:
    name, sep, raw = item.partition("=")
    if not sep:
        raise ValueError(f"Expected name=value, got {item!r}.")
    name = name.strip()
    raw = raw.strip()
    if name not in CHAT_RULE_FIELDS:
        raise ValueError(
            f"unknown chat setting {name!r}; known: {', '.join(sorted(CHAT_RULE_FIELDS))}"
        )
    if name in {"allowed_channels", "blocked_words"}:
        return name, tuple(w.strip() for w in raw.split(",") if w.strip())
    if name == "role_quotas":  # role=seconds;role=seconds
        pairs = [p.split(":", 1) for p in raw.split(",") if p.strip()]
        return name, {k.strip(): int(v) for k, v in pairs}
    if name in {"others_may_press", "allow_nsfw"}:
        return name, raw.lower() in {"1", "true", "yes", "on"}
    if raw.lower() in {"", "none", "default"}:
        return name, None
    if name == "monthly_budget_usd":
        return name, float(raw)
    if not raw.lstrip("-").isdigit():
        raise ValueError(f"{name} takes a whole number.")
    return name, int(raw)
