"""`acejam run` (the bot, or one role of it) and `acejam generate` (one song, here)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bot.app import Core, enabled_adapters, install_signal_handlers, open_core, run_bot
from bot.cli.common import app, console, err_console, load, run_async
from bot.cli.first_run import first_run_hint
from bot.config import Settings
from bot.domain import FINAL_STATES, LOCAL_PLATFORM, Destination, Invalid, Job, JobState
from bot.ports import DeliveryReceipt, EventKind, JobEvent, TrackFile
from bot.service import Accepted, Requester


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
    settings = load()
    hint, stop = first_run_hint(
        settings,
        backend=role != "adapters",
        platforms=role != "worker" and not enabled_adapters(settings),
    )
    if hint and settings.log_format == "json":
        logging.getLogger("bot.cli").warning("%s", hint)  # a log shipper reads only JSON
    elif hint:
        err_console.print(hint, markup=False, highlight=False, soft_wrap=True)
    if stop:
        raise typer.Exit(2)
    run_async(run_bot(settings, role=role))  # type: ignore[arg-type]


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
    settings = load()
    lyrics = lyrics_file.read_text(encoding="utf-8") if lyrics_file else None
    raise typer.Exit(run_async(_generate(settings, tags, lyrics, duration, seed, output)))


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

    async def deliver(self, job: Job, tracks: Sequence[TrackFile]) -> DeliveryReceipt:
        # Local jobs end at SUCCEEDED and are never handed to a delivery; `generate`
        # copies the file itself.
        return DeliveryReceipt(message_id=str(tracks[0].path))


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
