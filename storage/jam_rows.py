"""A jam's rows as the core's values (storage/jams.py reads and writes them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import JobId, JobState
from bot.jams.model import Contribution, Jam, JamState, JamTake, Part, Round
from storage.jobs.rows import is_job_id
from storage.models import JamContributionRow, JamRoundRow, JamRow, JamTakeRow, JamVoteRow, JobRow


async def lock(session: AsyncSession, jam_id: int) -> JamRow | None:
    if not is_job_id(jam_id):
        return None
    return await session.get(JamRow, jam_id, with_for_update=True, populate_existing=True)


async def has_takes(session: AsyncSession, jam_id: int, round: int, attempt: int) -> bool:
    found = await session.scalar(
        select(func.count())
        .select_from(JamTakeRow)
        .where(
            JamTakeRow.jam_id == jam_id, JamTakeRow.round == round, JamTakeRow.attempt == attempt
        )
    )
    return bool(found)


def fields_of(jam: Jam) -> dict[str, Any]:
    return {name: getattr(jam, name) for name in Jam.__dataclass_fields__}


async def load(session: AsyncSession, row: JamRow) -> Jam:
    """The whole jam: its rounds with their takes (their jobs' state) and votes, and every
    contribution in order."""
    jam_id = row.id
    rounds = (
        await session.scalars(
            select(JamRoundRow).where(JamRoundRow.jam_id == jam_id).order_by(JamRoundRow.number)
        )
    ).all()
    contributions = (
        await session.scalars(
            select(JamContributionRow)
            .where(JamContributionRow.jam_id == jam_id)
            .order_by(JamContributionRow.number)
        )
    ).all()
    takes = (
        await session.execute(
            select(JamTakeRow, JobRow)
            .join(JobRow, JobRow.id == JamTakeRow.job_id)
            .where(JamTakeRow.jam_id == jam_id)
            .order_by(JamTakeRow.round, JamTakeRow.take)
        )
    ).all()
    votes = (
        await session.execute(
            select(JamVoteRow.round, JamVoteRow.take, func.count())
            .where(JamVoteRow.jam_id == jam_id)
            .group_by(JamVoteRow.round, JamVoteRow.take)
        )
    ).all()
    counted = {(r, t): int(n) for r, t, n in votes}
    made: list[Round] = []
    for r in rounds:
        own = tuple(
            JamTake(
                round=t.round,
                take=t.take,
                job_id=JobId(t.job_id),
                state=JobState(job.state),
                seed=job.seed_used,
                audio_path=job.audio_path,
                audio_format=job.audio_format,
                duration=job.audio_duration,
                votes=counted.get((t.round, t.take), 0),
            )
            for t, job in takes
            if t.round == r.number and t.attempt == r.attempt
        )
        made.append(
            Round(
                number=r.number,
                state=JamState(r.state),
                collect_ends_at=r.collect_ends_at,
                vote_ends_at=r.vote_ends_at,
                winner_take=r.winner_take,
                base_job_id=JobId(r.base_job_id) if r.base_job_id is not None else None,
                extended=r.extended,
                takes=own,
                votes_cast=sum(n for (rn, _), n in counted.items() if rn == r.number),
                attempt=r.attempt,
            )
        )
    return Jam(
        id=jam_id,
        platform=row.platform,
        chat_id=row.chat_id,
        origin_id=row.origin_id,
        scope_id=row.scope_id,
        host_id=row.host_id,
        host_name=row.host_name,
        theme=row.theme,
        takes=row.takes,
        collect_minutes=row.collect_minutes,
        vote_minutes=row.vote_minutes,
        state=JamState(row.state),
        round=row.round,
        token=row.token,
        context=dict(row.context or {}),
        created_at=row.created_at,
        contributions=tuple(
            Contribution(
                c.number, c.round, Part(c.part), c.text, c.author_id, c.author_name, c.removed, c.at
            )
            for c in contributions
        ),
        rounds=tuple(made),
    )
