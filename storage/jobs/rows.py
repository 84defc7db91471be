"""What the parts of the job store share: a row as the core's :class:`~bot.domain.Job`, and
small helpers for the SQL."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import (
    Controls,
    Destination,
    Edit,
    GenerationRequest,
    Job,
    JobId,
    JobState,
    Take,
    TakeState,
    Task,
    UserId,
)
from storage.models import JobRow, UserRow

# The jobs table itself, for Core statements (built once, cheaper to run than ORM ones).
JOBS = cast(Table, JobRow.__table__)
USERS = cast(Table, UserRow.__table__)


def row_to_job(row: JobRow | Row[Any]) -> Job:
    """A job from a mapped row or a Core row of all the table's columns."""
    return Job(
        id=JobId(row.id),
        user_id=UserId(row.user_id),
        request=GenerationRequest(
            tags=row.tags,
            lyrics=row.lyrics,
            duration=row.duration,
            seed=row.seed,
            takes=row.takes,
            controls=Controls(
                bpm=row.bpm,
                key_scale=row.key_scale,
                time_signature=row.time_signature,
                vocal_language=row.vocal_language,
            ),
            describe=row.describe,
            edit=_edit(row.task, row.edit),
        ),
        destination=Destination(
            platform=row.platform,
            chat_id=row.chat_id,
            user_id=row.platform_user_id,
            context=dict(row.context or {}),
            scope_id=row.scope_id,
        ),
        state=JobState(row.state),
        backend=row.backend,
        created_at=row.created_at,
        updated_at=row.updated_at,
        remote_id=row.remote_id,
        seed_used=row.seed_used,
        attempts=row.attempts,
        progress=row.progress,
        progress_text=row.progress_text,
        error_code=row.error_code,
        error_message=row.error_message,
        audio_path=row.audio_path,
        audio_format=row.audio_format,
        audio_duration=row.audio_duration,
        delivered_message_id=row.delivered_message_id,
        parent_id=JobId(row.parent_id) if row.parent_id is not None else None,
        submitted_at=row.submitted_at,
        finished_at=row.finished_at,
        nsfw=row.nsfw,
        cost_usd=row.cost_usd,
        gpu_seconds=row.gpu_seconds,
        takes=tuple(_take(t) for t in row.take_states or ()),
        kept_take=row.kept_take,
    )


# The keys of one take in jobs.take_states, as bot.domain.Take names them.
_TAKE_KEYS = (
    "seed",
    "audio_path",
    "audio_format",
    "audio_duration",
    "error_code",
    "remote_id",
    "billed",
)


def _take(stored: dict[str, Any]) -> Take:
    return Take(
        number=int(stored["number"]),
        state=TakeState(stored["state"]),
        **{key: stored[key] for key in _TAKE_KEYS if key in stored},
    )


# The keys of jobs.edit, as bot.domain.Edit names them (its task is the jobs.task column).
_EDIT_KEYS = (
    "source_path",
    "source_seconds",
    "own_audio",
    "seconds",
    "at_start",
    "start",
    "end",
    "strength",
    "uploaded_url",
)


def _edit(task: str, stored: dict[str, Any] | None) -> Edit | None:
    if stored is None or task == Task.SONG:
        return None
    return Edit(task=Task(task), **{key: stored[key] for key in _EDIT_KEYS if key in stored})


def edit_columns(edit: Edit | None) -> dict[str, Any]:
    """A request's edit as the jobs.task and jobs.edit columns."""
    if edit is None:
        return {"task": Task.SONG.value, "edit": None}
    return {"task": edit.task.value, "edit": {key: getattr(edit, key) for key in _EDIT_KEYS}}


def as_columns(fields: dict[str, Any]) -> dict[str, Any]:
    """The core's Job field names as columns: ``takes`` (the Take values) is stored as
    ``take_states``, since the ``takes`` column is how many the request asked for."""
    if "takes" not in fields:
        return fields
    columns = dict(fields)
    takes: Sequence[Take] = columns.pop("takes")
    columns["take_states"] = [
        {"number": t.number, "state": t.state.value, **{k: getattr(t, k) for k in _TAKE_KEYS}}
        for t in takes
    ] or None
    return columns


QUEUED = JobState.QUEUED.value
# Job ids are 64-bit in the database: a number outside this range names no job (and the
# drivers would raise on it rather than find nothing).
MAX_JOB_ID = 2**63 - 1


def is_job_id(job_id: int) -> bool:
    return 0 < job_id <= MAX_JOB_ID


def on_postgres(connection: AsyncConnection) -> bool:
    return connection.dialect.name == "postgresql"


async def advisory_lock(connection: AsyncConnection, name: str) -> None:
    """A PostgreSQL lock held until the transaction ends."""
    await connection.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(name.encode())}
    )


def state_values(states: Iterable[JobState]) -> list[str]:
    return [s.value for s in states]
