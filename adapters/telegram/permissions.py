"""Who administers a chat, and what that lets them do: one place for every handler.

Telegram is asked (``getChatAdministrators``, one call gives the whole list) and the answer
is remembered per chat for ``ttl`` seconds, so a busy group costs one call a minute rather
than one per command. A private chat has no admins: there the user manages nothing but their
own songs (giving them admin powers there would let them cancel anyone's song by number).

A chat admin's :class:`~bot.service.Requester` carries ``is_admin`` and the role
``"admins"``, so a quota the chat set for its admins applies to them. The core lets an admin
cancel any job on the platform, so :meth:`ChatAdmins.cancel` grants that only for jobs posted
in the chat where the admin pressed or typed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from telegram import Bot, Chat, Message, User
from telegram.error import TelegramError

from adapters.telegram.delivery import PLATFORM, TelegramDelivery
from bot import messages
from bot.ports import EventKind, JobEvent
from bot.service import Done, GenerationService, Refused, Requester

logger = logging.getLogger(__name__)

ADMIN_ROLE = "admins"  # the role name ChatRules.role_quotas uses for a chat's admins
CACHE_SECONDS = 60.0
MAX_REMEMBERED = 1000  # chats; past this, expired entries are dropped


class ChatAdmins:
    """service: the core. delivery: where an admin's cancel is shown to the song's owner.
    ttl: seconds an admin list is trusted. clock: monotonic seconds (tests may pass their own).
    """

    def __init__(
        self,
        service: GenerationService,
        delivery: TelegramDelivery,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._service = service
        self._delivery = delivery
        self._ttl = ttl
        self._clock = clock
        self._known: dict[int, tuple[float, frozenset[int]]] = {}  # chat -> (asked at, ids)
        self._asking: dict[int, asyncio.Task[frozenset[int]]] = {}

    async def admin_ids(
        self, bot: Bot, chat_id: int, *, max_age: float | None = None
    ) -> frozenset[int]:
        """The chat's admins (owner included), at most ``max_age`` (default ``ttl``) seconds
        old. Raises TelegramError when Telegram can't be asked."""
        known = self._known.get(chat_id)
        limit = self._ttl if max_age is None else max_age
        if known is not None and self._clock() - known[0] < limit:
            return known[1]
        # Concurrent commands in one chat share a single request.
        asking = self._asking.get(chat_id)
        if asking is None:
            asking = asyncio.create_task(self._ask(bot, chat_id), name=f"telegram-admins-{chat_id}")
            self._asking[chat_id] = asking
            asking.add_done_callback(lambda task: self._asked(chat_id, task))
        return await asyncio.shield(asking)

    def _asked(self, chat_id: int, task: asyncio.Task[frozenset[int]]) -> None:
        self._asking.pop(chat_id, None)
        if not task.cancelled():
            task.exception()  # its waiters got it raised; don't log it again as unretrieved

    async def _ask(self, bot: Bot, chat_id: int) -> frozenset[int]:
        members = await bot.get_chat_administrators(chat_id)
        ids = frozenset(member.user.id for member in members)
        now = self._clock()
        if len(self._known) >= MAX_REMEMBERED:
            for old, (asked, _) in list(self._known.items()):
                if now - asked >= self._ttl:
                    del self._known[old]
        self._known[chat_id] = (now, ids)
        return ids

    async def is_admin(
        self,
        bot: Bot,
        chat: Chat,
        user: User,
        message: Message | None = None,
        *,
        max_age: float | None = None,
    ) -> bool:
        """Whether ``user`` administers the group ``chat`` (False in private chats)."""
        if chat.type == Chat.PRIVATE:
            return False
        # An anonymous admin writes as the group itself; only admins can.
        if message is not None and message.sender_chat is not None:
            return message.sender_chat.id == chat.id
        return user.id in await self.admin_ids(bot, chat.id, max_age=max_age)

    async def requester(self, bot: Bot, user: User, chat: Chat | None) -> Requester:
        """``user`` as the core sees them in ``chat``: with admin powers and the "admins"
        role when they administer it. If Telegram can't say, they get no extra powers."""
        admin = False
        if chat is not None:
            try:
                admin = await self.is_admin(bot, chat, user)
            except TelegramError as error:
                logger.warning("Telegram: could not list the admins of %s: %s", chat.id, error)
        return _as_admin(user, chat) if admin and chat is not None else _person(user)

    async def cancel(
        self, bot: Bot, job_id: int, user: User, chat: Chat | None, *, known_admin: bool = False
    ) -> Done | Refused:
        """Cancel a song for ``user``, who pressed ✖ or typed in ``chat``: their own song, or,
        when they administer ``chat``, anyone's song posted there. The owner's status message
        then says an admin stopped it, and the admin reads whose quota came back.

        known_admin: the caller was already checked (``/admin cancel``; an anonymous admin
        can't be looked up by user id)."""
        job = await self._service.get_job(job_id)
        someone_elses = job is not None and job.destination.user_id != str(user.id)
        here = (
            job is not None
            and chat is not None
            and job.destination.platform == PLATFORM
            and job.destination.chat_id == str(chat.id)
        )
        if someone_elses and here and known_admin and chat is not None:
            requester = _as_admin(user, chat)
        elif someone_elses and here:
            requester = await self.requester(bot, user, chat)
        else:
            requester = _person(user)
        outcome = await self._service.cancel(job_id, requester)
        if not isinstance(outcome, Done) or not someone_elses:
            return outcome
        cancelled = outcome.job
        context = {**cancelled.destination.context, "cancelled_by_admin": True}
        marked = dataclasses.replace(
            cancelled, destination=dataclasses.replace(cancelled.destination, context=context)
        )
        # Straight after the core's own "Cancelled" event and before any await, so the
        # status message is edited once, to the admin wording.
        await self._delivery.on_event(JobEvent(EventKind.CANCELLED, marked))
        # Kept on the job, so a relayed copy of the event (split deployments) says the same.
        await self._service.set_context(cancelled.id, cancelled_by_admin=True)
        return Done(cancelled, messages.cancelled_for_owner(cancelled))


def _person(user: User) -> Requester:
    return Requester(PLATFORM, str(user.id), user.full_name or user.username)


def _as_admin(user: User, chat: Chat) -> Requester:
    return Requester(
        PLATFORM,
        str(user.id),
        user.full_name or user.username,
        is_admin=True,
        roles=frozenset({ADMIN_ROLE}),
        admin_scope=str(chat.id),  # a Telegram chat is its own scope
    )
