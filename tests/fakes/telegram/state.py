"""The fake's model of the world: its settings, the users, chats, admins, messages and files it
knows, the update queue the bot polls, and the records tests read back (``calls``, ``errors``,
``flood_errors``, ``callback_answers``, ``commands``, ``chat_actions``).

``World`` is the base of ``FakeTelegram``: the Bot API methods (``routes/``) and the test API
(``scene``, ``readback``) work on the same state, and every change wakes the waiters
(``touch``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.telegram.html import BOT_COMMAND_RE
from tests.fakes.telegram.protocol import ApiError, Params, bad
from tests.fakes.telegram.records import (
    Call,
    CallbackAnswer,
    ChatAction,
    ErrorReply,
    FakeChat,
    FakeUser,
    FloodError,
    RecordedFile,
    RecordedMessage,
)

# Update types delivered when allowed_updates is empty (Telegram's default set).
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
    }
)
_FILE_KINDS = {  # kind -> (folder of its file_path, file_id prefix), as Telegram names them
    "audio": ("music", "CQAC"),
    "document": ("documents", "BQAC"),
    "voice": ("voice", "AwAC"),
    "thumbnail": ("thumbnails", "AAMC"),
}


@dataclass
class Update:
    update_id: int
    kind: str
    payload: dict[str, Any]


@dataclass
class Query:
    created: float  # the fake's clock
    answered: bool = False


class World:
    """The state behind one fake Bot API; see the module docstring."""

    def __init__(
        self,
        bot_user: FakeUser,
        *,
        time_scale: float,
        local_mode: bool,
        upload_limit: int,
        privacy_mode: bool,
        callback_query_ttl: float | None,
        clock: Callable[[], float],
    ) -> None:
        self.bot_user = bot_user
        self.time_scale = time_scale
        self.local_mode = local_mode
        self.upload_limit = upload_limit
        self.privacy_mode = privacy_mode
        self.callback_query_ttl = callback_query_ttl
        self.clock = clock

        # what tests read
        self.calls: list[Call] = []
        self.flood_errors: list[FloodError] = []
        self.errors: list[ErrorReply] = []
        self.callback_answers: dict[str, CallbackAnswer] = {}
        self.commands: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.chat_actions: list[ChatAction] = []
        self.files: dict[str, RecordedFile] = {}
        self.webhook_url = ""

        # the world
        self.users: dict[int, FakeUser] = {bot_user.id: bot_user}
        self.chats: dict[int, FakeChat] = {}
        self.messages: defaultdict[int, dict[int, RecordedMessage]] = defaultdict(dict)
        self.last_message_id: defaultdict[int, int] = defaultdict(int)
        self.admins: dict[int, set[int]] = {}
        self.owners: dict[int, int] = {}
        self.anonymous: dict[int, set[int]] = {}  # chat -> admins who remain anonymous
        self.members: defaultdict[int, set[int]] = defaultdict(set)
        self.blocked: set[int] = set()
        self.updates: list[Update] = []
        self.update_ids = itertools.count(700_000_001)
        self.allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self.poll_generation = 0  # bumped by each getUpdates: an older poll then ends in 409
        self.queries: dict[str, Query] = {}
        self.query_ids = itertools.count(4_382_093_411_000_000_001)
        self.file_ids = itertools.count(1)
        self.media_group_ids = itertools.count(13_962_000_000_000_001)
        self.changed = asyncio.Event()
        self.closing = asyncio.Event()  # the server's (LoopbackServer.closing): polls end

    @property
    def bot_id(self) -> int:
        return self.bot_user.id

    @property
    def bot_username(self) -> str:
        return self.bot_user.username or ""

    def touch(self) -> None:
        """Wake every waiter: something was recorded."""
        self.changed.set()
        self.changed = asyncio.Event()

    # -- looking things up -------------------------------------------------------------------

    def known_chat(self, chat: FakeChat | int) -> FakeChat:
        """A chat the test created (LookupError otherwise: a mistake in the test)."""
        chat_id = chat_id_of(chat)
        if chat_id not in self.chats:
            raise LookupError(f"chat {chat_id} unknown: create it with private_chat/group_chat")
        return self.chats[chat_id]

    def find_message(self, chat_id: int, message_id: int) -> RecordedMessage | None:
        return self.messages.get(chat_id, {}).get(message_id)

    def live_message(self, chat: FakeChat, message: RecordedMessage | int) -> RecordedMessage:
        """A message a user acts on: it must exist and not be deleted (else LookupError)."""
        found = self.find_message(chat.id, message_id_of(message))
        if found is None or found.deleted:
            raise LookupError(f"no message {message_id_of(message)} in chat {chat.id}")
        return found

    def chat_of(self, params: Params) -> FakeChat:
        """The request's ``chat_id`` (a number or an "@username"), or Telegram's 400."""
        value = params.get("chat_id")
        if value is None or value == "":
            raise bad("chat_id is empty")
        if isinstance(value, str) and value.startswith("@"):
            for chat in self.chats.values():
                if chat.username and chat.username.lower() == value[1:].lower():
                    return chat
            raise bad("chat not found")
        try:
            return self.chats[int(value)]
        except (KeyError, TypeError, ValueError):
            raise bad("chat not found") from None

    def writable_chat(self, params: Params) -> FakeChat:
        """The chat, if the bot may still post there (not blocked by the user, not kicked)."""
        chat = self.chat_of(params)
        if chat.type == "channel":  # channels here are only ones people write on behalf of
            raise ApiError(403, "Forbidden: bot is not a member of the channel chat")
        if chat.id in self.blocked:
            if chat.type == "private":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat.type} chat")
        return chat

    def is_admin(self, chat_id: int, user_id: int) -> bool:
        return user_id in self.admins.get(chat_id, set())

    # -- changing things ---------------------------------------------------------------------

    def add_message(self, chat: FakeChat, sender: FakeUser, **fields: Any) -> RecordedMessage:
        self.last_message_id[chat.id] += 1
        message = RecordedMessage(
            chat=chat,
            message_id=self.last_message_id[chat.id],
            date=int(time.time()),
            sender=sender,
            sent_at=self.clock(),
            **fields,
        )
        self.messages[chat.id][message.message_id] = message
        self.touch()
        return message

    def store_file(
        self,
        data: bytes,
        kind: str,
        filename: str | None,
        mime_type: str | None,
        **meta: Any,
    ) -> RecordedFile:
        """Keep an uploaded file under a new file_id (``kind``: audio, document, voice,
        thumbnail)."""
        number = next(self.file_ids)
        ext = Path(filename).suffix if filename else ""
        folder, prefix = _FILE_KINDS[kind]
        digest = hashlib.sha1(data).hexdigest()
        file = RecordedFile(
            data=data,
            file_id=f"{prefix}{number:06d}-{digest[:16]}",
            file_unique_id=f"AgAD{digest[:12]}",
            file_path=f"{folder}/file_{number}{ext}",
            filename=filename,
            mime_type=mime_type,
            **meta,
        )
        self.files[file.file_id] = file
        return file

    def bot_receives(self, chat: FakeChat, message: RecordedMessage) -> bool:
        """Privacy mode: in groups the bot gets commands, replies to it, or all as an admin."""
        if not chat.is_group or not self.privacy_mode:
            return True
        if self.is_admin(chat.id, self.bot_id):
            return True
        if message.reply_to is not None and message.reply_to.from_bot:
            return True
        for match in BOT_COMMAND_RE.finditer(message.text or ""):
            addressee = match.group(2)
            if addressee is None or addressee.lower() == self.bot_username.lower():
                return True
        return False

    def enqueue(self, kind: str, payload: dict[str, Any]) -> None:
        """Queue an update for getUpdates."""
        update_id = next(self.update_ids)
        self.updates.append(Update(update_id, kind, payload))
        self.touch()

    def record_error(self, method: str, error: ApiError, chat_id: int | None, scope: str) -> None:
        self.errors.append(ErrorReply(method, error.status, error.description))
        if error.status == 429:
            retry_after = int((error.parameters or {}).get("retry_after", 0))
            self.flood_errors.append(FloodError(method, chat_id, retry_after, scope, self.clock()))
        self.touch()


def chat_id_of(chat: FakeChat | int) -> int:
    return chat.id if isinstance(chat, FakeChat) else int(chat)


def message_id_of(message: RecordedMessage | int) -> int:
    return message.message_id if isinstance(message, RecordedMessage) else int(message)
