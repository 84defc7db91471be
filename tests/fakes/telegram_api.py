"""A loopback fake of the Telegram Bot API that the real python-telegram-bot client can drive.

Usage (PTB's own lifecycle, without ``run_polling``, as AceJam shares its event loop)::

    async with FakeTelegram() as tg:
        alice = tg.user(id=42, first_name="Alice", username="alice")
        group = tg.group_chat(-100123, "Jam room")
        app = tg.application_builder().build()
        app.add_handler(CommandHandler("song", on_song))
        async with app:
            await app.start()
            await app.updater.start_polling(poll_interval=0, timeout=1)
            await tg.send_message(group, alice, "/song@AceJamBot lo-fi")
            reply = await tg.wait_for_message(group, "lo-fi")     # what the user sees
            await app.updater.stop()
            await app.stop()

The server speaks the wire protocol PTB speaks: ``POST {base_url}/bot<token>/<method>`` with a
form-urlencoded body (multipart when files are uploaded) whose non-string values are JSON text,
answered with ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description",
"parameters"}``. It reproduces the Telegram behaviours a bot has to survive, each with the real
error text so the client raises the same exception it would in production:

* limits: text 4096 / caption 1024 characters (after entity parsing), ``callback_data`` 1-64 bytes,
  uploads 50 MB (2000 MB in ``local_mode``) -> 413, getFile downloads 20 MB;
* HTML ``parse_mode`` is parsed with a port of tdlib's ``parse_html`` (same tags, entity decoding
  and error texts), and the stored text is what the user sees (tags stripped, whitespace trimmed);
* edits: "message is not modified", "message to edit not found"; an edit without
  ``reply_markup`` removes the inline keyboard, as on Telegram;
* flood control: a per-chat token bucket, a per-group 20/minute window and a global 30/s window,
  all in *nominal* seconds shrunk by ``time_scale``, answering 429 with ``retry_after``;
* ``getUpdates`` long polling with offsets, ``allowed_updates``, the 409 "terminated by other
  getUpdates request" for a superseded poll, and group privacy mode;
* ``sendAudio`` accepts MP3/M4A into the music player (probed with mutagen, which also fills in a
  missing duration/title/performer); anything else arrives as a document, and a thumbnail that is
  not a JPEG <= 200 kB and <= 320 px is silently dropped. Both are noted in ``warnings``.

Tests inject users' actions (``send_message``, ``press_button``, ``set_blocked``), read what
the bot did (``chat_log``, ``calls``, ``callback_answers``, ``commands``, ``flood_errors``,
``errors``) and wait for it without sleeping (``wait_for_message``, ``wait_for_audio``, ...),
which fail with a dump of the chat and the last calls. Faults: ``tg.faults.add(...)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import itertools
import json
import logging
import math
import mimetypes
import re
import string
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.ext import ApplicationBuilder

logger = logging.getLogger(__name__)

T = TypeVar("T")

MB = 1024 * 1024
# The stand-in "users" Telegram puts in ``from`` when a chat speaks (``sender_chat`` says which):
# the same in every chat, as on Telegram.
ANONYMOUS_ADMIN = 1087968824  # @GroupAnonymousBot: an anonymous admin, writing as the group
CHANNEL_BOT = 136817688  # @Channel_Bot: a post on behalf of a channel
CLOUD_UPLOAD_LIMIT = 50 * MB
LOCAL_UPLOAD_LIMIT = 2000 * MB
DOWNLOAD_LIMIT = 20 * MB  # getFile and sending by URL on the cloud Bot API
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
THUMBNAIL_MAX_BYTES = 200 * 1024
THUMBNAIL_MAX_SIDE = 320

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
GETUPDATES_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
    "running"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)

_TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]+")
_API_PATH_RE = re.compile(r"/bot([^/]*)/([^/]+)/?")
_FILE_PATH_RE = re.compile(r"/file/bot([^/]*)/(.+)")
_USER_LINK_RE = re.compile(r"tg://user\?id=(\d{1,15})")
# tdlib's match_bot_commands: "/cmd" or "/cmd@bot_name" not glued to a word, "/", "<" or ">".
_BOT_COMMAND_RE = re.compile(
    r"(?<![\w/<>])/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{3,32}))?(?![\w/<>@])"
)
_COMMAND_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")

# Methods that count against flood limits: everything that makes a message appear or change.
_FLOOD_METHODS = frozenset(
    {
        "sendmessage",
        "sendaudio",
        "senddocument",
        "editmessagetext",
        "editmessagecaption",
        "editmessagereplymarkup",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Update types delivered when allowed_updates is empty (Telegram's default set).
_DEFAULT_UPDATE_TYPES = frozenset(
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
# Form fields whose value PTB sends as JSON text; decoded once so `calls` reads naturally.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "reply_parameters",
        "entities",
        "caption_entities",
        "link_preview_options",
        "allowed_updates",
        "commands",
        "scope",
    }
)
_INT_FIELDS = frozenset(
    {
        "message_id",
        "offset",
        "limit",
        "timeout",
        "duration",
        "user_id",
        "reply_to_message_id",
        "message_thread_id",
        "cache_time",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "disable_content_type_detection",
    }
)


# ---------------------------------------------------------------------------------------------
# Public records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user (or the bot itself, with ``is_bot=True``)."""

    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = "en"
    last_name: str | None = None
    is_bot: bool = False

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass(frozen=True)
class FakeChat:
    """A chat: ``type`` is "private", "group", "supergroup" or "channel"."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name", "last_name"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass(frozen=True)
class Button:
    """One inline keyboard button as the user sees it."""

    text: str
    callback_data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class RecordedFile:
    """A file attached to a message: the uploaded bytes plus what Telegram reports about it."""

    data: bytes
    file_id: str
    file_unique_id: str
    file_path: str
    filename: str | None = None
    mime_type: str | None = None
    title: str | None = None
    performer: str | None = None
    duration: int | None = None
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:  # the bytes would drown any assertion message
        return (
            f"RecordedFile({self.filename!r}, {self.size} bytes, mime={self.mime_type!r}, "
            f"title={self.title!r}, performer={self.performer!r}, duration={self.duration})"
        )


@dataclass(frozen=True)
class MessageEdit:
    """The state of a message right after one successful edit."""

    method: str
    text: str | None
    caption: str | None
    reply_markup: list[list[Button]] | None
    at: float  # the fake's clock (time.monotonic by default) at the edit

    @property
    def buttons(self) -> list[Button]:
        return [button for row in self.reply_markup or [] for button in row]


@dataclass(eq=False)
class RecordedMessage:
    """A message in a chat, kept up to date: edits and deletion change it in place.

    ``text``/``caption`` are what the user sees (HTML tags stripped, entities decoded);
    ``source_text`` is what the bot sent. ``edits`` lists the states after each edit, and
    ``text_history`` the texts over time (first the original).
    """

    chat: FakeChat
    message_id: int
    date: int
    sender: FakeUser
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    source_text: str | None = None
    parse_mode: str | None = None
    audio: RecordedFile | None = None
    document: RecordedFile | None = None
    thumbnail: bytes | None = None
    sender_chat: FakeChat | None = None  # the chat that spoke; ``sender`` is then a stand-in
    reply_to: RecordedMessage | None = None
    keyboard: list[list[dict[str, Any]]] | None = None  # inline_keyboard as Telegram returns it
    edits: list[MessageEdit] = field(default_factory=list)
    edit_date: int | None = None
    deleted: bool = False
    deleted_at: float | None = None  # the fake's clock, when it was deleted
    sent_at: float = 0.0  # the fake's clock (time.monotonic by default), when it was sent
    warnings: list[str] = field(default_factory=list)
    _thumbnail_file: RecordedFile | None = field(default=None, repr=False)
    _original_text: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._original_text = self.text if self.text is not None else self.caption

    @property
    def chat_id(self) -> int:
        return self.chat.id

    @property
    def from_bot(self) -> bool:
        """Sent by the bot under test (the stand-ins for chats are bots too, on Telegram)."""
        return self.sender.is_bot and self.sender_chat is None

    @property
    def reply_to_message_id(self) -> int | None:
        return self.reply_to.message_id if self.reply_to else None

    @property
    def reply_markup(self) -> list[list[Button]] | None:
        """Inline keyboard rows, or None when the message has no inline keyboard."""
        return _buttons(self.keyboard)

    @property
    def buttons(self) -> list[Button]:
        return [button for row in self.reply_markup or [] for button in row]

    def button(self, text: str) -> Button:
        """The button labelled ``text`` (exactly, or else the only one containing it)."""
        exact = [b for b in self.buttons if b.text == text]
        partial = [b for b in self.buttons if text in b.text]
        found = exact or partial
        if len(found) != 1:
            raise AssertionError(
                f"message #{self.message_id} has no single button {text!r}; "
                f"buttons: {[b.text for b in self.buttons]}"
            )
        return found[0]

    @property
    def text_history(self) -> list[str | None]:
        """Text (or caption) of the original message followed by each edit's."""
        edited = [e.text if e.text is not None else e.caption for e in self.edits]
        return [self._original_text, *edited]

    @property
    def raw(self) -> dict[str, Any]:
        """The Message object as the Bot API returns it now."""
        return self.to_api()

    def to_api(self, *, include_reply: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "from": self.sender.to_api(),
            "chat": self.chat.to_api(),
            "date": self.date,
        }
        if self.sender_chat is not None:
            data["sender_chat"] = self.sender_chat.to_api()
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if include_reply and self.reply_to is not None:
            data["reply_to_message"] = self.reply_to.to_api(include_reply=False)
        if self.text is not None:
            data["text"] = self.text
            if self.entities:
                data["entities"] = self.entities
        if self.audio is not None:
            data["audio"] = _file_api(self.audio, "audio", self._thumbnail_file)
        if self.document is not None:
            data["document"] = _file_api(self.document, "document", self._thumbnail_file)
        if self.caption:
            data["caption"] = self.caption
            if self.caption_entities:
                data["caption_entities"] = self.caption_entities
        if self.keyboard is not None:
            data["reply_markup"] = {"inline_keyboard": self.keyboard}
        return data

    def __repr__(self) -> str:  # the default would dump bytes and nested replies
        return f"RecordedMessage(chat={self.chat.id} {self.summary()})"

    def summary(self) -> str:
        """One line for failure messages."""
        who = "bot" if self.from_bot else f"user {self.sender.id}"
        if self.sender_chat is not None:
            who = f"chat {self.sender_chat.id}"
        body = self.text if self.text is not None else self.caption
        parts = [f"#{self.message_id} {who}: {body!r}"]
        if self.audio:
            parts.append(f"audio={self.audio.filename!r} title={self.audio.title!r}")
        if self.document:
            parts.append(f"document={self.document.filename!r}")
        if self.buttons:
            parts.append(f"buttons={[b.text for b in self.buttons]}")
        if self.deleted:
            parts.append("(deleted)")
        return " ".join(parts)


