"""What tests read back: requests as the fake received them, messages in their current state
(with their edits, attachments, components and pings), rejections and gateway events."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes.discord.protocol import EPHEMERAL, LOADING, FakeDiscordError, Json


@dataclass
class UploadedFile:
    """One multipart file part as the client sent it."""

    field: str  # "files[0]"
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class RecordedRequest:
    method: str
    path: str  # relative to the API base, e.g. "/channels/1/messages"
    route: str | None  # discord.py's Route.key, e.g. "POST /channels/{channel_id}/messages"
    query: dict[str, str]
    headers: dict[str, str]
    json: Any  # the JSON body, or the parsed multipart ``payload_json``
    form: dict[str, str]  # non-file multipart fields
    files: list[UploadedFile]
    at: float  # nominal time
    status: int = 0
    response: Any = None


@dataclass
class RecordedAttachment:
    id: int
    filename: str
    data: bytes
    content_type: str | None  # what Discord reports: guessed from the filename
    upload_content_type: str | None  # what the multipart part claimed (discord.py: octet-stream)
    description: str | None
    url: str
    spoiler: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    def payload(self) -> Json:
        out: Json = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "flags": 0,
        }
        if self.content_type:
            out["content_type"] = self.content_type
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class RecordedComponent:
    """A button or select menu as the user sees it (flattened out of rows/containers)."""

    type: int  # 2 button, 3 string select, 5-8 other selects
    custom_id: str | None
    label: str | None
    emoji: str | None  # the unicode emoji, or "<:name:id>" for a custom one
    style: int | None
    disabled: bool
    url: str | None
    options: tuple[str, ...]  # select menu option values
    raw: Json = field(compare=False, repr=False)

    @property
    def is_button(self) -> bool:
        return self.type == 2


@dataclass
class RecordedEdit:
    payload: Json
    filenames: list[str]
    via: str  # "interaction" (type 7 / PATCH @original), "followup", "channel"
    at: float  # nominal time


@dataclass
class Pings:
    """Who Discord would notify for a message (after ``allowed_mentions``)."""

    users: frozenset[int]
    roles: frozenset[int]
    everyone: bool
    replied_user: int | None

    @property
    def anyone(self) -> bool:
        return bool(self.users or self.roles or self.everyone or self.replied_user)


MessageVia = Literal["interaction", "followup", "channel", "user"]


@dataclass(eq=False)
class RecordedMessage:
    """A message's *current* state; ``edits`` keeps what changed it."""

    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    via: MessageVia
    content: str = ""
    embeds: list[Json] = field(default_factory=list)
    raw_components: list[Json] = field(default_factory=list)
    attachments: list[RecordedAttachment] = field(default_factory=list)
    flags: int = 0
    allowed_mentions: Json | None = None
    message_reference: Json | None = None
    nonce: str | None = None
    tts: bool = False
    type: int = 0
    interaction_id: int | None = None
    interaction_user_id: int | None = None
    created_at: float = 0.0  # nominal
    created_wall: float = 0.0
    edited_wall: float | None = None
    edits: list[RecordedEdit] = field(default_factory=list)
    deleted: bool = False

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """A deferred "Bot is thinking..." message not yet filled in."""
        return bool(self.flags & LOADING)

    @property
    def components(self) -> list[RecordedComponent]:
        return list(_walk_components(self.raw_components))

    @property
    def buttons(self) -> list[RecordedComponent]:
        return [c for c in self.components if c.is_button]

    def button(self, key: str) -> RecordedComponent:
        """The button whose custom_id or label is ``key``."""
        for c in self.buttons:
            if key in (c.custom_id, c.label):
                return c
        raise FakeDiscordError(
            f"message {self.id} has no button {key!r}; buttons: "
            f"{[(c.label, c.custom_id) for c in self.buttons]}"
        )

    @property
    def pings(self) -> Pings:
        return _compute_pings(
            self.content, self.allowed_mentions, self.message_reference, self._replied_author
        )

    _replied_author: int | None = field(default=None, repr=False)

    def summary(self) -> str:
        flags = []
        if self.ephemeral:
            flags.append("ephemeral")
        if self.loading:
            flags.append("loading")
        if self.deleted:
            flags.append("deleted")
        text = self.content if len(self.content) <= 80 else self.content[:77] + "..."
        parts = [f"#{self.id} via={self.via}", f"content={text!r}"]
        if flags:
            parts.append("[" + ",".join(flags) + "]")
        if self.embeds:
            parts.append(f"embeds={len(self.embeds)}")
        if self.attachments:
            parts.append(f"attachments={[a.filename for a in self.attachments]}")
        if self.buttons:
            parts.append(f"buttons={[c.custom_id or c.label for c in self.buttons]}")
        if self.edits:
            parts.append(f"edits={len(self.edits)}")
        return " ".join(parts)


@dataclass
class Rejection:
    """An interaction call the fake refused, as the bot saw it."""

    route: str
    status: int
    code: int
    message: str
    at: float


@dataclass
class GatewayEvent:
    kind: str  # connect|identify|resume|invalid_session|reconnect_sent|server_close|client_close
    shard_id: int | None
    session_id: str | None
    code: int | None = None
    path: str = ""
    query: dict[str, str] = field(default_factory=dict)
    payload: Json | None = None
    at: float = 0.0


def _walk_components(components: Iterable[Json]) -> Iterator[RecordedComponent]:
    for c in components:
        kind = c.get("type")
        if kind in (2, 3, 5, 6, 7, 8):
            emoji = c.get("emoji")
            text = None
            if emoji:
                text = (
                    emoji.get("name")
                    if not emoji.get("id")
                    else f"<{'a' if emoji.get('animated') else ''}:{emoji.get('name')}:{emoji['id']}>"
                )
            yield RecordedComponent(
                type=kind,
                custom_id=c.get("custom_id"),
                label=c.get("label"),
                emoji=text,
                style=c.get("style"),
                disabled=bool(c.get("disabled")),
                url=c.get("url"),
                options=tuple(o.get("value") for o in c.get("options") or []),
                raw=c,
            )
        for key in ("components",):
            if isinstance(c.get(key), list):
                yield from _walk_components(c[key])
        for key in ("component", "accessory"):
            if isinstance(c.get(key), dict):
                yield from _walk_components([c[key]])


_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def _compute_pings(
    content: str, allowed: Json | None, reference: Json | None, replied_author: int | None
) -> Pings:
    users = {int(u) for u in _USER_MENTION.findall(content)}
    roles = {int(r) for r in _ROLE_MENTION.findall(content)}
    everyone = "@everyone" in content or "@here" in content
    replied: int | None = replied_author if reference else None
    if allowed is not None:
        parse = set(allowed.get("parse") or [])
        if "users" not in parse:
            users &= {int(u) for u in allowed.get("users") or []}
        if "roles" not in parse:
            roles &= {int(r) for r in allowed.get("roles") or []}
        everyone = everyone and "everyone" in parse
        if not allowed.get("replied_user", False):
            replied = None
    return Pings(frozenset(users), frozenset(roles), everyone, replied)
