"""Community jams on SQLAlchemy: the core's :class:`bot.stores.JamStore`.

Every write begins by locking the jam's row (``SELECT ... FOR UPDATE`` on PostgreSQL; on
SQLite the transaction's ``BEGIN IMMEDIATE`` already serialises writers). What a write
decides from the jam it reads (the state it moves from, the next contribution number, the
room left, whether a vote still counts) therefore holds until it commits: two processes,
or two presses, never render, close or count a vote twice. A jam's takes are ordinary jobs;
their state, seed and audio are read from the jobs table.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.domain import JobId
from bot.jams.model import (
    OPEN_STATES,
    Contribution,
    Jam,
    JamState,
    JamStats,
    JamTakeRef,
    MemberStats,
    NewJam,
    Part,
    winner,
)
from bot.stores import JamCheck
from storage.db import Sessions
from storage.errors import raises_store_unavailable
from storage.jam_rows import fields_of, has_takes, load, lock
from storage.jobs.rows import is_job_id
from storage.models import (
    JamContributionRow,
    JamRoundRow,
    JamRow,
    JamTakeRow,
    JamVoteRow,
)

_OPEN = [s.value for s in OPEN_STATES]
_ROUND_FIELDS = frozenset({"collect_ends_at", "vote_ends_at", "winner_take"})


@raises_store_unavailable
class SqlJamStore(Sessions):
    # ------------------------------------------------------------ reads
    async def get_jam(self, jam_id: int) -> Jam | None:
        if not is_job_id(jam_id):  # a number from a button no row can have
            return None
        async with self._reads() as session:
            row = await session.get(JamRow, jam_id)
            return await load(session, row) if row is not None else None

    async def jam_at(self, platform: str, chat_id: str) -> Jam | None:
        async with self._reads() as session:
            row = await session.scalar(
                select(JamRow)
                .where(
                    JamRow.platform == platform,
                    or_(JamRow.chat_id == chat_id, JamRow.origin_id == chat_id),
                    JamRow.state != JamState.ENDED.value,
                )
                .order_by(JamRow.id.desc())
                .limit(1)
            )
            return await load(session, row) if row is not None else None

    async def jam_by_token(self, token: str) -> Jam | None:
        async with self._reads() as session:
            row = await session.scalar(select(JamRow).where(JamRow.token == token))
            return await load(session, row) if row is not None else None

    async def open_jams(self) -> list[Jam]:
        async with self._reads() as session:
            rows = await session.scalars(select(JamRow).where(JamRow.state.in_(_OPEN)))
            return [await load(session, row) for row in rows.all()]

    async def take_of(self, job_id: int) -> JamTakeRef | None:
        if not is_job_id(job_id):
            return None
        async with self._reads() as session:
            row = await session.scalar(select(JamTakeRow).where(JamTakeRow.job_id == job_id))
            return JamTakeRef(row.jam_id, row.round, row.take) if row is not None else None

    async def jam_stats(self, platform: str, scope_id: str) -> JamStats:
        async with self._reads() as session:
            jams = await session.scalar(
                select(func.count())
                .select_from(JamRow)
                .where(JamRow.platform == platform, JamRow.scope_id == scope_id)
            )
            rows = await session.execute(
                select(
                    JamContributionRow.jam_id,
                    JamContributionRow.round,
                    JamContributionRow.author_id,
                    JamContributionRow.author_name,
                    JamRoundRow.winner_take,
                )
                .join(JamRow, JamRow.id == JamContributionRow.jam_id)
                .join(
                    JamRoundRow,
                    (JamRoundRow.jam_id == JamContributionRow.jam_id)
                    & (JamRoundRow.number == JamContributionRow.round),
                )
                .where(
                    JamRow.platform == platform,
                    JamRow.scope_id == scope_id,
                    JamContributionRow.removed.is_(False),
                )
                .order_by(JamContributionRow.jam_id, JamContributionRow.number)
            )
            names: dict[str, str | None] = {}
            counts: dict[str, int] = {}
            won: dict[str, set[tuple[int, int]]] = {}
            for jam_id, round_, author, name, winner_take in rows.all():
                names[author] = name or names.get(author)
                counts[author] = counts.get(author, 0) + 1
                wins = won.setdefault(author, set())
                if winner_take is not None:
                    wins.add((jam_id, round_))
            members = [
                MemberStats(user_id, names[user_id], counts[user_id], len(won[user_id]))
                for user_id in counts
            ]
            members.sort(key=lambda m: (-m.wins, -m.contributions, m.user_id))
            return JamStats(tuple(members), int(jams or 0))

    # ------------------------------------------------------------ writes
    async def create_jam(
        self, new: NewJam, *, now: datetime, collect_ends_at: datetime
    ) -> Jam | None:
        try:
            async with self._sessions.begin() as session:
                live = await session.scalars(
                    select(JamRow)
                    .where(
                        JamRow.platform == new.platform,
                        or_(JamRow.chat_id == new.chat_id, JamRow.origin_id == new.chat_id),
                        JamRow.state != JamState.ENDED.value,
                    )
                    .with_for_update()
                )
                found = list(live.all())
                if any(JamState(row.state).is_open for row in found):
                    return None
                for row in found:  # a closed jam here is superseded by the new one
                    row.state, row.updated_at = JamState.ENDED.value, now
                await session.flush()
                row = JamRow(
                    platform=new.platform,
                    chat_id=new.chat_id,
                    origin_id=new.chat_id,
                    scope_id=new.scope_id,
                    host_id=new.host_id,
                    host_name=new.host_name,
                    theme=new.theme,
                    takes=new.takes,
                    collect_minutes=new.collect_minutes,
                    vote_minutes=new.vote_minutes,
                    state=JamState.COLLECTING.value,
                    round=1,
                    token=new.token,
                    context=dict(new.context),
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                await session.flush()
                session.add(
                    JamRoundRow(
                        jam_id=row.id,
                        number=1,
                        state=JamState.COLLECTING.value,
                        attempt=1,
                        collect_ends_at=collect_ends_at,
                        extended=False,
                        updated_at=now,
                    )
                )
                await session.flush()
                return await load(session, row)
        except IntegrityError:  # another /jam start in the same place committed first
            return None

    async def update_jam(
        self,
        jam_id: int,
        *,
        now: datetime,
        chat_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        token: str | None = None,
        revoke_token: bool = False,
    ) -> Jam | None:
        async with self._sessions.begin() as session:
            row = await lock(session, jam_id)
            if row is None:
                return None
            if chat_id is not None:
                row.chat_id = chat_id
            if context:
                row.context = {**(row.context or {}), **context}
            if revoke_token:
                row.token = None
            elif token is not None and row.token is None:  # a link already made stays
                row.token = token
            row.updated_at = now
            await session.flush()
            return await load(session, row)

    async def add_contribution(
        self,
        jam_id: int,
        *,
        part: Part,
        text: str,
        author_id: str,
        author_name: str | None,
        now: datetime,
        check: JamCheck,
    ) -> tuple[Jam, Contribution] | str | None:
        async with self._sessions.begin() as session:
            row = await lock(session, jam_id)
            if row is None:
                return None
            jam = await load(session, row)
            number = max((c.number for c in jam.contributions), default=0) + 1
            added = Contribution(number, jam.round, part, text, author_id, author_name, False, now)
            with_it = Jam(**{**fields_of(jam), "contributions": (*jam.contributions, added)})
            refusal = check(with_it, added)
            if refusal is not None:
                return refusal
            session.add(
                JamContributionRow(
                    jam_id=jam_id,
                    number=number,
                    round=jam.round,
                    part=part.value,
                    text=text,
                    author_id=author_id,
                    author_name=author_name,
                    removed=False,
                    at=now,
                )
            )
            row.updated_at = now
            await session.flush()
            return await load(session, row), added

    async def remove_contribution(
        self, jam_id: int, number: int, *, now: datetime, check: JamCheck
    ) -> Jam | str | None:
        async with self._sessions.begin() as session:
            row = await lock(session, jam_id)
            if row is None:
                return None
            jam = await load(session, row)
            found = next((c for c in jam.contributions if c.number == number), None)
            if found is None:
                return None
            refusal = check(jam, found)
            if refusal is not None:
                return refusal
            await session.execute(
                update(JamContributionRow)
                .where(JamContributionRow.jam_id == jam_id, JamContributionRow.number == number)
                .values(removed=True)
            )
            row.updated_at = now
            await session.flush()
            return await load(session, row)

    async def advance(
        self,
        jam_id: int,
        round: int,
        from_states: Collection[JamState],
        to_state: JamState,
        *,
        now: datetime,
        pick_winner: bool = False,
        **round_fields: Any,
    ) -> Jam | None:
        unknown = set(round_fields) - _ROUND_FIELDS
        if unknown:
            raise ValueError(f"not a round's field: {', '.join(sorted(unknown))}")
        async with self._sessions.begin() as session:
            row = await lock(session, jam_id)
            if row is None or row.round != round or JamState(row.state) not in from_states:
                return None
            current = await session.get(JamRoundRow, (jam_id, round))
            assert current is not None
            if pick_winner:  # on the votes as they are under the lock: none is missed
                jam = await load(session, row)
                current.winner_take = winner(jam.current)
            if (
                to_state == JamState.RENDERING
                and JamState(current.state) == JamState.COLLECTING
                and await has_takes(session, jam_id, round, current.attempt)
            ):
                current.attempt += 1  # a render again after one that made nothing
            for name, value in round_fields.items():
                setattr(current, name, value)
            current.state = to_state.value
            current.updated_at = now
            row.state, row.updated_at = to_state.value, now
            await session.flush()
            return await load(session, row)

    async def start_round(
        self,
        jam_id: int,
        after: int,
        *,
        now: datetime,
        collect_ends_at: datetime,
        base_job_id: JobId | None,
        extended: bool,
    ) -> Jam | None:
        async with self._sessions.begin() as session:
            row = await lock(session, jam_id)
            if row is None or row.round != after or row.state != JamState.CLOSED.value:
                return None
            session.add(
                JamRoundRow(
                    jam_id=jam_id,
                    number=after + 1,
                    state=JamState.COLLECTING.value,
                    attempt=1,
                    collect_ends_at=collect_ends_at,
                    base_job_id=base_job_id,
                    extended=extended,
                    updated_at=now,
                )
            )
            row.round, row.state, row.updated_at = after + 1, JamState.COLLECTING.value, now
            await session.flush()
            return await load(session, row)

    async def end_jam(self, jam_id: int, *, now: datetime) -> Jam | None:
        async with self._sessions.begin() as session:
            row = await lock(session, jam_id)
            if row is None:
                return None
            row.state, row.updated_at = JamState.ENDED.value, now
            await session.flush()
            return await load(session, row)

    async def record_take(self, jam_id: int, round: int, take: int, job_id: JobId) -> Jam | None:
        async with self._sessions.begin() as session:
            row = await lock(session, jam_id)
            if row is None:
                return None
            current = await session.get(JamRoundRow, (jam_id, round))
            if current is None:
                return None
            known = await session.scalar(select(JamTakeRow).where(JamTakeRow.job_id == job_id))
            if known is None:
                session.add(
                    JamTakeRow(
                        jam_id=jam_id,
                        round=round,
                        attempt=current.attempt,
                        take=take,
                        job_id=job_id,
                    )
                )
                await session.flush()
            return await load(session, row)

    async def vote(
        self,
        jam_id: int,
        round: int,
        take: int,
        voter_id: str,
        *,
        now: datetime,
        check: Callable[[Jam], str | None],
    ) -> tuple[Jam, bool] | str | None:
        async with self._sessions.begin() as session:
            row = await lock(session, jam_id)
            if row is None:
                return None
            refusal = check(await load(session, row))
            if refusal is not None:
                return refusal
            vote = await session.get(JamVoteRow, (jam_id, round, voter_id))
            changed = vote is None or vote.take != take
            if vote is None:
                session.add(
                    JamVoteRow(jam_id=jam_id, round=round, voter_id=voter_id, take=take, at=now)
                )
            elif changed:
                vote.take, vote.at = take, now
            await session.flush()
            return await load(session, row), changed
