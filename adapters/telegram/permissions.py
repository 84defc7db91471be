"""Who administers a chat, and what that lets them do: one place for every handler.

Telegram is asked (``getChatAdministrators``, one call gives the whole list) and the answer
is remembered per chat for ``ttl`` seconds, so a busy group costs one call a minute rather
than one per command. A private chat has no admins: there the user manages nothing but their
own songs (giving them admin powers there would let them cancel anyone's song by number).

A chat admin's :class:`~bot.service.Requester` carries ``is_admin`` and the role
``"admins"``, so a quota the chat set for its admins applies to them. The core lets an admin
cancel any job on the platform, so :meth:`ChatAdmins.cancel` grants that only for jobs posted
in the chat where the admin pressed or typed.

Who asked is a :class:`Sender`, not always a person. Telegram shows every anonymous group
admin, in every group, as one user (@GroupAnonymousBot), every post on a channel's behalf as
@Channel_Bot, and Telegram itself as 777000; ``sender_chat`` names the chat that spoke, and
that chat is the requester: its own songs and quota. A group speaking as itself is its
anonymous admins (only admins can), so they are its admins here. Button presses always come
from the real person; an admin of the group may act there for its anonymous admins
(:meth:`ChatAdmins.acting_for`). A stand-in without its chat is no one and owns nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from telegram import Bot, Chat, Message, User
from telegram.constants import ChatID
from telegram.error import TelegramError

from adapters.telegram.delivery import PLATFORM, TelegramDelivery
from adapters.telegram.places import in_chat
from bot import messages
from bot.ports import EventKind, JobEvent
from bot.service import Done, GenerationService, Refused, Requester

logger = logging.getLogger(__name__)

ADMIN_ROLE = "admins"  # the role name ChatRules.role_quotas uses for a chat's admins
CACHE_SECONDS = 60.0
MAX_REMEMBERED = 1000  # chats; past this, expired entries are dropped
# Telegram's stand-in "users" for a chat that speaks: the same ids in every chat, never a person.
STAND_INS = frozenset({ChatID.ANONYMOUS_ADMIN, ChatID.FAKE_CHANNEL, ChatID.SERVICE_CHAT})
GROUP_TYPES = frozenset({Chat.GROUP, Chat.SUPERGROUP})


@dataclass(frozen=True)
class Sender:
    """Who asked: a person (their user id), or a chat speaking as itself (its id, negative
    on Telegram, so never a person's): a group's anonymous admins, or a channel."""

    id: int
    name: str | None
    anonymous_admins: bool = False  # the group itself: only its admins can write as it

    @property
    def is_person(self) -> bool:
        return self.id > 0


def sender_of(message: Message) -> Sender | None:
    """Who wrote ``message``; None for a stand-in that doesn't say for which chat."""
    chat = message.sender_chat
    if chat is not None:
        if chat.id == message.chat.id and message.chat.type in GROUP_TYPES:
            return anonymous_admins_of(chat)
        return Sender(chat.id, chat.effective_name)
    user = message.from_user
    if user is None or user.id in STAND_INS:
        return None
    return person(user)


def person(user: User) -> Sender:
    return Sender(user.id, user.full_name or user.username)


def anonymous_admins_of(group: Chat) -> Sender:
    return Sender(group.id, f"Anonymous admins of {group.title or group.id}", True)


def as_requester(sender: Sender) -> Requester:
    """The core's view of ``sender`` without any admin powers."""
    return Requester(PLATFORM, str(sender.id), sender.name)


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
        self, bot: Bot, chat: Chat, sender: Sender, *, max_age: float | None = None
    ) -> bool:
        """Whether ``sender`` administers the group ``chat`` (False in private chats)."""
        if chat.type == Chat.PRIVATE:
            return False
        if sender.anonymous_admins:
            return sender.id == chat.id
        if not sender.is_person:  # a channel administers no group
            return False
        return sender.id in await self.admin_ids(bot, chat.id, max_age=max_age)

    async def requester(self, bot: Bot, sender: Sender, chat: Chat | None) -> Requester:
        """``sender`` as the core sees them in ``chat``: with admin powers and the "admins"
        role when they administer it. If Telegram can't say, they get no extra powers."""
        admin = False
        if chat is not None:
            try:
                admin = await self.is_admin(bot, chat, sender)
            except TelegramError as error:
                logger.warning("Telegram: could not list the admins of %s: %s", chat.id, error)
        requester = _as_admin(sender, chat) if admin and chat is not None else as_requester(sender)
        # A private chat is one-to-one with the bot: what a chat hasn't chosen may differ
        # there (members' own audio, bot/edits.py).
        private = chat is not None and chat.type == Chat.PRIVATE
        return dataclasses.replace(requester, private_chat=private) if private else requester

    async def acting_for(self, bot: Bot, user: User, chat: Chat | None, job_id: int) -> Sender:
        """Who a button press by ``user`` in ``chat`` acts as: the group's anonymous admins
        when the song is theirs and ``user`` administers the group (they are one of them, or
        could cancel it anyway), else ``user`` themselves. Keeps the admin anonymous, and
        their songs on one quota."""
        presser = person(user)
        if chat is None or chat.type not in GROUP_TYPES:
            return presser
        job = await self._service.get_job(job_id)
        if (
            job is None
            or job.destination.platform != PLATFORM
            or not in_chat(job.destination.chat_id, chat.id)
            or job.destination.user_id != str(chat.id)
        ):
            return presser
        try:
            admin = await self.is_admin(bot, chat, presser)
        except TelegramError as error:
            logger.warning("Telegram: could not list the admins of %s: %s", chat.id, error)
            return presser
        return anonymous_admins_of(chat) if admin else presser

    async def cancel(
        self,
        bot: Bot,
        job_id: int,
        sender: Sender,
        chat: Chat | None,
        *,
        known_admin: bool = False,
    ) -> Done | Refused:
        """Cancel a song for ``sender``, who pressed ✖ or typed in ``chat``: their own song,
        or, when they administer ``chat``, anyone's song posted there. The owner's status
        message then says an admin stopped it, and the admin reads whose quota came back.

        known_admin: the caller was already checked (``/admin cancel``)."""
        job = await self._service.get_job(job_id)
        someone_elses = job is not None and job.destination.user_id != str(sender.id)
        here = (
            job is not None
            and chat is not None
            and job.destination.platform == PLATFORM
            and in_chat(job.destination.chat_id, chat.id)
        )
        if someone_elses and here and known_admin and chat is not None:
            requester = _as_admin(sender, chat)
        elif someone_elses and here:
            requester = await self.requester(bot, sender, chat)
        else:
            requester = as_requester(sender)
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


def _as_admin(sender: Sender, chat: Chat) -> Requester:
    return Requester(
        PLATFORM,
        str(sender.id),
        sender.name,
        is_admin=True,
        roles=frozenset({ADMIN_ROLE}),
        admin_scope=str(chat.id),  # a Telegram chat is its own scope
    )
