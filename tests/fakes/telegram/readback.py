"""Reading back what the bot did, and waiting for it without sleeping: every wait re-checks
after each change the fake records and fails with a dump of the chats and the last calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from tests.fakes.telegram.records import CallbackAnswer, FakeChat, RecordedMessage
from tests.fakes.telegram.state import World, chat_id_of

T = TypeVar("T")

MessagePredicate = Callable[[RecordedMessage], bool] | str | None


class Readback(World):
    """The test's view of what happened in ``FakeTelegram``."""

    def chat_log(
        self,
        chat: FakeChat | int,
        *,
        include_user_messages: bool = False,
        include_deleted: bool = True,
    ) -> list[RecordedMessage]:
        """Messages in the chat in order, in their current state (bot's only by default)."""
        in_chat = self.messages.get(chat_id_of(chat), {})
        messages = sorted(in_chat.values(), key=lambda m: m.message_id)
        return [
            m
            for m in messages
            if (include_user_messages or m.from_bot) and (include_deleted or not m.deleted)
        ]

    def message(self, chat: FakeChat | int, message_id: int) -> RecordedMessage:
        found = self.find_message(chat_id_of(chat), message_id)
        if found is None:
            raise LookupError(f"no message {message_id} in chat {chat_id_of(chat)}")
        return found

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """Parameters of every call of ``method`` (case-insensitive), in order."""
        return [c.params for c in self.calls if c.method.lower() == method.lower()]

    def command_names(self, scope: str = "default", language_code: str = "") -> list[str]:
        """Commands registered for a scope key ("default", "all_private_chats",
        "all_group_chats", "all_chat_administrators", "chat:<id>", ...)."""
        return [name for name, _ in self.commands.get((scope, language_code), [])]

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        return len(self.updates)

    def describe(self, chat: FakeChat | int | None = None) -> str:
        """A readable dump of chats, recent calls and errors (used in waiter failures)."""
        lines: list[str] = []
        chat_ids = [chat_id_of(chat)] if chat is not None else sorted(self.messages)
        for chat_id in chat_ids:
            lines.append(f"chat {chat_id}:")
            log = self.chat_log(chat_id, include_user_messages=True)
            lines.extend(f"  {m.summary()}" for m in log)
            if not log:
                lines.append("  (empty)")
        calls = [c.method for c in self.calls if c.method.lower() != "getupdates"]
        lines.append("last calls (besides getUpdates): " + ", ".join(calls[-15:]))
        if self.errors:
            lines.append("last errors:")
            lines.extend(f"  {e.method} -> {e.status} {e.description}" for e in self.errors[-5:])
        return "\n".join(lines)

    # -- waiting -----------------------------------------------------------------------------

    async def wait_until(
        self,
        condition: Callable[[], T | None],
        *,
        timeout: float = 10.0,
        what: str = "a condition",
    ) -> T:
        """Wait until ``condition()`` is truthy (re-checked after every change the fake
        records) and return its value; AssertionError with a dump of the state on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self.changed
            result = condition()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"FakeTelegram: no {what} after {timeout} s.\n{self.describe()}"
                )
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass

    async def wait_for_message(
        self,
        chat: FakeChat | int,
        predicate: MessagePredicate = None,
        timeout: float = 10.0,
        *,
        include_deleted: bool = False,
    ) -> RecordedMessage:
        """The first bot message in the chat matching ``predicate`` in its current state.

        predicate: a function of the message, or a string that must appear in its text or
        caption, or None for any message.
        """
        check = _message_predicate(predicate)

        def find() -> RecordedMessage | None:
            for message in self.chat_log(chat, include_deleted=include_deleted):
                if check(message):
                    return message
            return None

        return await self.wait_until(
            find, timeout=timeout, what=f"bot message matching {predicate!r} in {chat_id_of(chat)}"
        )

    async def wait_for_audio(
        self,
        chat: FakeChat | int,
        timeout: float = 10.0,
        predicate: MessagePredicate = None,
    ) -> RecordedMessage:
        """The first (not deleted) bot message in the chat carrying audio."""
        check = _message_predicate(predicate)
        return await self.wait_for_message(
            chat, lambda m: m.audio is not None and check(m), timeout
        )

    def album_of(self, message: RecordedMessage) -> list[RecordedMessage]:
        """The messages of ``message``'s album in order (just it, when it is in none)."""
        if message.media_group_id is None:
            return [message]
        return [
            m
            for m in self.chat_log(message.chat, include_deleted=False)
            if m.media_group_id == message.media_group_id
        ]

    async def wait_for_album(
        self,
        chat: FakeChat | int,
        size: int | None = None,
        timeout: float = 10.0,
    ) -> list[RecordedMessage]:
        """The first album (messages sharing a ``media_group_id``, sent by sendMediaGroup)
        the bot posted in the chat, with ``size`` messages when given."""

        def find() -> list[RecordedMessage] | None:
            for message in self.chat_log(chat, include_deleted=False):
                if message.media_group_id is not None:
                    album = self.album_of(message)
                    if size is None or len(album) == size:
                        return album
            return None

        return await self.wait_until(
            find, timeout=timeout, what=f"album of {size or 'any number of'} items"
        )

    async def wait_for_callback_answer(
        self,
        query_id: str,
        timeout: float = 10.0,
    ) -> CallbackAnswer:
        return await self.wait_until(
            lambda: self.callback_answers.get(query_id),
            timeout=timeout,
            what=f"answer to callback query {query_id}",
        )


def _message_predicate(predicate: MessagePredicate) -> Callable[[RecordedMessage], bool]:
    if predicate is None:
        return lambda message: True
    if isinstance(predicate, str):
        needle = predicate
        return lambda message: needle in (message.text or "") or needle in (message.caption or "")
    return predicate
