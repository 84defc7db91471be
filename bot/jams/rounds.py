"""A jam's rounds: collecting → rendering → voting → closed, and the next round
(docs/jams.md, States). Each change is a compare-and-set in the store, so a press and the
clock, or two processes, never both act; the one that lost is told what the jam is now.
The host or an admin acts through the commands; ``requester=None`` is the jam clock.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.domain import Task
from bot.jams import texts
from bot.jams.model import Due, Jam, JamChanged, JamNewsKind, JamState
from bot.jams.render import Renderer

if TYPE_CHECKING:
    from bot.jams.service import JamService
    from bot.service import Refused, Requester

logger = logging.getLogger(__name__)


def _refused(message: str, code: str) -> Refused:
    from bot.service import Refused

    return Refused(message, code)


class Rounds:
    """The transitions of a jam's rounds (built per call, holds nothing)."""

    def __init__(self, jams: JamService) -> None:
        self._jams = jams

    async def render(self, requester: Requester | None, jam_id: int) -> JamChanged | Refused:
        """Collecting → rendering, and the takes queued (None: the clock, time is up)."""
        jam = await self._jams.store.get_jam(jam_id)
        if jam is None or (requester is not None and jam.platform != requester.platform):
            return _refused(texts.NOT_FOUND, "not_found")
        if requester is not None and not self._jams.runs(requester, jam):
            return _refused(texts.HOST_ONLY, "forbidden")
        if jam.state != JamState.COLLECTING:
            return _refused(texts.not_now(jam, "render"), "jam_state")
        renderer = Renderer(self._jams.service, self._jams.store)
        charge = await renderer.charge(jam)
        if isinstance(charge, str):
            if requester is None:  # the clock: wait for /jam render once it is settled
                await self._jams.store.advance(
                    jam.id,
                    jam.round,
                    {JamState.COLLECTING},
                    JamState.COLLECTING,
                    now=self._jams.now(),
                    collect_ends_at=None,
                )
                await self._jams.tell(
                    JamNewsKind.RENDER_FAILED, jam, texts.render_failed(jam, charge)
                )
            return _refused(charge, "budget")
        rendering = await self._jams.store.advance(
            jam.id, jam.round, {JamState.COLLECTING}, JamState.RENDERING, now=self._jams.now()
        )
        if rendering is None:  # another press or process was first
            fresh = await self._jams.store.get_jam(jam_id) or jam
            return _refused(texts.not_now(fresh, "render"), "jam_state")
        logger.info("jam %s round %s rendering", jam.id, jam.round)
        message = texts.rendering(rendering)
        if requester is None:
            await self._jams.tell(JamNewsKind.RENDERING, rendering, message)
        done = await self.submit_missing(rendering, requester)
        if isinstance(done, JamChanged) and done.message == texts.rendering(done.jam):
            return JamChanged(done.jam, message)
        return done

    async def submit_missing(
        self, jam: Jam, requester: Requester | None = None
    ) -> JamChanged | Refused:
        """Queue the takes of a rendering round not queued yet (after a crash, or a take
        refused for a moment). A refusal before any take was queued goes back to collecting."""
        jam, refusal = await Renderer(self._jams.service, self._jams.store).submit_missing(
            jam, requester
        )
        if refusal is None:
            return JamChanged(jam, texts.rendering(jam))
        if jam.current.takes:  # some takes are on their way: the clock tries the rest later
            return JamChanged(jam, refusal)
        back = await self._jams.store.advance(
            jam.id,
            jam.round,
            {JamState.RENDERING},
            JamState.COLLECTING,
            now=self._jams.now(),
            collect_ends_at=None,
        )
        if back is not None:
            await self._jams.tell(
                JamNewsKind.RENDER_FAILED, back, texts.render_failed(back, refusal)
            )
        return _refused(texts.render_failed(jam, refusal), "render_refused")

    async def close(self, requester: Requester | None, jam_id: int) -> JamChanged | Refused:
        """Voting → closed with its winner (None: the clock, voting time is up). A jam that
        is collecting or already closed ends."""
        jam = await self._jams.store.get_jam(jam_id)
        if jam is None or (requester is not None and jam.platform != requester.platform):
            return _refused(texts.NOT_FOUND, "not_found")
        if requester is not None and not self._jams.runs(requester, jam):
            return _refused(texts.HOST_ONLY, "forbidden")
        now = self._jams.now()
        if jam.state in (JamState.COLLECTING, JamState.CLOSED) and requester is not None:
            ended = await self._jams.store.end_jam(jam.id, now=now)
            if ended is None:
                return _refused(texts.NOT_FOUND, "not_found")
            return JamChanged(ended, texts.ended(ended))
        if jam.state != JamState.VOTING:
            return _refused(texts.not_now(jam, "close"), "jam_state")
        closed = await self._jams.store.advance(
            jam.id, jam.round, {JamState.VOTING}, JamState.CLOSED, now=now, pick_winner=True
        )
        if closed is None:
            fresh = await self._jams.store.get_jam(jam_id) or jam
            return _refused(texts.not_now(fresh, "close"), "jam_state")
        message = texts.winner(closed, closed.current)
        logger.info(
            "jam %s round %s closed: take %s", jam.id, jam.round, closed.current.winner_take
        )
        if requester is None:
            await self._jams.tell(JamNewsKind.CLOSED, closed, message)
        return JamChanged(closed, message)

    async def next_round(self, requester: Requester, jam_id: int) -> JamChanged | Refused:
        jam = await self._jams.store.get_jam(jam_id)
        if jam is None or jam.platform != requester.platform:
            return _refused(texts.NOT_FOUND, "not_found")
        if not self._jams.runs(requester, jam):
            return _refused(texts.HOST_ONLY, "forbidden")
        current = jam.current
        won = current.take(current.winner_take) if current.winner_take is not None else None
        if jam.state != JamState.CLOSED or won is None:
            return _refused(texts.not_now(jam, "start a new round"), "jam_state")
        now = self._jams.now()
        started = await self._jams.store.start_round(
            jam.id,
            jam.round,
            now=now,
            collect_ends_at=now + timedelta(minutes=jam.collect_minutes),
            base_job_id=won.job_id,
            extended=Task.EXTEND in self._jams.service.edits_offered,
        )
        if started is None:
            fresh = await self._jams.store.get_jam(jam_id) or jam
            return _refused(texts.not_now(fresh, "start a new round"), "jam_state")
        self._jams.wake()
        return JamChanged(started, texts.next_round(started))

    async def settle(self, jam: Jam, due: Due) -> JamChanged | Refused | None:
        """What the clock does for ``due`` (bot.jams.model.due), told to the listeners."""
        store, now = self._jams.store, self._jams.now()
        if due == Due.RENDER:
            return await self.render(None, jam.id)
        if due == Due.CLOSE:
            return await self.close(None, jam.id)
        if due == Due.SUBMIT:
            done = await self.submit_missing(jam)
            recorded = done.jam.current.takes if isinstance(done, JamChanged) else ()
            if len(recorded) >= jam.takes or not all(t.ended for t in recorded):
                return done
            # Refused for the rest, and every take queued has ended: vote on those.
            due = Due.OPEN_VOTING if any(t.made for t in recorded) else Due.RENDER_FAILED
        if due == Due.OPEN_VOTING:
            voting = await store.advance(
                jam.id,
                jam.round,
                {JamState.RENDERING},
                JamState.VOTING,
                now=now,
                vote_ends_at=now + timedelta(minutes=jam.vote_minutes),
            )
            if voting is None:
                return None
            message = texts.voting(voting, now)
            await self._jams.tell(JamNewsKind.VOTING, voting, message)
            return JamChanged(voting, message)
        back = await store.advance(
            jam.id,
            jam.round,
            {JamState.RENDERING},
            JamState.COLLECTING,
            now=now,
            collect_ends_at=None,
        )
        if back is None:
            return None
        message = texts.render_failed(back)
        await self._jams.tell(JamNewsKind.RENDER_FAILED, back, message)
        return JamChanged(back, message)