def _buttons(keyboard: list[list[dict[str, Any]]] | None) -> list[list[Button]] | None:
    if keyboard is None:
        return None
    return [
        [Button(b["text"], b.get("callback_data"), b.get("url")) for b in row] for row in keyboard
    ]


def _file_api(file: RecordedFile, kind: str, thumbnail: RecordedFile | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "file_size": file.size,
    }
    if kind == "audio":
        data["duration"] = file.duration or 0
        if file.performer:
            data["performer"] = file.performer
        if file.title:
            data["title"] = file.title
    if file.filename:
        data["file_name"] = file.filename
    if file.mime_type:
        data["mime_type"] = file.mime_type
    if thumbnail is not None:
        data["thumbnail"] = {
            "file_id": thumbnail.file_id,
            "file_unique_id": thumbnail.file_unique_id,
            "file_size": thumbnail.size,
            "width": thumbnail.width,
            "height": thumbnail.height,
        }
    return data


class Call(NamedTuple):
    """One request the bot made: method name as sent, parameters decoded (files as
    ``UploadedFile``)."""

    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    field_name: str
    filename: str | None
    content_type: str | None
    data: bytes

    def __repr__(self) -> str:
        return f"UploadedFile({self.field_name!r}, {self.filename!r}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class CallbackAnswer:
    """What the bot answered to a callback query (``answerCallbackQuery``)."""

    query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass(frozen=True)
class FloodError:
    """A 429 the fake gave. ``scope`` is "chat", "group", "global" or "fault" (scripted)."""

    method: str
    chat_id: int | None
    retry_after: int
    scope: str
    at: float  # the fake's clock (time.monotonic by default)


@dataclass(frozen=True)
class ErrorReply:
    """Any error response the fake gave (4xx/5xx), for diagnostics."""

    method: str
    status: int
    description: str


@dataclass(frozen=True)
class ChatAction:
    chat_id: int
    action: str


@dataclass(frozen=True)
class FloodLimits:
    """Flood control, in nominal seconds (divided by ``time_scale`` in real time).

    Telegram documents about one message per second per chat (short bursts pass), 20 per
    minute per group and 30 per second overall; editing counts like sending.
    """

    chat_burst: int = 3
    chat_per_second: float = 1.0
    group_per_minute: int = 20
    global_per_second: int = 30
    enabled: bool = True

    @classmethod
    def off(cls) -> FloodLimits:
        return cls(enabled=False)


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------


@dataclass
class Fault:
    """A scripted misbehaviour; see ``FaultPlan.add``. ``hits`` counts how often it fired."""

    method: str | None
    status: int | None
    retry_after: int | None
    description: str | None
    delay: float
    times: int | None
    chat_id: int | None
    processed: bool
    hits: int = 0

    def matches(self, method: str, chat_id: int | None) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id


class FaultPlan:
    """Scripted faults, consulted in the order they were added (first match fires)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        method: str | None = None,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        description: str | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        chat_id: int | None = None,
        processed: bool = False,
    ) -> Fault:
        """Make the next ``times`` calls of ``method`` (any method when None) misbehave.

        status: answer with this HTTP status instead (429 carries ``retry_after``, default 1;
            502/504 come back as nginx's HTML page, like the real front end; others as JSON).
        delay: real seconds to stall before answering (not scaled: meant to trip client
            timeouts).
        processed: carry the request out first (the message really is sent) and only then
            stall/fail - a response lost on the way back.
        times: how many calls to affect; None for every call.
        chat_id: only calls for this chat.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = Fault(method, status, retry_after, description, delay, times, chat_id, processed)
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str, chat_id: int | None) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, chat_id):
                fault.hits += 1
                return fault
        return None

    def __iter__(self) -> Iterator[Fault]:
        return iter(list(self._faults))

    def __len__(self) -> int:
        return len(self._faults)


# ---------------------------------------------------------------------------------------------
# Errors and HTML entity parsing (a port of tdlib's parse_html)
# ---------------------------------------------------------------------------------------------


class _ApiError(Exception):
    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


class HtmlParseError(ValueError):
    """Telegram's reason for rejecting an HTML text (without the "can't parse" prefix)."""


