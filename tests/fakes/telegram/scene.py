"""What a test sets up and what its users do: users, chats, admins and blocks, then the users'
actions (``send_message``, ``press_button``), which become updates the bot polls."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.fakes.telegram.html import command_entities
from tests.fakes.telegram.records import FakeChat, FakeUser, RecordedMessage
from tests.fakes.telegram.state import Query, World, chat_id_of

# The stand-in "users" Telegram puts in ``from`` when a chat speaks (``sender_chat`` says which):
# the same in every chat, as on Telegram.
ANONYMOUS_ADMIN = 1087968824  # @GroupAnonymousBot: an anonymous admin, writing as the group
CHANNEL_BOT = 136817688  # @Channel_Bot: a post on behalf of a channel


class Scene(World):
    """The test's side of ``FakeTelegram``: the world it describes and its users' actions."""

    # -- the world: users, chats, admins -----------------------------------------------------

    def user(
        self,
        id: int,
        first_name: str = "Test",
        username: str | None = None,
        language_code: str | None = "en",
        last_name: str | None = None,
    ) -> FakeUser:
        """Describe a (human) user."""
        user = FakeUser(id, first_name, username, language_code, last_name)
        self.users[id] = user
        return user

    def private_chat(self, user: FakeUser) -> FakeChat:
        """The user's private chat with the bot (its id is the user's id)."""
        chat = FakeChat(
            user.id,
            "private",
            username=user.username,
            first_name=user.first_name,
            last_name=user.last_name,
        )
        self.chats[chat.id] = chat
        self.users[user.id] = user
        return chat

    def group_chat(
        self,
        id: int,
        title: str = "Test group",
        *,
        username: str | None = None,
        supergroup: bool | None = None,
        forum: bool = False,
    ) -> FakeChat:
        """A group the bot is in. Ids are negative; "-100..." ids are supergroups.
        ``forum``: a supergroup with topics (open them with ``forum_topic``)."""
        if id >= 0:
            raise ValueError("group chat ids are negative on Telegram")
        if supergroup is None:
            supergroup = str(id).startswith("-100")
        if forum and not supergroup:
            raise ValueError("only supergroups have topics")
        kind = "supergroup" if supergroup else "group"
        chat = FakeChat(id, kind, title=title, username=username, is_forum=forum)
        self.chats[id] = chat
        return chat

    def channel(self, id: int, title: str, *, username: str | None = None) -> FakeChat:
        """A channel, for people who write in groups on its behalf ("-100..." ids)."""
        if not str(id).startswith("-100"):
            raise ValueError("channel ids look like -100... on Telegram")
        chat = FakeChat(id, "channel", title=title, username=username)
        self.chats[id] = chat
        return chat

    def forum_topic(self, chat: FakeChat | int, name: str, creator: FakeUser) -> int:
        """``creator`` opens a topic in a forum; returns its ``message_thread_id`` (the id
        of the service message that opened it, as on Telegram)."""
        target = self.known_chat(chat)
        if not target.is_forum:
            raise AssertionError(f"chat {target.id} is no forum: group_chat(..., forum=True)")
        self.users[creator.id] = creator
        opening = self.add_message(target, creator, topic_name=name)
        opening.thread_id = opening.message_id
        return opening.message_id

    def set_admins(
        self,
        chat: FakeChat | int,
        user_ids: Iterable[int],
        *,
        owner_id: int | None = None,
        anonymous: Iterable[int] = (),
    ) -> None:
        """Who administers the group (include ``tg.bot_id`` to make the bot an admin);
        ``anonymous``: those of them who "remain anonymous" (they may write as the group)."""
        chat_id = chat_id_of(chat)
        self.admins[chat_id] = set(user_ids)
        self.anonymous[chat_id] = set(anonymous)
        if owner_id is not None:
            self.owners[chat_id] = owner_id

    def set_blocked(self, chat: FakeChat | int, blocked: bool = True) -> None:
        """The user blocked the bot (private chat) or removed it from the group: posting
        there now fails with 403 Forbidden, as it does on Telegram."""
        chat_id = chat_id_of(chat)
        if blocked:
            self.blocked.add(chat_id)
        else:
            self.blocked.discard(chat_id)

    # -- injecting user actions --------------------------------------------------------------

    async def send_message(
        self,
        chat: FakeChat | int,
        user: FakeUser,
        text: str,
        reply_to: RecordedMessage | int | None = None,
        *,
        sender_chat: FakeChat | None = None,
        thread: int | None = None,
    ) -> dict[str, Any]:
        """The user sends ``text``; returns the Message (queued as an update when the bot
        would receive it, which in a group with privacy mode means a command, a reply to the
        bot, or the bot being an admin).

        ``sender_chat``: the user writes on a chat's behalf, and Telegram hides who: the
        group itself (``user`` must be one of its anonymous admins; ``from`` is then
        @GroupAnonymousBot) or a channel (``from`` is @Channel_Bot).

        ``thread``: the forum topic it is written in (a reply is in its message's topic);
        it then replies to the topic's opening message unless it replies to another."""
        target = self.known_chat(chat)
        self.users[user.id] = user
        if target.is_group:
            self.members[target.id].add(user.id)
        sender = user
        if sender_chat is not None:
            sender = self._stand_in(target, user, sender_chat)
        replied = None if reply_to is None else self.live_message(target, reply_to)
        if replied is not None and thread is None:
            thread = replied.thread_id
        if thread is not None:
            root = self.live_message(target, thread)
            if root.topic_name is None:
                raise AssertionError(f"message {thread} opened no topic: use forum_topic()")
            replied = replied or root
        message = self.add_message(
            target,
            sender,
            text=text,
            entities=command_entities(text),
            reply_to=replied,
            sender_chat=sender_chat,
            thread_id=thread,
        )
        payload = message.to_api()
        if self.bot_receives(target, message):
            self.enqueue("message", payload)
        return payload

    async def send_file(
        self,
        chat: FakeChat | int,
        user: FakeUser,
        data: bytes,
        *,
        kind: str = "audio",
        filename: str | None = None,
        mime_type: str | None = None,
        duration: int | None = None,
        caption: str | None = None,
        reply_to: RecordedMessage | int | None = None,
    ) -> dict[str, Any]:
        """The user sends a file: ``kind`` "audio" (a music file), "voice" (a voice note: no
        file name, an .oga path) or "document" (any file). The bot may fetch it with
        ``getFile`` and the file URL, up to the cloud Bot API's 20 MB. Returns the Message
        (an update only where the bot would get it: in a group with privacy mode, rarely)."""
        if kind not in ("audio", "voice", "document"):
            raise ValueError(f"users send audio, voice or document files, not {kind!r}")
        target = self.known_chat(chat)
        self.users[user.id] = user
        if target.is_group:
            self.members[target.id].add(user.id)
        stored_name = "voice.oga" if kind == "voice" else filename
        file = self.store_file(data, kind, stored_name, mime_type, duration=duration)
        replied = None if reply_to is None else self.live_message(target, reply_to)
        message = self.add_message(
            target,
            user,
            caption=caption,
            source_text=caption,
            **{kind: file},
            reply_to=replied,
        )
        payload = message.to_api()
        if self.bot_receives(target, message):
            self.enqueue("message", payload)
        return payload

    async def press_button(
        self,
        chat: FakeChat | int,
        user: FakeUser,
        message_id: RecordedMessage | int,
        callback_data: str | None = None,
        *,
        button_text: str | None = None,
    ) -> str:
        """The user presses an inline button (by its data, or by its label); returns the
        callback query id. Fails loudly if the message does not show such a button."""
        target = self.known_chat(chat)
        message = self.live_message(target, message_id)
        if button_text is not None:
            callback_data = message.button(button_text).callback_data
        if callback_data is None or callback_data not in {b.callback_data for b in message.buttons}:
            raise AssertionError(
                f"message #{message.message_id} has no button with callback_data "
                f"{callback_data!r}; it shows {message.buttons}"
            )
        self.users[user.id] = user
        query_id = str(next(self.query_ids))
        self.queries[query_id] = Query(created=self.clock())
        self.enqueue(
            "callback_query",
            {
                "id": query_id,
                "from": user.to_api(),
                "message": message.to_api(),
                "chat_instance": str(abs(hash((target.id, self.bot_id)))),
                "data": callback_data,
            },
        )
        return query_id

    def _stand_in(self, chat: FakeChat, user: FakeUser, sender_chat: FakeChat) -> FakeUser:
        """The ``from`` Telegram shows when ``user`` writes in ``chat`` as ``sender_chat``."""
        if not chat.is_group:
            raise AssertionError("only in groups can people write on a chat's behalf")
        if sender_chat.id == chat.id:
            if user.id not in self.anonymous.get(chat.id, set()):
                raise AssertionError(
                    f"user {user.id} is not an anonymous admin of {chat.id}: "
                    "set_admins(..., anonymous=[...])"
                )
            return FakeUser(ANONYMOUS_ADMIN, "Group", "GroupAnonymousBot", None, is_bot=True)
        if sender_chat.type != "channel":
            raise AssertionError("people write on behalf of their group or of a channel")
        return FakeUser(CHANNEL_BOT, "Channel", "Channel_Bot", None, is_bot=True)
