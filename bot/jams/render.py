"""A round's takes: one job per take through the normal queue (docs/jams.md, Rendering).

Each take is an ordinary job of the host's (``takes=1``, a seed of its own), queued with
the idempotency key ``jam:<jam>:<round>:<take>`` (``:<attempt>`` after a render that made
nothing), so submitting it again after a crash is the same job; the jam then records it.
Round 2 and later extend the last winner where the backend offers extend, or make a new
song from every round's words, based on the winner.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from bot.domain import SEED_MAX, Destination, Task
from bot.edits import EditAsk
from bot.jams import texts
from bot.jams.model import EXTEND_SECONDS, Jam, words_for
from bot.quotas import Charge

if TYPE_CHECKING:
    from bot.service import Accepted, GenerationService, Refused, Requester
    from bot.stores import JamStore

logger = logging.getLogger(__name__)


def take_key(jam: Jam, take: int) -> str:
    key = f"jam:{jam.id}:{jam.round}:{take}"
    attempt = jam.current.attempt
    return key if attempt <= 1 else f"{key}:{attempt}"


def host_of(jam: Jam, requester: Requester | None) -> Requester:
    """Who the takes are asked for: the host (their roles when they pressed render).

    ``is_admin`` lets the takes past the chat's channel list only (the place was checked
    at /jam start: a Discord jam's thread is not itself in the list); ``admin_scope`` stays
    None, so it administers nothing."""
    from bot.service import Requester

    roles = requester.roles if requester is not None and requester.user_id == jam.host_id else ()
    return Requester(
        jam.platform, jam.host_id, jam.host_name, is_admin=True, roles=frozenset(roles)
    )


class Renderer:
    """Submits a round's missing takes (built per call, holds nothing)."""

    def __init__(self, service: GenerationService, store: JamStore) -> None:
        self._service = service
        self._store = store

    async def charge(self, jam: Jam) -> Charge | str:
        """How this render is paid, or why it can't be (the chat pays without a budget)."""
        rules = await self._service.chat_rules(jam.platform, jam.scope_id)
        chat_pays = rules.jam_pays == "chat"
        if chat_pays and rules.monthly_budget_usd is None:
            return texts.CHAT_PAYS_NO_BUDGET
        return Charge(extra_active_jobs=jam.takes - 1, chat_pays=chat_pays)

    async def submit_missing(self, jam: Jam, requester: Requester | None) -> tuple[Jam, str | None]:
        """Queue every take of the current round not recorded yet; the jam as it is then,
        and the first refusal's sentence (later takes are not tried after one)."""
        charge = await self.charge(jam)
        if isinstance(charge, str):
            return jam, charge
        host = host_of(jam, requester)
        recorded = {t.take for t in jam.current.takes}
        for take in range(1, jam.takes + 1):
            if take in recorded:
                continue
            outcome = await self._submit(jam, take, host, charge)
            from bot.service import Refused

            if isinstance(outcome, Refused):
                logger.info(
                    "jam %s round %s take %s refused: %s", jam.id, jam.round, take, outcome.code
                )
                return jam, outcome.message
            updated = await self._store.record_take(jam.id, jam.round, take, outcome.job.id)
            jam = updated or jam
        return jam, None

    async def _submit(
        self, jam: Jam, take: int, host: Requester, charge: Charge
    ) -> Accepted | Refused:
        current = jam.current
        destination = Destination(
            platform=jam.platform,
            chat_id=jam.chat_id,
            user_id=jam.host_id,
            scope_id=jam.scope_id,
            # What the adapter keeps for its jam's jobs (a Telegram topic), and whose take.
            context={
                **dict(jam.context.get("job") or {}),
                "jam_id": jam.id,
                "jam_round": jam.round,
                "jam_take": take,
            },
        )
        key = take_key(jam, take)
        words = words_for(jam, jam.round, extended=current.extended)
        if current.base_job_id is not None and current.extended:
            ask = EditAsk(
                task=Task.EXTEND,
                of_job=current.base_job_id,
                seconds=EXTEND_SECONDS,
                tags=words.tags,
                lyrics=words.lyrics,
            )
            return await self._service.edit(
                host, destination, ask, idempotency_key=key, charge=charge
            )
        base = (
            await self._service.get_job(current.base_job_id)
            if current.base_job_id is not None
            else None
        )
        request = self._service.validate(
            tags=words.tags,
            lyrics=words.lyrics,
            # The next round's song is as long as the winner it builds on.
            duration=base.request.duration if base is not None else None,
            seed=secrets.randbelow(SEED_MAX),  # each take a seed of its own
        )
        return await self._service.submit(
            host,
            destination,
            request,
            idempotency_key=key,
            parent_id=current.base_job_id,
            charge=charge,
        )
