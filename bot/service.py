"""`GenerationService`: the adapters' only way into the core.

Adapters call these coroutines with what a user typed and get back values to render:
:class:`Accepted` or :class:`Refused` for new songs, plain data for /quota, /queue and
/history. Nothing here raises for bad input; refusals carry a sentence for the user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from bot import messages, quotas
from bot.clock import utcnow
from bot.controls import SongFields, read_request
from bot.domain import (
    ACTIVE_STATES,
    EVERYWHERE,
    ChatRules,
    Destination,
    GenerationRequest,
    Invalid,
    Job,
    JobId,
    JobState,
    Limits,
    Task,
    UserId,
    UserRules,
)
from bot.edits import EditAsk, Editing
from bot.library import Library
from bot.messages import until
from bot.notify import Notifier
from bot.ports import Capabilities, Delivery, EventKind, JobEvent
from bot.sources import SourceFiles
from bot.stores import NewJob, RulesStore, ServiceStore, UserKey

if TYPE_CHECKING:
    from bot.admin import AdminService
    from bot.jams.service import JamService
    from bot.library import HistoryPage

logger = logging.getLogger(__name__)
NOTHING_NEEDED = quotas.UsageNeeds(
    reservations=False, month_cost=False, scope=False, scope_cost=False
)


@dataclass(frozen=True)
class Requester:
    platform: str
    user_id: str  # the platform's id
    display_name: str | None = None
    is_admin: bool = False  # may manage this chat (Discord manage_guild, Telegram chat admin)
    roles: frozenset[str] = frozenset()  # Discord role ids; "admins" for chat admins
    # Where the admin rights hold: a guild or chat id, or EVERYWHERE for the operator.
    admin_scope: str | None = None
    # Asking in a one-to-one chat with the bot (Telegram private chat, Discord DM): where a
    # chat has not chosen, members may edit their own audio only there (bot/edits.py).
    private_chat: bool = False

    def administers(self, job: Job) -> bool:
        return self.is_admin and self.admin_scope in (EVERYWHERE, job.destination.scope)


@dataclass(frozen=True)
class Accepted:
    job: Job
    position: int  # 1 = next in line; 0 = already past the queue
    duplicate: bool = False  # the same chat event was seen before


@dataclass(frozen=True)
class Refused:
    message: str
    # invalid | quota | active_jobs | scope_busy | budget | blocked | channel | not_found
    # | forbidden | no_language_model; edits (bot/edits.py): not_offered | own_audio
    # | source_gone | in_progress | not_finished
    code: str = "invalid"


@dataclass(frozen=True)
class Done:
    job: Job
    message: str


@dataclass(frozen=True)
class QueueEntry:
    job: Job
    position: int  # 0 when running


class GenerationService:
    def __init__(
        self,
        *,
        store: ServiceStore,
        rules: RulesStore,
        notifier: Notifier,
        backend_name: str,
        limits: Limits,
        policy: quotas.QuotaPolicy,
        price_per_second_usd: float = 0.0,
        blocked_words: tuple[str, ...] = (),
        capabilities: Callable[[], Capabilities] = Capabilities,
        sources: SourceFiles | None = None,
        max_extended_duration: int = 600,
        # USD per second of one request, where it is not the song price (bot/pricing.py).
        price_of: Callable[[GenerationRequest], float] | None = None,
    ) -> None:
        self._store = store
        self._rules = rules
        self._price_of = price_of or (lambda request: price_per_second_usd)
        self._blocked_words = blocked_words
        self._notifier = notifier
        self._backend_name = backend_name
        self.limits = limits
        self.policy = policy
        self._wakers: list[Any] = []
        self._capabilities = capabilities
        self.sources = sources or SourceFiles(Path("data"), max_seconds=limits.max_duration)
        # The longest an edit's result may be (MAX_EXTENDED_DURATION, within the backend's).
        self.max_extended_duration = max_extended_duration
        self._jams: JamService | None = None

    @property
    def capabilities(self) -> Capabilities:
        """What the backend lets a request ask for now (adapters offer only that)."""
        return self._capabilities()

    @property
    def edits_offered(self) -> frozenset[Task]:  # adapters offer only these (bot/edits.py)
        return self.capabilities.edits

    @property
    def store(self) -> ServiceStore:
        return self._store

    @property
    def notifier(self) -> Notifier:
        return self._notifier

    @property
    def blocked_words(self) -> tuple[str, ...]:
        """The bot-wide list (from BLOCKED_WORDS); chats add their own."""
        return self._blocked_words

    @property
    def admin(self) -> AdminService:
        """A guild's or chat's admins' actions (within the operator's ceilings); callers
        check the caller's permission first."""
        from bot.admin import AdminService  # admin builds on this module's values

        return AdminService(service=self, store=self._store, rules=self._rules)

    @property
    def operator_admin(self) -> AdminService:
        """The operator's actions (`acejam admin`): their values are the ceilings."""
        from bot.admin import AdminService

        return AdminService(service=self, store=self._store, rules=self._rules, operator=True)

    @property
    def jams(self) -> JamService:
        """Community jams (bot/jams/service.py), attached by the shell."""
        if self._jams is None:
            raise RuntimeError("no jam store was attached to this service")
        return self._jams

    def attach_jams(self, jams: JamService) -> None:
        self._jams = jams

    def on_new_work(self, waker: Any) -> None:
        """Register a callable (a worker's ``nudge``) to run when work is queued."""
        self._wakers.append(waker)

    def register_delivery(self, delivery: Delivery) -> None:
        """An adapter is ready to post tracks: undelivered jobs for it are taken up now."""
        self._notifier.add(delivery)
        self._wake_workers()

    def _wake_workers(self) -> None:
        for wake in self._wakers:
            wake()

    # ------------------------------------------------------------ requests
    def validate(self, **fields: Unpack[SongFields]) -> GenerationRequest | Invalid:
        """Fields as a user typed them → a request within this bot's limits and its
        backend's abilities, or why not."""
        request = read_request(limits=self.limits, **fields)
        if isinstance(request, GenerationRequest) and request.describe:
            if not self.capabilities.describes:
                return Invalid(messages.NO_LANGUAGE_MODEL)
        return request

    async def submit(
        self,
        requester: Requester,
        destination: Destination,
        request: GenerationRequest | Invalid,
        *,
        idempotency_key: str | None = None,
        parent_id: JobId | None = None,
        enforce_quota: bool = True,
        charge: quotas.Charge | None = None,  # a jam's take (bot/jams/render.py)
    ) -> Accepted | Refused:
        """Queue a song. ``enforce_quota=False`` is for the operator's own CLI."""
        if isinstance(request, Invalid):
            return Refused(request.message)
        if request.describe and not self.capabilities.describes:
            # Checked again here, not only in validate: the language model may have gone
            # since (an ACE-Step server restarted without it). Nothing is queued or reserved.
            return Refused(messages.NO_LANGUAGE_MODEL, "no_language_model")
        scope = destination.scope
        chat, overrides = await self._rules.rules_for(requester.platform, requester.user_id, scope)
        if enforce_quota:
            checked = self._apply_chat_rules(requester, destination, request, chat, overrides)
            if isinstance(checked, Refused):
                return checked
            request = checked
        seconds = request.duration * request.takes  # quota and cost count every take
        price = self._price_of(request)
        policy = quotas.effective_policy(
            replace(self.policy, job_cost_usd=seconds * price),
            chat,
            overrides,
            requester.roles,
            scope,
        )
        policy = quotas.charged(policy, charge)
        now = utcnow()
        outcome = await self._store.enqueue(
            NewJob(
                user=UserKey(requester.platform, requester.user_id, requester.display_name),
                request=request,
                destination=destination,
                backend=self._backend_name,
                idempotency_key=idempotency_key,
                parent_id=parent_id,
                cost_usd=seconds * price if price else None,
                quota_seconds=0 if charge is not None and charge.chat_pays else None,
            ),
            admit=(
                (lambda usage: quotas.admit(usage, seconds, policy))
                if enforce_quota
                else (lambda usage: None)
            ),
            needs=quotas.usage_needs(policy) if enforce_quota else NOTHING_NEEDED,
            now=now,
        )
        if isinstance(outcome, quotas.Refusal):
            message = outcome.message
            if outcome.frees_at is not None:
                message += f" Enough frees up in {until(outcome.frees_at, now)}."
            self._notifier.refused(outcome.code)  # counted by reason (bot/metrics.py)
            return Refused(message, outcome.code)
        if outcome.created:
            logger.info(
                "job %s queued by %s:%s", outcome.job.id, requester.platform, outcome.job.user_id
            )
            self._wake_workers()
        return Accepted(outcome.job, outcome.position, duplicate=not outcome.created)

    def _apply_chat_rules(
        self,
        requester: Requester,
        destination: Destination,
        request: GenerationRequest,
        chat: ChatRules | None,
        overrides: list[UserRules],
    ) -> GenerationRequest | Refused:
        """What a chat's admins decided: blocks, channels, durations, words."""
        if quotas.is_blocked(overrides, destination.scope):
            return Refused(
                "You can't make songs here right now; ask an admin if that's a mistake.",
                "blocked",
            )
        chat = chat or ChatRules()
        if (
            chat.allowed_channels
            and destination.chat_id not in chat.allowed_channels
            and not requester.is_admin
        ):
            return Refused("Songs aren't made in this channel; try the music channel.", "channel")
        if not request.explicit_duration and chat.default_duration is not None:
            request = replace(
                request, duration=min(chat.default_duration, self.limits.max_duration)
            )
        if chat.max_duration is not None and request.duration > chat.max_duration:
            return Refused(f"In this chat songs can be at most {chat.max_duration} seconds long.")
        word = quotas.blocked_word(
            # The sentence too: a language model would write the song from it.
            f"{request.tags}\n{request.lyrics}\n{request.describe}",
            (*self._blocked_words, *chat.blocked_words),
        )
        if word is not None:
            return Refused("That request uses a word that isn't allowed here.", "blocked_word")
        return request

    async def chat_rules(self, platform: str, scope_id: str) -> ChatRules:
        return await self._rules.chat_rules(platform, scope_id) or ChatRules()

    async def reroll(
        self,
        job_id: int,
        requester: Requester,
        *,
        same_seed: bool,
        destination: Destination | None = None,
        idempotency_key: str | None = None,
        allow_others: bool = False,
    ) -> Accepted | Refused:
        """Queue a new take of an earlier job: a new seed, or the very same one (an edit
        runs again on its source)."""
        return await Library(self).reroll(
            job_id, requester, same_seed=same_seed, destination=destination,
            idempotency_key=idempotency_key, allow_others=allow_others,
        )  # fmt: skip

    # Edits of a track (bot/edits.py holds the rules).
    async def edit(
        self,
        requester: Requester,
        destination: Destination,
        ask: EditAsk,
        *,
        idempotency_key: str | None = None,
        charge: quotas.Charge | None = None,
    ) -> Accepted | Refused:
        return await Editing(self).edit(
            requester, destination, ask, idempotency_key=idempotency_key, charge=charge
        )

    async def may_use_own_audio(self, requester: Requester, destination: Destination) -> bool:
        """May the requester edit audio they send, here? Adapters ask before downloading."""
        return await Editing(self).may_use_own_audio(requester, destination)

    async def keep_take(self, job_id: JobId, take: int, presser: Requester) -> Done | Refused:
        """▶ Keep N: the take history, 🎲 and 🔁 build on (bot/library.py)."""
        return await Library(self).keep_take(job_id, take, presser)

    async def cancel(self, job_id: int, requester: Requester) -> Done | Refused:
        job = await self._store.get(job_id)
        if job is None or job.destination.platform != requester.platform:
            return Refused("I can't find that song.", "not_found")
        by_owner = job.destination.user_id == requester.user_id
        if not by_owner and not requester.administers(job):
            return Refused("Only the person who asked for that song can cancel it.", "forbidden")
        if job.state not in ACTIVE_STATES or job.state == JobState.SUCCEEDED:
            return Refused(
                f"That song is already {messages.state_word(job.state)}; nothing to cancel."
            )
        cancelled = await self._store.transition(
            job.id,
            ACTIVE_STATES - {JobState.SUCCEEDED},
            JobState.CANCELLED,
            now=utcnow(),
            ledger="refund",
            finished_at=utcnow(),
            detail=f"cancelled by {requester.platform}:{requester.user_id}",
            # Remembered so every process (and the relay) tells the owner who did it.
            error_code=None if by_owner else "cancelled_by_admin",
            # Nothing is billed for a song that never reached upstream.
            **({} if job.remote_id or any(t.remote_id for t in job.takes) else {"cost_usd": 0.0}),
        )
        if cancelled is None:
            fresh = await self._store.get(job_id)
            state = messages.state_word(fresh.state) if fresh else "gone"
            return Refused(f"Too late: that song is already {state}.")
        self._wake_workers()
        message = messages.cancel_message(cancelled)
        await self._notifier.emit(JobEvent(EventKind.CANCELLED, cancelled, message=message))
        return Done(cancelled, message)

    # ------------------------------------------------------------ reads
    async def get_job(self, job_id: int) -> Job | None:
        return await self._store.get(job_id)

    async def set_context(self, job_id: int, **patch: Any) -> Job | None:
        """Adapters store their own bits (status message id, ...) on the job."""
        return await self._store.merge_context(job_id, patch, utcnow())

    async def queue_of(self, requester: Requester) -> list[QueueEntry]:
        user_id = await self._user_id(requester)
        if user_id is None:
            return []
        jobs = await self._store.list_jobs(
            user_id=user_id, states=ACTIVE_STATES, newest_first=False, limit=50
        )
        places = await self._store.positions(jobs)  # never a listing of the whole queue
        return [QueueEntry(job, places.get(job.id, 0)) for job in jobs]

    # A user's finished songs (bot/library.py holds the rules).
    async def history(
        self, requester: Requester, *, page: int = 1, page_size: int = 10
    ) -> HistoryPage:
        return await Library(self).history(requester, page=page, page_size=page_size)

    async def show(
        self, job_id: int, requester: Requester, destination: Destination
    ) -> Done | Refused:
        return await Library(self).show(job_id, requester, destination)

    async def variation(
        self,
        parent_id: int,
        requester: Requester,
        destination: Destination,
        overrides: SongFields,
        *,
        idempotency_key: str | None = None,
    ) -> Accepted | Refused:
        return await Library(self).variation(
            parent_id, requester, destination, overrides, idempotency_key=idempotency_key
        )

    async def quota(self, requester: Requester, scope: str | None = None) -> quotas.QuotaStatus:
        """What /quota shows; ``scope`` (guild or chat id) applies that chat's rules."""
        policy = await self.policy_for(requester, scope)
        user_id = await self._user_id(requester)
        if user_id is None:
            return quotas.status(quotas.UsageSnapshot(0, ()), policy)
        return quotas.status(await self._store.usage(user_id, utcnow()), policy)

    async def policy_for(self, requester: Requester, scope: str | None) -> quotas.QuotaPolicy:
        if scope is None:
            return self.policy
        chat = await self._rules.chat_rules(requester.platform, scope)
        overrides = await self._rules.user_rules(requester.platform, requester.user_id, scope)
        return quotas.effective_policy(self.policy, chat, overrides, requester.roles, scope)

    async def latest_active(self, requester: Requester) -> Job | None:
        """The requester's most recent unfinished job (what a bare /cancel means)."""
        user_id = await self._user_id(requester)
        if user_id is None:
            return None
        jobs = await self._store.list_jobs(
            user_id=user_id, states=ACTIVE_STATES - {JobState.SUCCEEDED}, limit=1
        )
        return jobs[0] if jobs else None

    async def _user_id(self, requester: Requester) -> UserId | None:
        return await self._store.find_user(requester.platform, requester.user_id)
