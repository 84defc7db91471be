"""What the fake records, as tests read it back: the users and chats, every message in its
current state (with its edits, files and keyboard), and the calls, answers and errors of the
bot. Each record renders itself the way the Bot API returns it (``to_api``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

TOPIC_COLOR = 7322096  # the blue Telegram gives a topic made without choosing


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
        data = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        return _with_set_fields(data, self, ("last_name", "username", "language_code"))


@dataclass(frozen=True)
class FakeChat:
    """A chat: ``type`` is "private", "group", "supergroup" or "channel"; ``is_forum``: a
    supergroup with topics (its messages live in a topic, or in General)."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    is_forum: bool = False

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.is_forum:
            data["is_forum"] = True
        return _with_set_fields(data, self, ("title", "username", "first_name", "last_name"))


def _with_set_fields(
    data: dict[str, Any], record: object, names: tuple[str, ...]
) -> dict[str, Any]:
    """``data`` plus the named fields of ``record`` that are set: the Bot API omits absent ones."""
    for name in names:
        value = getattr(record, name)
        if value is not None:
            data[name] = value
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
    voice: RecordedFile | None = None  # a voice note (users send them; the bot doesn't)
    thumbnail: bytes | None = None
    sender_chat: FakeChat | None = None  # the chat that spoke; ``sender`` is then a stand-in
    reply_to: RecordedMessage | None = None
    keyboard: list[list[dict[str, Any]]] | None = None  # inline_keyboard as Telegram returns it
    media_group_id: str | None = None  # the album it belongs to (sendMediaGroup)
    thread_id: int | None = None  # the forum topic it is in (None: General, or no forum)
    topic_name: str | None = None  # set on the service message that opened a topic
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
        return buttons_of(self.keyboard)

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
        if self.thread_id is not None:
            data["message_thread_id"] = self.thread_id
            data["is_topic_message"] = True
        if self.topic_name is not None:
            data["forum_topic_created"] = {"name": self.topic_name, "icon_color": TOPIC_COLOR}
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if include_reply and self.reply_to is not None:
            data["reply_to_message"] = self.reply_to.to_api(include_reply=False)
        if self.text is not None:
            data["text"] = self.text
            if self.entities:
                data["entities"] = self.entities
        if self.media_group_id is not None:
            data["media_group_id"] = self.media_group_id
        if self.audio is not None:
            data["audio"] = file_api(self.audio, "audio", self._thumbnail_file)
        if self.document is not None:
            data["document"] = file_api(self.document, "document", self._thumbnail_file)
        if self.voice is not None:
            data["voice"] = file_api(self.voice, "voice", None)
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
        if self.voice:
            parts.append(f"voice={self.voice.size} bytes")
        if self.buttons:
            parts.append(f"buttons={[b.text for b in self.buttons]}")
        if self.thread_id is not None:
            parts.append(f"(topic {self.thread_id})")
        if self.deleted:
            parts.append("(deleted)")
        return " ".join(parts)


def buttons_of(keyboard: list[list[dict[str, Any]]] | None) -> list[list[Button]] | None:
    if keyboard is None:
        return None
    return [
        [Button(b["text"], b.get("callback_data"), b.get("url")) for b in row] for row in keyboard
    ]


def file_api(file: RecordedFile, kind: str, thumbnail: RecordedFile | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "file_size": file.size,
    }
    if kind in ("audio", "voice"):
        data["duration"] = file.duration or 0
    if kind == "audio":
        if file.performer:
            data["performer"] = file.performer
        if file.title:
            data["title"] = file.title
    if file.filename and kind != "voice":  # a voice note has no file name on Telegram
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