_HTML_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler",
        "tg-emoji", "span", "pre", "code", "blockquote",
    }
)  # fmt: skip
_SPACE_BYTES = frozenset(b" \t\r\n\v\0")  # tdlib's is_space also stops at the terminating NUL
_HEX = frozenset(string.hexdigits.encode())
_ALNUM = frozenset((string.ascii_letters + string.digits).encode())
_ENTITY_NAMES = {b"lt": ord("<"), b"gt": ord(">"), b"amp": ord("&"), b"quot": ord('"')}
_SIMPLE_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _decode_html_entity(data: bytes, pos: int) -> tuple[int, int] | None:
    """(code point, end position) of the entity at ``data[pos] == "&"``, or None when the
    ``&`` is a literal one (tdlib keeps an unknown ``&name`` as text rather than failing)."""

    def at(k: int) -> int:
        return data[k] if k < len(data) else 0

    end = pos + 1
    code = 0
    if at(end) == ord("#"):
        end += 1
        if at(end) == ord("x"):
            end += 1
            while at(end) in _HEX:
                code = code * 16 + int(chr(at(end)), 16)
                end += 1
        else:
            while ord("0") <= at(end) <= ord("9"):
                code = code * 10 + at(end) - ord("0")
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
    else:
        while chr(at(end)).isascii() and chr(at(end)).isalpha():
            end += 1
        named = _ENTITY_NAMES.get(data[pos + 1 : end])
        if named is None:
            return None
        code = named
    if at(end) == ord(";"):
        end += 1
    return code, end


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Text and entities of ``source`` under ``parse_mode=HTML``, exactly as Telegram parses it.

    Raises HtmlParseError with Telegram's message (byte offsets are into the UTF-8 source).
    """
    data = source.encode("utf-8")

    def at(k: int) -> int:
        return data[k] if k < len(data) else 0

    def is_space(c: int) -> bool:
        return c in _SPACE_BYTES

    out = bytearray()
    utf16 = 0
    entities: list[dict[str, Any]] = []
    # open tags: name, argument, utf16 offset and output position where they began
    stack: list[tuple[str, str, int, int]] = []
    i = 0
    while i < len(data):
        c = data[i]
        if c == ord("&"):
            decoded = _decode_html_entity(data, i)
            if decoded is not None:
                code, i = decoded
                if 0xD800 <= code <= 0xDFFF:
                    raise HtmlParseError(
                        "Text contains invalid Unicode characters after decoding HTML entities,"
                        " check for unmatched surrogate code units"
                    )
                out += chr(code).encode("utf-8")
                utf16 += 1 + (code > 0xFFFF)
                continue
        if c != ord("<"):
            if c & 0xC0 != 0x80:  # first byte of a UTF-8 sequence
                utf16 += 1 + (c >= 0xF0)  # 4-byte sequences are surrogate pairs in UTF-16
            out.append(c)
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != ord("/"):
            while not is_space(at(i)) and at(i) != ord(">"):
                i += 1
            if i >= len(data):
                raise HtmlParseError(f"Unclosed start tag at byte offset {begin}")
            tag = data[begin + 1 : i].decode("utf-8", "replace").lower()
            if tag not in _HTML_TAGS:
                raise HtmlParseError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument, i = _parse_attributes(data, tag, begin, i, at, is_space)
            stack.append((tag, argument, utf16, len(out)))
            i += 1  # the ">"
            continue

        # an end tag
        if not stack:
            raise HtmlParseError(f"Unexpected end tag at byte offset {begin}")
        while not is_space(at(i)) and at(i) != ord(">"):
            i += 1
        end_tag = data[begin + 2 : i].decode("utf-8", "replace").lower()
        while i < len(data) and is_space(at(i)):
            i += 1
        if at(i) != ord(">"):
            raise HtmlParseError(f"Unclosed end tag at byte offset {begin}")
        tag, argument, start, out_pos = stack[-1]
        if end_tag and end_tag != tag:
            raise HtmlParseError(
                f'Unmatched end tag at byte offset {begin}, expected "</{tag}>", '
                f'found "</{end_tag}>"'
            )
        stack.pop()
        if utf16 > start:
            _close_entity(entities, tag, argument, start, utf16 - start, bytes(out[out_pos:]))
        i += 1
    if stack:
        raise HtmlParseError(f"Can't find end tag corresponding to start tag {stack[-1][0]}")
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return out.decode("utf-8"), entities


def _parse_attributes(
    data: bytes,
    tag: str,
    begin: int,
    i: int,
    at: Callable[[int], int],
    is_space: Callable[[int], bool],
) -> tuple[str, int]:
    """Read a start tag's attributes from ``i``; return (entity argument, position of ">")."""
    argument = ""
    while at(i) != ord(">"):
        while i < len(data) and is_space(at(i)):
            i += 1
        if at(i) == ord(">"):
            break
        name_begin = i
        while not is_space(at(i)) and at(i) not in (ord("="), ord(">")):
            i += 1
        name = data[name_begin:i].decode("utf-8", "replace")
        if not name:
            raise HtmlParseError(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
        while i < len(data) and is_space(at(i)):
            i += 1
        if at(i) != ord("="):
            if tag == "blockquote" and name == "expandable":  # the one valueless attribute
                argument = "expandable"
                continue
            raise HtmlParseError(
                "Expected equal sign in declaration of an attribute of the tag "
                f'"{tag}" at byte offset {begin}'
            )
        i += 1
        while i < len(data) and is_space(at(i)):
            i += 1
        if i >= len(data):
            raise HtmlParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        if at(i) not in (ord("'"), ord('"')):
            token_begin = i
            while at(i) in _ALNUM or at(i) in (ord("."), ord("-")):
                i += 1
            value = data[token_begin:i].decode("ascii").lower()
            if not is_space(at(i)) and at(i) != ord(">"):
                raise HtmlParseError(f"Unexpected end of name token at byte offset {token_begin}")
        else:
            quote = at(i)
            i += 1
            buf = bytearray()
            while i < len(data) and at(i) != quote:
                if at(i) == ord("&"):
                    decoded = _decode_html_entity(data, i)
                    if decoded is not None:
                        code, i = decoded
                        buf += chr(code).encode("utf-8", "surrogatepass")
                        continue
                buf.append(at(i))
                i += 1
            if at(i) == quote:
                i += 1
            value = buf.decode("utf-8", "replace")
        if i >= len(data):
            raise HtmlParseError(f"Unclosed start tag at byte offset {begin}")
        if tag == "a" and name == "href":
            argument = value
        elif tag == "code" and name == "class" and value.startswith("language-"):
            argument = value[len("language-") :]
        elif tag == "span" and name == "class" and value.startswith("tg-"):
            argument = value[len("tg-") :]
        elif tag == "tg-emoji" and name == "emoji-id":
            argument = value
    if tag == "span" and argument != "spoiler":
        raise HtmlParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
    return argument, i


def _close_entity(
    entities: list[dict[str, Any]],
    tag: str,
    argument: str,
    offset: int,
    length: int,
    inner: bytes,
) -> None:
    entity: dict[str, Any] = {"offset": offset, "length": length}
    last = entities[-1] if entities else None
    same_span = last is not None and last["offset"] == offset and last["length"] == length
    if tag in _SIMPLE_TAG_TYPES:
        entity["type"] = _SIMPLE_TAG_TYPES[tag]
    elif tag == "tg-emoji":
        if not argument.isdigit() or int(argument) == 0:
            raise HtmlParseError("Invalid custom emoji identifier specified")
        entity.update(type="custom_emoji", custom_emoji_id=argument)
    elif tag == "a":
        url = argument or inner.decode("utf-8", "replace")
        if not url:
            return
        mention = _USER_LINK_RE.fullmatch(url)
        if mention is not None:  # a mention by id; _render fills in the user (or drops it)
            entity.update(type="text_mention", user={"id": int(mention.group(1))})
        else:
            entity.update(type="text_link", url=url)
    elif tag == "pre":
        # <pre><code class="language-x">...</code></pre> is one pre entity with a language
        if same_span and last is not None and last["type"] == "code" and last.get("language"):
            last["type"] = "pre"
            return
        entity["type"] = "pre"
    elif tag == "code":
        if same_span and last is not None and last["type"] == "pre" and argument:
            last["language"] = argument
            return
        entity["type"] = "code"
        if argument:
            entity["language"] = argument
    else:  # blockquote
        entity["type"] = "expandable_blockquote" if argument == "expandable" else "blockquote"
    entities.append(entity)


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram trims leading/trailing whitespace of texts and captions; entities follow."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    left = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - left, 0)
        end = min(entity["offset"] + entity["length"] - left, total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def command_entities(text: str) -> list[dict[str, Any]]:
    """``bot_command`` entities Telegram finds in a user's text (offsets in UTF-16 units)."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: m.start()]),
            "length": utf16_len(m.group(0)),
        }
        for m in _BOT_COMMAND_RE.finditer(text)
    ]


# ---------------------------------------------------------------------------------------------
# Flood control
# ---------------------------------------------------------------------------------------------


class _FloodControl:
    """Token bucket per chat plus sliding windows per group and overall, in nominal seconds."""

    def __init__(self, limits: FloodLimits, time_scale: float, clock: Callable[[], float]):
        self.limits = limits
        self._time_scale = time_scale
        self._clock = clock
        self._t0 = clock()
        self._buckets: dict[int, tuple[float, float]] = {}  # chat -> (tokens, at)
        self._group_sends: defaultdict[int, deque[float]] = defaultdict(deque)
        self._global_sends: deque[float] = deque()

    def _now(self) -> float:
        return (self._clock() - self._t0) / self._time_scale

    def admit(self, chat_id: int) -> tuple[str, int] | None:
        """Consume one send for ``chat_id``; or (scope, retry_after) when over a limit."""
        limits = self.limits
        if not limits.enabled:
            return None
        now = self._now()
        waits: list[tuple[float, str]] = []
        tokens, at = self._buckets.get(chat_id, (float(limits.chat_burst), now))
        tokens = min(float(limits.chat_burst), tokens + (now - at) * limits.chat_per_second)
        if tokens < 1.0:
            waits.append(((1.0 - tokens) / limits.chat_per_second, "chat"))
        group = self._group_sends[chat_id] if chat_id < 0 else None
        if group is not None:
            while group and group[0] <= now - 60.0:
                group.popleft()
            if len(group) >= limits.group_per_minute:
                waits.append((group[0] + 60.0 - now, "group"))
        glob = self._global_sends
        while glob and glob[0] <= now - 1.0:
            glob.popleft()
        if len(glob) >= limits.global_per_second:
            waits.append((glob[0] + 1.0 - now, "global"))
        if waits:
            self._buckets[chat_id] = (tokens, now)
            wait, scope = max(waits)
            return scope, max(1, math.ceil(wait))
        self._buckets[chat_id] = (tokens - 1.0, now)
        if group is not None:
            group.append(now)
        glob.append(now)
        return None

    def refund(self, chat_id: int) -> None:
        """Give back the send ``admit`` took: the request failed before anything was sent."""
        tokens, at = self._buckets.get(chat_id, (0.0, self._now()))
        self._buckets[chat_id] = (min(float(self.limits.chat_burst), tokens + 1.0), at)
        if chat_id < 0 and self._group_sends[chat_id]:
            self._group_sends[chat_id].pop()
        if self._global_sends:
            self._global_sends.pop()


# ---------------------------------------------------------------------------------------------
# Request parameters
# ---------------------------------------------------------------------------------------------


def _decode_value(name: str, value: Any) -> Any:
    """Undo PTB's form encoding where Telegram would (JSON objects, ints, booleans)."""
    if not isinstance(value, str):
        return value
    try:
        if name in _JSON_FIELDS:
            return json.loads(value)
        if name in _INT_FIELDS or name == "chat_id":
            return int(value)
    except ValueError:
        return value
    if name in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


class _Params:
    """Typed access to one request's parameters, raising Telegram's 400s."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def get_str(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value) if isinstance(value, dict | list) else str(value)

    def get_int(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _bad(f"invalid {name} specified") from None

    def required_int(self, name: str, missing: str) -> int:
        value = self.get_int(name)
        if value is None:
            raise _bad(missing)
        return value

    def get_bool(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def get_json(self, name: str, what: str) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise _bad(f"can't parse {what} JSON object") from None
        return value


@dataclass
class _ParsedMarkup:
    keyboard: list[list[dict[str, Any]]] | None  # inline keyboard, the only kind a message keeps


def _parse_reply_markup(params: _Params, *, inline_only: bool) -> _ParsedMarkup:
    raw = params.get_json("reply_markup", "reply keyboard markup")
    if raw is None:
        return _ParsedMarkup(None)
    if not isinstance(raw, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in raw:
        if inline_only or not {"keyboard", "remove_keyboard", "force_reply"} & raw.keys():
            raise _bad("can't parse reply keyboard markup JSON object")
        return _ParsedMarkup(None)  # reply keyboards live on the client, not in the message
    rows = raw["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad("can't parse inline keyboard markup JSON object")
    keyboard: list[list[dict[str, Any]]] = []
    for row in rows:
        out_row = []
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise _bad(
                    'can\'t parse inline keyboard button: Field "text" must be of type String'
                )
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode()) <= CALLBACK_DATA_LIMIT:
                    raise _bad("BUTTON_DATA_INVALID")
                out_row.append({"text": button["text"], "callback_data": data})
            elif "url" in button:
                out_row.append({"text": button["text"], "url": button["url"]})
            elif len(button) > 1:  # other kinds (web_app, switch_inline_query...): keep as sent
                out_row.append(dict(button))
            else:
                raise _bad(
                    "can't parse inline keyboard button: Text buttons are unallowed in the "
                    "inline keyboard"
                )
        keyboard.append(out_row)
    return _ParsedMarkup(keyboard)


@dataclass
class _AudioProbe:
    music: bool  # MP3 or M4A: what Telegram puts in the music player
    mime_type: str | None
    duration: float | None
    title: str | None
    performer: str | None


def _probe_audio(data: bytes) -> _AudioProbe:
    import mutagen  # deferred: only sendAudio needs it

    try:
        audio = mutagen.File(io.BytesIO(data), easy=True)
    except Exception:  # mutagen raises many types on garbage; garbage just isn't audio
        audio = None
    if audio is None:
        return _AudioProbe(False, None, None, None, None)
    kind = type(audio).__name__
    tags = audio.tags or {}

    def tag(name: str) -> str | None:
        values = tags.get(name) if hasattr(tags, "get") else None
        return str(values[0]) if values else None

    mime = {"EasyMP3": "audio/mpeg", "MP3": "audio/mpeg", "EasyMP4": "audio/mp4"}.get(kind)
    length = getattr(audio.info, "length", None)
    return _AudioProbe(mime is not None, mime, length, tag("title"), tag("artist"))


def _thumbnail_problem(data: bytes) -> tuple[str | None, int, int]:
    """Why Telegram would ignore this thumbnail (None if fine), and its size."""
    from PIL import Image  # deferred: only uploads with thumbnails need it

    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt, (width, height) = image.format, image.size
    except Exception:
        return "not an image", 0, 0
    if fmt != "JPEG":
        return f"not a JPEG ({fmt})", width, height
    if len(data) > THUMBNAIL_MAX_BYTES:
        return f"larger than 200 kB ({len(data)} bytes)", width, height
    if width > THUMBNAIL_MAX_SIDE or height > THUMBNAIL_MAX_SIDE:
        return f"larger than 320 px ({width}x{height})", width, height
    return None, width, height


@dataclass
class _Update:
    update_id: int
    kind: str
    payload: dict[str, Any]


@dataclass
class _Query:
    created: float  # monotonic
    answered: bool = False


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class FakeTelegram:
    """The fake Bot API server. Use as ``async with FakeTelegram(...) as tg``.

    token: the one token accepted (others get 401 Unauthorized; malformed ones 404).
    bot_username / bot_name: the bot's @username and first name (its id is the token's prefix).
    time_scale: multiplies nominal flood windows and callback query lifetimes; 0.01 makes
        Telegram's "1 message per second" a 10 ms affair.
    flood: FloodLimits (default: Telegram's) or FloodLimits.off().
    local_mode: behave like ``telegram-bot-api --local``: 2000 MB uploads, ``file://`` inputs.
    privacy_mode: in groups the bot only receives commands, replies to it, or everything when
        it is an admin (as Telegram's default privacy mode).
    callback_query_ttl: nominal seconds after which a callback query can no longer be
        answered (None: forever).
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "AceJamBot",
        *,
        bot_name: str = "AceJam",
        time_scale: float = 1.0,
        flood: FloodLimits | None = None,
        local_mode: bool = False,
        upload_limit: int | None = None,
        privacy_mode: bool = True,
        callback_query_ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not _TOKEN_RE.fullmatch(token):
            raise ValueError(f"{token!r} is not shaped like a bot token (<digits>:<secret>)")
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.token = token
        self.bot_user = FakeUser(
            id=int(token.split(":", 1)[0]),
            first_name=bot_name,
            username=bot_username,
            language_code=None,
            is_bot=True,
        )
        self.time_scale = time_scale
        self.local_mode = local_mode
        default_limit = LOCAL_UPLOAD_LIMIT if local_mode else CLOUD_UPLOAD_LIMIT
        self.upload_limit = upload_limit or default_limit
        self.privacy_mode = privacy_mode
        self.callback_query_ttl = callback_query_ttl
        self.faults = FaultPlan()
        self._clock = clock
        self._flood = _FloodControl(flood or FloodLimits(), time_scale, clock)

        # what tests read
        self.calls: list[Call] = []
        self.flood_errors: list[FloodError] = []
        self.errors: list[ErrorReply] = []
        self.callback_answers: dict[str, CallbackAnswer] = {}
        self.commands: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.chat_actions: list[ChatAction] = []
        self.files: dict[str, RecordedFile] = {}
        self.webhook_url = ""

        self._users: dict[int, FakeUser] = {self.bot_user.id: self.bot_user}
        self._chats: dict[int, FakeChat] = {}
        self._messages: defaultdict[int, dict[int, RecordedMessage]] = defaultdict(dict)
        self._last_message_id: defaultdict[int, int] = defaultdict(int)
        self._admins: dict[int, set[int]] = {}
        self._owners: dict[int, int] = {}
        self._anonymous: dict[int, set[int]] = {}  # chat -> admins who remain anonymous
        self._members: defaultdict[int, set[int]] = defaultdict(set)
        self._blocked: set[int] = set()
        self._updates: list[_Update] = []
        self._update_ids = itertools.count(700_000_001)
        self._allowed_updates: frozenset[str] = _DEFAULT_UPDATE_TYPES
        self._poll_generation = 0
        self._queries: dict[str, _Query] = {}
        self._query_ids = itertools.count(4_382_093_411_000_000_001)
        self._file_ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._methods: dict[str, Callable[[_Params], Any]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "sendaudio": self._send_audio,
            "senddocument": self._send_document,
            "sendchataction": self._send_chat_action,
            "answercallbackquery": self._answer_callback_query,
            "getchat": self._get_chat,
            "getchatmember": self._get_chat_member,
            "getchatadministrators": self._get_chat_administrators,
            "getfile": self._get_file,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeTelegram:
        # Multipart uploads are streamed (see _read_params), so this cap only bounds the
        # urlencoded/JSON bodies of ordinary methods.
        app = web.Application(client_max_size=16 * MB)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        self._touch()  # release long polls so the server can shut down at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; the bot uses ``{base_url}/bot<token>/<method>``."""
        if self._base_url is None:
            raise RuntimeError("FakeTelegram is not running; use `async with FakeTelegram()`")
        return self._base_url

    @property
    def bot_id(self) -> int:
        return self.bot_user.id

    @property
    def bot_username(self) -> str:
        return self.bot_user.username or ""

    def application_builder(self) -> ApplicationBuilder:
        """A PTB ApplicationBuilder already pointed at this server (add handlers, then build)."""
        from telegram.ext import ApplicationBuilder

        builder = (
            ApplicationBuilder()
            .token(self.token)
            .base_url(f"{self.base_url}/bot")
            .base_file_url(f"{self.base_url}/file/bot")
        )
        return builder.local_mode(True) if self.local_mode else builder

    def bot(self, **kwargs: Any) -> Bot:
        """A plain PTB Bot pointed at this server (``async with tg.bot() as bot``)."""
        from telegram import Bot

        return Bot(
            self.token,
            base_url=f"{self.base_url}/bot",
            base_file_url=f"{self.base_url}/file/bot",
            local_mode=self.local_mode,
            **kwargs,
        )

    @property
    def flood_limits(self) -> FloodLimits:
        return self._flood.limits

    @flood_limits.setter
    def flood_limits(self, limits: FloodLimits) -> None:
        """Replace the limits and forget past sends."""
        self._flood = _FloodControl(limits, self.time_scale, self._clock)

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
        self._users[id] = user
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
        self._chats[chat.id] = chat
        self._users[user.id] = user
        return chat

    def group_chat(
        self,
        id: int,
        title: str = "Test group",
        *,
        username: str | None = None,
        supergroup: bool | None = None,
    ) -> FakeChat:
        """A group the bot is in. Ids are negative; "-100..." ids are supergroups."""
        if id >= 0:
            raise ValueError("group chat ids are negative on Telegram")
        if supergroup is None:
            supergroup = str(id).startswith("-100")
        chat = FakeChat(id, "supergroup" if supergroup else "group", title=title, username=username)
        self._chats[id] = chat
        return chat

    def channel(self, id: int, title: str, *, username: str | None = None) -> FakeChat:
        """A channel, for people who write in groups on its behalf ("-100..." ids)."""
        if not str(id).startswith("-100"):
            raise ValueError("channel ids look like -100... on Telegram")
        chat = FakeChat(id, "channel", title=title, username=username)
        self._chats[id] = chat
        return chat

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
        chat_id = _chat_id(chat)
        self._admins[chat_id] = set(user_ids)
        self._anonymous[chat_id] = set(anonymous)
        if owner_id is not None:
            self._owners[chat_id] = owner_id

    def set_blocked(self, chat: FakeChat | int, blocked: bool = True) -> None:
        """The user blocked the bot (private chat) or removed it from the group: posting
        there now fails with 403 Forbidden, as it does on Telegram."""
        chat_id = _chat_id(chat)
        if blocked:
            self._blocked.add(chat_id)
        else:
            self._blocked.discard(chat_id)

    # -- injecting user actions --------------------------------------------------------------

    async def send_message(
        self,
        chat: FakeChat | int,
        user: FakeUser,
        text: str,
        reply_to: RecordedMessage | int | None = None,
        *,
        sender_chat: FakeChat | None = None,
    ) -> dict[str, Any]:
        """The user sends ``text``; returns the Message (queued as an update when the bot
        would receive it, which in a group with privacy mode means a command, a reply to the
        bot, or the bot being an admin).

        ``sender_chat``: the user writes on a chat's behalf, and Telegram hides who: the
        group itself (``user`` must be one of its anonymous admins; ``from`` is then
        @GroupAnonymousBot) or a channel (``from`` is @Channel_Bot)."""
        target = self._known_chat(chat)
        self._users[user.id] = user
        if target.is_group:
            self._members[target.id].add(user.id)
        sender = user
        if sender_chat is not None:
            sender = self._stand_in(target, user, sender_chat)
        replied = None
        if reply_to is not None:
            replied = self._message(target.id, _message_id(reply_to))
            if replied is None or replied.deleted:
                raise LookupError(f"no message {_message_id(reply_to)} in chat {target.id}")
        message = self._add_message(
            target,
            sender,
            text=text,
            entities=command_entities(text),
            reply_to=replied,
            sender_chat=sender_chat,
        )
        payload = message.to_api()
        if self._bot_receives(target, message):
            self._enqueue("message", payload)
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
        target = self._known_chat(chat)
        message = self._message(target.id, _message_id(message_id))
        if message is None or message.deleted:
            raise LookupError(f"no message {_message_id(message_id)} in chat {target.id}")
        if button_text is not None:
            callback_data = message.button(button_text).callback_data
        if callback_data is None or callback_data not in {b.callback_data for b in message.buttons}:
            raise AssertionError(
                f"message #{message.message_id} has no button with callback_data "
                f"{callback_data!r}; it shows {message.buttons}"
            )
        self._users[user.id] = user
        query_id = str(next(self._query_ids))
        self._queries[query_id] = _Query(created=self._clock())
        self._enqueue(
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

    # -- reading what happened ---------------------------------------------------------------

    def chat_log(
        self,
        chat: FakeChat | int,
        *,
        include_user_messages: bool = False,
        include_deleted: bool = True,
    ) -> list[RecordedMessage]:
        """Messages in the chat in order, in their current state (bot's only by default)."""
        in_chat = self._messages.get(_chat_id(chat), {})
        messages = sorted(in_chat.values(), key=lambda m: m.message_id)
        return [
            m
            for m in messages
            if (include_user_messages or m.from_bot) and (include_deleted or not m.deleted)
        ]

    def message(self, chat: FakeChat | int, message_id: int) -> RecordedMessage:
        found = self._message(_chat_id(chat), message_id)
        if found is None:
            raise LookupError(f"no message {message_id} in chat {_chat_id(chat)}")
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
        return len(self._updates)

    def describe(self, chat: FakeChat | int | None = None) -> str:
        """A readable dump of chats, recent calls and errors (used in waiter failures)."""
        lines: list[str] = []
        chat_ids = [_chat_id(chat)] if chat is not None else sorted(self._messages)
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
            changed = self._changed
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
        predicate: Callable[[RecordedMessage], bool] | str | None = None,
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
            find, timeout=timeout, what=f"bot message matching {predicate!r} in {_chat_id(chat)}"
        )

    async def wait_for_audio(
        self,
        chat: FakeChat | int,
        timeout: float = 10.0,
        predicate: Callable[[RecordedMessage], bool] | str | None = None,
    ) -> RecordedMessage:
        """The first (not deleted) bot message in the chat carrying audio."""
        check = _message_predicate(predicate)
        return await self.wait_for_message(
            chat, lambda m: m.audio is not None and check(m), timeout
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

    # -- internals: state ----------------------------------------------------------------------

    def _touch(self) -> None:
        """Wake every waiter: something was recorded."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _known_chat(self, chat: FakeChat | int) -> FakeChat:
        chat_id = _chat_id(chat)
        if chat_id not in self._chats:
            raise LookupError(f"chat {chat_id} unknown: create it with private_chat/group_chat")
        return self._chats[chat_id]

    def _message(self, chat_id: int, message_id: int) -> RecordedMessage | None:
        return self._messages.get(chat_id, {}).get(message_id)

    def _stand_in(self, chat: FakeChat, user: FakeUser, sender_chat: FakeChat) -> FakeUser:
        """The ``from`` Telegram shows when ``user`` writes in ``chat`` as ``sender_chat``."""
        if not chat.is_group:
            raise AssertionError("only in groups can people write on a chat's behalf")
        if sender_chat.id == chat.id:
            if user.id not in self._anonymous.get(chat.id, set()):
                raise AssertionError(
                    f"user {user.id} is not an anonymous admin of {chat.id}: "
                    "set_admins(..., anonymous=[...])"
                )
            return FakeUser(ANONYMOUS_ADMIN, "Group", "GroupAnonymousBot", None, is_bot=True)
        if sender_chat.type != "channel":
            raise AssertionError("people write on behalf of their group or of a channel")
        return FakeUser(CHANNEL_BOT, "Channel", "Channel_Bot", None, is_bot=True)

    def _add_message(self, chat: FakeChat, sender: FakeUser, **fields: Any) -> RecordedMessage:
        self._last_message_id[chat.id] += 1
        message = RecordedMessage(
            chat=chat,
            message_id=self._last_message_id[chat.id],
            date=int(time.time()),
            sender=sender,
            sent_at=self._clock(),
            **fields,
        )
        self._messages[chat.id][message.message_id] = message
        self._touch()
        return message

    def _bot_receives(self, chat: FakeChat, message: RecordedMessage) -> bool:
        if not chat.is_group or not self.privacy_mode:
            return True
        if self.bot_id in self._admins.get(chat.id, set()):
            return True
        if message.reply_to is not None and message.reply_to.from_bot:
            return True
        for match in _BOT_COMMAND_RE.finditer(message.text or ""):
            addressee = match.group(2)
            if addressee is None or addressee.lower() == self.bot_username.lower():
                return True
        return False

    def _enqueue(self, kind: str, payload: dict[str, Any]) -> None:
        update_id = next(self._update_ids)
        self._updates.append(_Update(update_id, kind, payload))
        self._touch()

    def _record_error(self, method: str, error: _ApiError, chat_id: int | None, scope: str) -> None:
        self.errors.append(ErrorReply(method, error.status, error.description))
        if error.status == 429:
            retry_after = int((error.parameters or {}).get("retry_after", 0))
            self.flood_errors.append(FloodError(method, chat_id, retry_after, scope, self._clock()))
        self._touch()

    def _chat(self, params: _Params) -> FakeChat:
        value = params.get("chat_id")
        if value is None or value == "":
            raise _bad("chat_id is empty")
        if isinstance(value, str) and value.startswith("@"):
            for chat in self._chats.values():
                if chat.username and chat.username.lower() == value[1:].lower():
                    return chat
            raise _bad("chat not found")
        try:
            return self._chats[int(value)]
        except (KeyError, TypeError, ValueError):
            raise _bad("chat not found") from None

    def _writable_chat(self, params: _Params) -> FakeChat:
        """The chat, if the bot may still post there (not blocked by the user, not kicked)."""
        chat = self._chat(params)
        if chat.type == "channel":  # channels here are only ones people write on behalf of
            raise _ApiError(403, "Forbidden: bot is not a member of the channel chat")
        if chat.id in self._blocked:
            if chat.type == "private":
                raise _ApiError(403, "Forbidden: bot was blocked by the user")
            raise _ApiError(403, f"Forbidden: bot was kicked from the {chat.type} chat")
        return chat

    def _flood_chat_id(self, params: _Params) -> int | None:
        try:
            return self._chat(params).id
        except _ApiError:
            return None

    # -- internals: HTTP -----------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/file/"):
            return self._serve_file(request)
        match = _API_PATH_RE.fullmatch(request.path)
        if match is None or not _TOKEN_RE.fullmatch(match.group(1)):
            return _error_response(_ApiError(404, "Not Found"))
        if match.group(1) != self.token:
            return _error_response(_ApiError(401, "Unauthorized"))
        method = match.group(2)
        handler = self._methods.get(method.lower())
        if handler is None:
            self.errors.append(ErrorReply(method, 404, "Not Found"))
            return _error_response(_ApiError(404, "Not Found"))

        values, too_large = await self._read_params(request)
        params = _Params(values)
        self.calls.append(Call(method, values))
        self._touch()
        chat_id = self._flood_chat_id(params)
        if too_large:
            error = _ApiError(413, "Request Entity Too Large")
            self._record_error(method, error, chat_id, "")
            return _error_response(error)

        fault = self.faults.take(method, chat_id)
        if fault is not None and not fault.processed:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return self._fault_response(method, fault, chat_id)
        flood_chat = chat_id if method.lower() in _FLOOD_METHODS else None
        try:
            self._check_flood(flood_chat)
            try:
                result = handler(params)
                if asyncio.iscoroutine(result):
                    result = await result
            except _ApiError:
                if flood_chat is not None:
                    self._flood.refund(flood_chat)  # only what reached the chat counts
                raise
        except _ApiError as error:
            scope = error.parameters.pop("_scope", "") if error.parameters else ""
            self._record_error(method, error, chat_id, scope)
            return _error_response(error)
        if fault is not None and fault.processed:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return self._fault_response(method, fault, chat_id)
        return web.json_response({"ok": True, "result": result})

    def _check_flood(self, chat_id: int | None) -> None:
        if chat_id is None:
            return
        verdict = self._flood.admit(chat_id)
        if verdict is not None:
            scope, retry_after = verdict
            raise _ApiError(
                429,
                f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after, "_scope": scope},
            )

    def _fault_response(self, method: str, fault: Fault, chat_id: int | None) -> web.Response:
        status = fault.status or 500
        if status in (502, 504) and fault.description is None:
            # Telegram's nginx front end answers these with an HTML page, not JSON.
            phrase = "Bad Gateway" if status == 502 else "Gateway Time-out"
            self.errors.append(ErrorReply(method, status, phrase))
            self._touch()
            return web.Response(
                status=status,
                text=f"<html><head><title>{status} {phrase}</title></head><body><center>"
                f"<h1>{status} {phrase}</h1></center><hr><center>nginx</center></body></html>",
                content_type="text/html",
            )
        if status == 429:
            error = _ApiError(
                429,
                fault.description or f"Too Many Requests: retry after {fault.retry_after}",
                {"retry_after": fault.retry_after},
            )
        else:
            default = {500: "Internal Server Error", 400: "Bad Request", 403: "Forbidden"}
            error = _ApiError(status, fault.description or default.get(status, "Error"))
        self._record_error(method, error, chat_id, "fault")
        return _error_response(error)

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], bool]:
        """All parameters (query string, then body) decoded; and whether an uploaded file
        exceeded ``upload_limit``. Files are streamed so the limit is enforced without
        buffering more than the limit."""
        raw: dict[str, Any] = dict(request.query)
        too_large = False
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                    continue
                if part.filename is None:
                    raw[part.name] = await part.text()
                    continue
                buf = bytearray()
                while chunk := await part.read_chunk(256 * 1024):
                    if too_large:
                        continue  # drain, so the client gets our 413 rather than a reset
                    buf += chunk
                    if len(buf) > self.upload_limit:
                        too_large, buf = True, bytearray()
                raw[part.name] = UploadedFile(
                    part.name, part.filename, part.headers.get("Content-Type"), bytes(buf)
                )
        elif request.content_type == "application/json":
            body = await request.read()
            try:
                decoded = json.loads(body) if body else {}
            except ValueError:
                decoded = {}
            if isinstance(decoded, dict):
                raw.update(decoded)
        elif request.can_read_body:
            raw.update(await request.post())
        return {name: _decode_value(name, value) for name, value in raw.items()}, too_large

    def _serve_file(self, request: web.Request) -> web.StreamResponse:
        match = _FILE_PATH_RE.fullmatch(request.path)
        if match is None:
            return _error_response(_ApiError(404, "Not Found"))
        if match.group(1) != self.token:
            return _error_response(_ApiError(401, "Unauthorized"))
        for file in self.files.values():
            if file.file_path == match.group(2):
                return web.Response(
                    body=file.data, content_type=file.mime_type or "application/octet-stream"
                )
        return _error_response(_ApiError(404, "Not Found"))

    # -- methods: bot and updates --------------------------------------------------------------

    def _get_me(self, params: _Params) -> dict[str, Any]:
        return {
            **self.bot_user.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: _Params) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise _ApiError(409, WEBHOOK_CONFLICT)
        offset = params.get_int("offset", 0) or 0
        limit = min(max(params.get_int("limit", 100) or 100, 1), 100)
        timeout = max(params.get_int("timeout", 0) or 0, 0)
        allowed = params.get_json("allowed_updates", "allowed updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) or _DEFAULT_UPDATE_TYPES
        self._confirm(offset)
        # A newer getUpdates ends the older one with 409, as Telegram does.
        self._poll_generation += 1
        generation = self._poll_generation
        self._touch()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            self._updates = [u for u in self._updates if u.kind in self._allowed_updates]
            if self._updates:
                batch = self._updates[:limit]
                return [{"update_id": u.update_id, u.kind: u.payload} for u in batch]
            if generation != self._poll_generation:
                raise _ApiError(409, GETUPDATES_CONFLICT)
            remaining = deadline - loop.time()
            if self._closing or remaining <= 0:
                return []
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass

    def _confirm(self, offset: int) -> None:
        if offset < 0:  # the last -offset updates only; everything before is forgotten
            self._updates = self._updates[offset:]
        elif offset:
            self._updates = [u for u in self._updates if u.update_id >= offset]

    def _delete_webhook(self, params: _Params) -> bool:
        self.webhook_url = ""
        if params.get_bool("drop_pending_updates"):
            self._updates.clear()
        return True

    def _set_webhook(self, params: _Params) -> bool:
        self.webhook_url = params.get_str("url") or ""
        if params.get_bool("drop_pending_updates"):
            self._updates.clear()
        return True

    def _get_webhook_info(self, params: _Params) -> dict[str, Any]:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    # -- methods: commands ---------------------------------------------------------------------

    def _scope_key(self, params: _Params) -> tuple[str, str]:
        scope = params.get_json("scope", "BotCommandScope") or {"type": "default"}
        kind = scope.get("type") if isinstance(scope, dict) else None
        if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
            key = str(kind)
        elif kind in ("chat", "chat_administrators"):
            key = f"{kind}:{scope.get('chat_id')}"
        elif kind == "chat_member":
            key = f"chat_member:{scope.get('chat_id')}:{scope.get('user_id')}"
        else:
            raise _bad("can't parse BotCommandScope JSON object")
        return key, params.get_str("language_code") or ""

    def _set_my_commands(self, params: _Params) -> bool:
        commands = params.get_json("commands", "commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        parsed = []
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            description = command.get("description") if isinstance(command, dict) else None
            if not isinstance(name, str) or not _COMMAND_NAME_RE.fullmatch(name):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            parsed.append((name, description))
        self.commands[self._scope_key(params)] = parsed
        self._touch()
        return True

    def _get_my_commands(self, params: _Params) -> list[dict[str, str]]:
        return [
            {"command": name, "description": description}
            for name, description in self.commands.get(self._scope_key(params), [])
        ]

    def _delete_my_commands(self, params: _Params) -> bool:
        self.commands.pop(self._scope_key(params), None)
        self._touch()
        return True

    # -- methods: messages ---------------------------------------------------------------------

    def _render(
        self,
        params: _Params,
        text_field: str,
        entities_field: str,
        limit: int,
        too_long: str,
        warnings: list[str],
    ) -> tuple[str | None, list[dict[str, Any]]]:
        """(visible text, entities) of a text or caption, as Telegram stores it."""
        source = params.get_str(text_field)
        if source is None:
            return None, []
        explicit = params.get_json(entities_field, "entities")
        parse_mode = params.get_str("parse_mode")
        if isinstance(explicit, list):  # explicit entities win over parse_mode
            text, entities = source, explicit
        elif parse_mode and parse_mode.lower() == "html":
            try:
                text, entities = parse_html(source)
            except HtmlParseError as error:
                raise _bad(f"can't parse entities: {error}") from None
        elif parse_mode and parse_mode.lower() in ("markdown", "markdownv2"):
            text, entities = source, []
            warnings.append(f"parse_mode {parse_mode} is not parsed by the fake; text kept as sent")
        elif parse_mode:
            raise _bad("unsupported parse_mode")
        else:
            text, entities = source, []
        text, entities = _trim(text, entities)
        if len(text) > limit:
            raise _bad(too_long)
        return text, self._mentions(entities)

    def _mentions(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A ``tg://user?id=`` link names a user the bot has met: Telegram shows it as a
        mention (which notifies them) with the whole user; one it doesn't know stays text."""
        kept = []
        for entity in entities:
            if entity["type"] == "text_mention":
                user = self._users.get(entity["user"]["id"])
                if user is None:
                    continue
                entity = {**entity, "user": user.to_api()}
            kept.append(entity)
        return kept

    def _reply_target(self, params: _Params, chat: FakeChat) -> RecordedMessage | None:
        reply = params.get_json("reply_parameters", "reply parameters")
        message_id = params.get_int("reply_to_message_id")
        allow_missing = params.get_bool("allow_sending_without_reply")
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow_missing = bool(reply.get("allow_sending_without_reply"))
            if reply.get("chat_id") not in (None, chat.id):
                raise _bad("cross-chat replies are not supported by the fake")
        if message_id is None:
            return None
        target = self._message(chat.id, int(message_id))
        if target is None or target.deleted:
            if allow_missing:
                return None
            raise _bad("message to be replied not found")
        return target

    def _send_message(self, params: _Params) -> dict[str, Any]:
        chat = self._writable_chat(params)
        warnings: list[str] = []
        text, entities = self._render(
            params, "text", "entities", TEXT_LIMIT, "message is too long", warnings
        )
        if not text:
            raise _bad("message text is empty")
        markup = _parse_reply_markup(params, inline_only=False)
        reply_to = self._reply_target(params, chat)
        message = self._add_message(
            chat,
            self.bot_user,
            text=text,
            entities=entities,
            source_text=params.get_str("text"),
            parse_mode=params.get_str("parse_mode"),
            keyboard=markup.keyboard,
            reply_to=reply_to,
            warnings=warnings,
        )
        return message.to_api()

    def _editable(self, params: _Params) -> RecordedMessage:
        if params.get("inline_message_id") is not None:
            raise _bad("inline messages are not supported by the fake")
        chat = self._writable_chat(params)
        message_id = params.required_int("message_id", "message identifier is not specified")
        message = self._message(chat.id, message_id)
        if message is None or message.deleted:
            raise _bad("message to edit not found")
        if not message.from_bot:
            raise _bad("message can't be edited")
        return message

    def _apply_edit(
        self,
        message: RecordedMessage,
        method: str,
        keyboard: list[list[dict[str, Any]]] | None,
        source_text: str | None = None,
        **changes: Any,
    ) -> dict[str, Any]:
        # Telegram compares what the user would see (parsed text, entities, keyboard), so
        # "<b>x</b>" -> "<strong>x</strong>" is "not modified" too.
        unchanged = keyboard == message.keyboard and all(
            getattr(message, name) == value for name, value in changes.items()
        )
        if unchanged:
            raise _bad(NOT_MODIFIED)
        for name, value in changes.items():
            setattr(message, name, value)
        if source_text is not None:
            message.source_text = source_text
        message.keyboard = keyboard
        message.edit_date = int(time.time())
        message.edits.append(
            MessageEdit(method, message.text, message.caption, message.reply_markup, self._clock())
        )
        self._touch()
        return message.to_api()

    def _edit_message_text(self, params: _Params) -> dict[str, Any]:
        message = self._editable(params)
        if message.text is None:
            raise _bad("there is no text in the message to edit")
        warnings: list[str] = []
        text, entities = self._render(
            params, "text", "entities", TEXT_LIMIT, "message is too long", warnings
        )
        if not text:
            raise _bad("message text is empty")
        # No reply_markup in an edit means "no keyboard": Telegram drops the old one.
        markup = _parse_reply_markup(params, inline_only=True)
        message.warnings.extend(warnings)
        return self._apply_edit(
            message,
            "editMessageText",
            markup.keyboard,
            params.get_str("text"),
            text=text,
            entities=entities,
        )

    def _edit_message_caption(self, params: _Params) -> dict[str, Any]:
        message = self._editable(params)
        if message.audio is None and message.document is None:
            raise _bad("there is no caption in the message to edit")
        warnings: list[str] = []
        caption, entities = self._render(
            params,
            "caption",
            "caption_entities",
            CAPTION_LIMIT,
            "message caption is too long",
            warnings,
        )
        markup = _parse_reply_markup(params, inline_only=True)
        message.warnings.extend(warnings)
        return self._apply_edit(
            message,
            "editMessageCaption",
            markup.keyboard,
            params.get_str("caption"),
            caption=caption or None,
            caption_entities=entities,
        )

    def _edit_message_reply_markup(self, params: _Params) -> dict[str, Any]:
        message = self._editable(params)
        markup = _parse_reply_markup(params, inline_only=True)
        return self._apply_edit(message, "editMessageReplyMarkup", markup.keyboard)

    def _delete_message(self, params: _Params) -> bool:
        chat = self._writable_chat(params)
        message_id = params.required_int("message_id", "message identifier is not specified")
        message = self._message(chat.id, message_id)
        if message is None or message.deleted:
            raise _bad("message to delete not found")
        bot_is_admin = self.bot_id in self._admins.get(chat.id, set())
        if not message.from_bot and chat.is_group and not bot_is_admin:
            raise _bad("message can't be deleted")
        message.deleted = True
        message.deleted_at = self._clock()
        self._touch()
        return True

    def _send_chat_action(self, params: _Params) -> bool:
        chat = self._writable_chat(params)
        action = params.get_str("action")
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append(ChatAction(chat.id, action))
        self._touch()
        return True

    # -- methods: files --------------------------------------------------------------------

    async def _input_file(
        self, params: _Params, name: str
    ) -> tuple[bytes, str | None, str | None, RecordedFile | None]:
        """(data, filename, content type, already stored file) of an InputFile parameter:
        an upload, ``attach://``, a file_id, an http(s) URL, or ``file://`` in local mode."""
        value = params.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value[len("attach://") :])
        if isinstance(value, UploadedFile):
            if not value.data:
                raise _bad("file must be non-empty")
            return value.data, value.filename, value.content_type, None
        if not isinstance(value, str) or not value:
            raise _bad(f"there is no {name} in the request")
        if value in self.files:
            stored = self.files[value]
            return stored.data, stored.filename, stored.mime_type, stored
        if value.startswith(("http://", "https://")):
            return await self._fetch_url(value)
        if value.startswith("file://") and self.local_mode:
            path = Path(unquote(urlsplit(value).path))
            try:
                data = await asyncio.to_thread(path.read_bytes)
            except OSError:
                raise _bad("wrong file identifier/HTTP URL specified") from None
            return data, path.name, mimetypes.guess_type(path.name)[0], None
        raise _bad("wrong file identifier/HTTP URL specified")

    async def _fetch_url(self, url: str) -> tuple[bytes, str | None, str | None, None]:
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                if response.status != 200:
                    raise _bad("failed to get HTTP URL content")
                data = await response.content.read(DOWNLOAD_LIMIT + 1)
                content_type = response.headers.get("Content-Type")
        except aiohttp.ClientError:
            raise _bad("failed to get HTTP URL content") from None
        if len(data) > DOWNLOAD_LIMIT or not data:
            raise _bad("failed to get HTTP URL content")
        return data, Path(urlsplit(url).path).name or None, content_type, None

    def _store_file(
        self,
        data: bytes,
        kind: str,
        filename: str | None,
        mime_type: str | None,
        **meta: Any,
    ) -> RecordedFile:
        number = next(self._file_ids)
        ext = Path(filename).suffix if filename else ""
        folder = {"audio": "music", "document": "documents", "thumbnail": "thumbnails"}[kind]
        prefix = {"audio": "CQAC", "document": "BQAC", "thumbnail": "AAMC"}[kind]
        file = RecordedFile(
            data=data,
            file_id=f"{prefix}{number:06d}-{hashlib.sha1(data).hexdigest()[:16]}",
            file_unique_id=f"AgAD{hashlib.sha1(data).hexdigest()[:12]}",
            file_path=f"{folder}/file_{number}{ext}",
            filename=filename,
            mime_type=mime_type,
            **meta,
        )
        self.files[file.file_id] = file
        return file

    async def _thumbnail(self, params: _Params, warnings: list[str]) -> RecordedFile | None:
        value = params.get("thumbnail")
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value[len("attach://") :])
        if value is None:
            return None
        if not isinstance(value, UploadedFile):
            warnings.append("thumbnail ignored: it can only be uploaded as a new file")
            return None
        problem, width, height = await asyncio.to_thread(_thumbnail_problem, value.data)
        if problem:
            warnings.append(f"thumbnail ignored: {problem}")
            return None
        return self._store_file(
            value.data, "thumbnail", value.filename, "image/jpeg", width=width, height=height
        )

    async def _send_media(self, params: _Params, kind: str) -> dict[str, Any]:
        chat = self._writable_chat(params)
        warnings: list[str] = []
        data, filename, content_type, stored = await self._input_file(params, kind)
        caption, caption_entities = self._render(
            params,
            "caption",
            "caption_entities",
            CAPTION_LIMIT,
            "message caption is too long",
            warnings,
        )
        markup = _parse_reply_markup(params, inline_only=False)
        reply_to = self._reply_target(params, chat)
        thumbnail = await self._thumbnail(params, warnings)
        file: RecordedFile
        as_audio = False
        if kind == "audio":
            probe = await asyncio.to_thread(_probe_audio, data)
            as_audio = probe.music
            duration = params.get_int("duration")
            if duration is None and probe.duration is not None:
                duration = round(probe.duration)
            title = params.get_str("title") or probe.title
            performer = params.get_str("performer") or probe.performer
            if not as_audio:
                warnings.append(
                    "not MP3/M4A: Telegram delivers it as a document, outside the music player"
                )
                file = stored or self._store_file(data, "document", filename, content_type)
            elif stored is not None:  # re-sent by file_id: the same file, this message's tags
                file = dataclasses.replace(
                    stored, title=title, performer=performer, duration=duration
                )
            else:
                file = self._store_file(
                    data,
                    "audio",
                    filename,
                    probe.mime_type,
                    title=title,
                    performer=performer,
                    duration=duration,
                )
        else:
            mime = content_type or (mimetypes.guess_type(filename)[0] if filename else None)
            file = stored or self._store_file(data, "document", filename, mime)
        message = self._add_message(
            chat,
            self.bot_user,
            caption=caption or None,
            caption_entities=caption_entities,
            source_text=params.get_str("caption"),
            parse_mode=params.get_str("parse_mode"),
            audio=file if as_audio else None,
            document=None if as_audio else file,
            thumbnail=thumbnail.data if thumbnail else None,
            keyboard=markup.keyboard,
            reply_to=reply_to,
            warnings=warnings,
            _thumbnail_file=thumbnail,
        )
        return message.to_api()

    async def _send_audio(self, params: _Params) -> dict[str, Any]:
        return await self._send_media(params, "audio")

    async def _send_document(self, params: _Params) -> dict[str, Any]:
        return await self._send_media(params, "document")

    def _get_file(self, params: _Params) -> dict[str, Any]:
        file_id = params.get_str("file_id")
        file = self.files.get(file_id or "")
        if file is None:
            raise _bad("invalid file_id")
        if file.size > DOWNLOAD_LIMIT and not self.local_mode:
            raise _bad("file is too big")
        return {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": file.size,
            "file_path": file.file_path,
        }

    # -- methods: callbacks and chats ------------------------------------------------------------

    def _answer_callback_query(self, params: _Params) -> bool:
        query_id = params.get_str("callback_query_id") or ""
        query = self._queries.get(query_id)
        expired = (
            query is not None
            and self.callback_query_ttl is not None
            and (self._clock() - query.created) / self.time_scale > self.callback_query_ttl
        )
        if query is None or query.answered or expired:
            raise _bad(QUERY_TOO_OLD)
        if len(params.get_str("text") or "") > 200:
            raise _bad("MESSAGE_TOO_LONG")
        query.answered = True
        self.callback_answers[query_id] = CallbackAnswer(
            query_id,
            params.get_str("text"),
            params.get_bool("show_alert"),
            params.get_str("url"),
            params.get_int("cache_time"),
        )
        self._touch()
        return True

    def _get_chat(self, params: _Params) -> dict[str, Any]:
        chat = self._chat(params)
        return {
            **chat.to_api(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _member(self, chat: FakeChat, user_id: int) -> dict[str, Any]:
        user = self._users.get(user_id)
        if user is None:
            raise _bad("user not found")
        if self._owners.get(chat.id) == user_id:
            return {"status": "creator", "user": user.to_api(), "is_anonymous": False}
        if user_id in self._admins.get(chat.id, set()):
            return {
                "status": "administrator",
                "user": user.to_api(),
                "can_be_edited": False,
                "is_anonymous": user_id in self._anonymous.get(chat.id, set()),
                "can_manage_chat": True,
                "can_delete_messages": True,
                "can_manage_video_chats": True,
                "can_restrict_members": True,
                "can_promote_members": False,
                "can_change_info": True,
                "can_invite_users": True,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
                "can_pin_messages": True,
            }
        in_chat = (
            user_id in (chat.id, self.bot_id)
            if not chat.is_group
            else user_id == self.bot_id or user_id in self._members[chat.id]
        )
        return {"status": "member" if in_chat else "left", "user": user.to_api()}

    def _get_chat_member(self, params: _Params) -> dict[str, Any]:
        chat = self._chat(params)
        return self._member(chat, params.required_int("user_id", "user_id is empty"))

    def _get_chat_administrators(self, params: _Params) -> list[dict[str, Any]]:
        chat = self._chat(params)
        if not chat.is_group:
            raise _bad("there are no administrators in the private chat")
        ids = list(self._admins.get(chat.id, set()))
        owner = self._owners.get(chat.id)
        if owner is not None and owner not in ids:
            ids.insert(0, owner)
        return [self._member(chat, user_id) for user_id in ids if user_id in self._users]


def _chat_id(chat: FakeChat | int) -> int:
    return chat.id if isinstance(chat, FakeChat) else int(chat)


def _message_id(message: RecordedMessage | int) -> int:
    return message.message_id if isinstance(message, RecordedMessage) else int(message)


def _message_predicate(
    predicate: Callable[[RecordedMessage], bool] | str | None,
) -> Callable[[RecordedMessage], bool]:
    if predicate is None:
        return lambda message: True
    if isinstance(predicate, str):
        needle = predicate
        return lambda message: needle in (message.text or "") or needle in (message.caption or "")
    return predicate


def _error_response(error: _ApiError) -> web.Response:
    body: dict[str, Any] = {
        "ok": False,
        "error_code": error.status,
        "description": error.description,
    }
    if error.parameters:
        body["parameters"] = {k: v for k, v in error.parameters.items() if not k.startswith("_")}
    return web.json_response(body, status=error.status)
