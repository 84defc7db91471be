"""A loopback fake of Discord (REST v10 + gateway websocket) that the real discord.py 2.7 talks to.

Start it, point discord.py at it, drive the bot like a user would, and look at what users see::

    async with FakeDiscord(application_id=APP_ID) as dc:
        dc.add_user(USER, "alice")
        dc.add_guild(GUILD, "Test Guild", channels=[(CHANNEL, "general")], members=[USER])
        with point_discord_at(dc):
            task = asyncio.create_task(bot.start(dc.token))
            await dc.wait_until_ready()
            await dc.wait_for_commands_synced("song", guild_id=GUILD)
            inter = await dc.invoke_slash(GUILD, CHANNEL, USER, "song", {"tags": "lo-fi"})
            msg = await inter.wait_for_original(lambda m: m.attachments)
            await bot.close()

What it is faithful to (each point checked against discord.py 2.7.1's source):

* REST under ``/api/v10``: bot routes need ``Authorization: Bot <token>`` (else 401), interaction
  callbacks and webhook routes need none (as on Discord). JSON answers carry
  ``Content-Type: application/json`` *exactly* - discord.py's ``json_or_text`` compares the whole
  header, so aiohttp's usual ``; charset=utf-8`` would make it see a ``str`` and crash.
* Discord's error codes: 10062 late/unknown interaction, 40060 second initial response, 50027
  expired interaction token (15 min), 10015 follow-up before the interaction was acknowledged,
  50035 form errors (content > 2000, > 10 embeds, embed limits, > 5 action rows, ...), 50006 empty
  message, 40005/413 upload over the guild's limit, 50013 missing permissions.
* ``enforce_nonce`` (discord.py sends it with every ``nonce``): a create-message with the nonce
  of one the same author made in that channel within ``NONCE_WINDOW`` returns that message and
  makes none. Faults can be ``processed``: the request is carried out, then its answer fails.
* ``app_permissions`` as Discord resolves them: the bot's, overwrites included, in a guild; in
  a DM only Attach Files, Embed Links, Mention Everyone and Use External Emojis.
* Rate limits: every answer carries ``X-RateLimit-*`` headers from per-route buckets (nominal
  windows scaled by ``time_scale``); 429s carry ``Via`` (discord.py only retries a 429 that has
  one) and a JSON body with ``retry_after``/``global``.
* Gateway: HELLO, IDENTIFY/READY/GUILD_CREATE per shard (``(guild_id >> 22) % shard_count``),
  heartbeats, RESUME with replay of missed dispatches then RESUMED, op 7/op 9 on demand, server
  side closes; zlib-stream compressed frames when the URL asks for them.
* After a type-5 defer the first follow-up *edits* the "thinking" message (it stays ``@original``
  and keeps the defer's ephemerality); after a component's type-6/7 answer ``@original`` is the
  message the component is on.

Time: ``time_scale`` maps nominal Discord seconds to real ones (0.01 → the 3 s deadline is 30 ms);
``await dc.advance_time(seconds)`` jumps the fake's clock (deterministic expiry tests). The clock
only governs the fake's own rules - discord.py's ``Interaction.is_expired()`` reads the wall clock
through the snowflake and does not see either.

discord.py's own real-time waits, worth knowing in tests: ``on_ready`` fires
``guild_ready_timeout`` (2 s) after the last GUILD_CREATE - pass ``guild_ready_timeout=0.05``;
``before_identify_hook`` sleeps 5 s before every re-IDENTIFY (op 9, extra shards) - override it;
5xx retries sleep 1, 3, 5, 7 s. Rate limits default to Discord-like buckets (``DEFAULT_RATE_LIMITS``,
e.g. 5 messages per 5 nominal s per channel); loosen them with
``FakeDiscord(rate_limits={"POST /channels/{channel_id}/messages": (50, 1.0)})`` - keys are
discord.py ``Route.key`` strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import json
import math
import mimetypes
import re
import secrets
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import discord.gateway
import discord.http
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

T = TypeVar("T")
Json = dict[str, Any]

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
MIB = 1024 * 1024

# Nominal seconds (scaled by time_scale).
INTERACTION_RESPONSE_WINDOW = 3.0
INTERACTION_TOKEN_TTL = 15 * 60.0
NONCE_WINDOW = 5 * 60.0  # Discord: "a few minutes"
HEARTBEAT_INTERVAL_MS = 41_250

# Guild.filesize_limit in discord.py 2.7.1 is this table keyed by premium_tier (guild.py:454).
FILESIZE_BY_PREMIUM_TIER = {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}
DM_FILESIZE_LIMIT = 10 * MIB

# Message flags
SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15

# Gateway intents
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT


class Perm:
    """Permission bits the fake checks or hands out."""

    CREATE_INSTANT_INVITE = 1 << 0
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    USE_APPLICATION_COMMANDS = 1 << 31
    CREATE_PUBLIC_THREADS = 1 << 35
    SEND_MESSAGES_IN_THREADS = 1 << 38
    ALL = (1 << 51) - 1

    EVERYONE_DEFAULT = (
        CREATE_INSTANT_INVITE
        | ADD_REACTIONS
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | CONNECT
        | SPEAK
        | CHANGE_NICKNAME
        | USE_APPLICATION_COMMANDS
        | CREATE_PUBLIC_THREADS
        | SEND_MESSAGES_IN_THREADS
    )
    BOT_DEFAULT = (
        VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | ADD_REACTIONS
        | USE_EXTERNAL_EMOJIS
        | SEND_MESSAGES_IN_THREADS
    )
    DM_APP = ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE | USE_EXTERNAL_EMOJIS


# --------------------------------------------------------------------------------------------
# Errors


class FakeDiscordError(AssertionError):
    """A test asked for something a Discord user could not do (or the fake was misused)."""


class FakeDiscordTimeout(FakeDiscordError):
    """A ``wait_for_*`` ran out of time; the message says what was there instead."""


class DiscordAPIError(Exception):
    """Raised inside handlers; becomes a Discord-shaped JSON error answer."""

    def __init__(self, status: int, code: int, message: str, errors: Json | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> Json:
        out: Json = {"message": self.message, "code": self.code}
        if self.errors:
            out["errors"] = self.errors
        return out


def _err(kind: str) -> DiscordAPIError:
    status, code, message = _ERRORS[kind]
    return DiscordAPIError(status, code, message)


_ERRORS: dict[str, tuple[int, int, str]] = {
    "unauthorized": (401, 0, "401: Unauthorized"),
    "not_found": (404, 0, "404: Not Found"),
    "method_not_allowed": (405, 0, "405: Method Not Allowed"),
    "unknown_application": (404, 10002, "Unknown Application"),
    "unknown_channel": (404, 10003, "Unknown Channel"),
    "unknown_guild": (404, 10004, "Unknown Guild"),
    "unknown_member": (404, 10007, "Unknown Member"),
    "unknown_message": (404, 10008, "Unknown Message"),
    "unknown_user": (404, 10013, "Unknown User"),
    "unknown_webhook": (404, 10015, "Unknown Webhook"),
    "unknown_command": (404, 10063, "Unknown application command"),
    "unknown_interaction": (404, 10062, "Unknown interaction"),
    "too_large": (413, 40005, "Request entity too large"),
    "already_acknowledged": (400, 40060, "Interaction has already been acknowledged."),
    "cannot_edit_others": (403, 50005, "Cannot edit a message authored by another user"),
    "empty_message": (400, 50006, "Cannot send an empty message"),
    "missing_permissions": (403, 50013, "Missing Permissions"),
    "invalid_webhook_token": (401, 50027, "Invalid Webhook Token"),
}


class _FormErrors:
    """Collects Discord's nested ``errors`` object for a 400/50035 "Invalid Form Body"."""

    def __init__(self) -> None:
        self.tree: Json = {}

    def add(self, path: Sequence[str | int], code: str, message: str) -> None:
        node = self.tree
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def max_len(self, path: Sequence[str | int], value: Any, limit: int) -> None:
        if value is not None and len(value) > limit:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def raise_if_any(self) -> None:
        if self.tree:
            raise DiscordAPIError(400, 50035, "Invalid Form Body", self.tree)


# --------------------------------------------------------------------------------------------
# Recorded things (what tests look at)


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


@dataclass(eq=False)
class FakeInteraction:
    """One interaction the fake sent to the bot, and everything the bot did with it."""

    fake: FakeDiscord = field(repr=False)
    id: int
    token: str = field(repr=False)
    type: int  # 2 command, 3 component, 4 autocomplete, 5 modal submit
    guild_id: int | None
    channel_id: int
    user_id: int
    payload: Json = field(repr=False)  # the INTERACTION_CREATE ``d``
    created_at: float  # nominal
    source_message_id: int | None = None  # the message a component (or its modal) was on
    parent: FakeInteraction | None = field(default=None, repr=False)  # modal submit → opener
    responses: list[Json] = field(default_factory=list)  # accepted callbacks {type, data, files}
    rejections: list[Rejection] = field(default_factory=list)
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal_submitted: bool = False
    _defer_pending: bool = field(default=False, repr=False)

    @property
    def response_type(self) -> int | None:
        return self.responses[0]["type"] if self.responses else None

    @property
    def acknowledged(self) -> bool:
        return bool(self.responses)

    @property
    def deferred(self) -> bool:
        return self.response_type in (5, 6)

    @property
    def modal(self) -> Json | None:
        """The modal the bot answered with (response type 9), as sent."""
        for r in self.responses:
            if r["type"] == 9:
                return dict(r["data"])
        return None

    @property
    def autocomplete_choices(self) -> list[Json] | None:
        for r in self.responses:
            if r["type"] == 8:
                return list(r["data"].get("choices", []))
        return None

    @property
    def original(self) -> RecordedMessage | None:
        """The current ``@original`` message (None before a response that makes one)."""
        return self.fake._messages.get(self.original_id) if self.original_id else None

    @property
    def followups(self) -> list[RecordedMessage]:
        """Messages the bot's follow-ups produced. After a type-5 defer the first one *is*
        ``original`` (Discord fills the "thinking" message instead of posting a new one)."""
        return [self.fake._messages[i] for i in self.followup_ids]

    @property
    def response_deadline(self) -> float:
        return self.created_at + self.fake.interaction_response_window

    @property
    def token_expires_at(self) -> float:
        return self.created_at + self.fake.interaction_token_ttl

    def summary(self) -> str:
        lines = [f"interaction {self.id} type={self.type} user={self.user_id}"]
        lines.append(f"  responses: {[r['type'] for r in self.responses]}")
        if self.original:
            lines.append(f"  original: {self.original.summary()}")
        for m in self.followups:
            lines.append(f"  followup: {m.summary()}")
        for r in self.rejections:
            lines.append(f"  rejected: {r.route} -> {r.status} {r.code} {r.message}")
        return "\n".join(lines)

    async def wait_for_response(self, timeout: float = 10.0) -> Json:
        """The first accepted callback ({type, data, files})."""
        return await self.fake._wait(
            lambda: self.responses[0] if self.responses else None,
            timeout,
            f"a response to interaction {self.id}",
            self.summary,
        )

    async def wait_for_original(
        self, predicate: Callable[[RecordedMessage], Any] | None = None, timeout: float = 10.0
    ) -> RecordedMessage:
        """``@original`` once it exists and (judged on its current state) satisfies predicate."""

        def check() -> RecordedMessage | None:
            m = self.original
            if m is not None and (predicate is None or predicate(m)):
                return m
            return None

        return await self.fake._wait(
            check,
            timeout,
            f"@original of interaction {self.id}"
            + (" matching the predicate" if predicate else ""),
            self.summary,
        )

    async def wait_for_followup(
        self, predicate: Callable[[RecordedMessage], Any] | None = None, timeout: float = 10.0
    ) -> RecordedMessage:
        def check() -> RecordedMessage | None:
            for m in self.followups:
                if predicate is None or predicate(m):
                    return m
            return None

        return await self.fake._wait(
            check, timeout, f"a follow-up of interaction {self.id}", self.summary
        )

    async def wait_for_modal(self, timeout: float = 10.0) -> Json:
        return await self.fake._wait(
            lambda: self.modal, timeout, f"a modal answering interaction {self.id}", self.summary
        )

    async def wait_for_rejection(self, code: int | None = None, timeout: float = 10.0) -> Rejection:
        def check() -> Rejection | None:
            for r in self.rejections:
                if code is None or r.code == code:
                    return r
            return None

        return await self.fake._wait(
            check, timeout, f"a rejected call (code {code}) on interaction {self.id}", self.summary
        )

    async def wait_until_response_deadline_passed(self, timeout: float = 30.0) -> None:
        """Block until the fake's clock is past the 3 s (nominal) deadline."""
        await self.fake.wait_until_time(self.response_deadline + 1e-3, timeout)


# --------------------------------------------------------------------------------------------
# Faults


@dataclass
class Fault:
    route: str  # "METHOD /path/{any}": {x} matches one segment, * the rest; or just "*"
    status: int | None = None
    retry_after: float = 1.0  # 429: seconds the client is told to wait (real seconds)
    global_: bool = False  # 429: a global rate limit
    via: bool = True  # 429: send the Via header (False → discord.py will not retry it)
    scope: str | None = None  # 429: X-RateLimit-Scope (user/global/shared)
    delay: float = 0.0  # real seconds to wait before answering
    drop: bool = False  # close the connection without answering
    body: Any = None  # replaces the error body
    times: int | None = 1  # None: for ever
    # Carry the request out first (the message really is made), then fail the answer: a
    # client that retries, or restarts, can't tell it already happened.
    processed: bool = False
    hits: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pattern = _route_regex(self.route)

    def matches(self, method: str, path: str) -> bool:
        return bool(self._pattern.match(f"{method} {path}"))


def _route_regex(route: str) -> re.Pattern[str]:
    if route.strip() == "*":
        return re.compile(r"^\S+ .*$")
    method, _, path = route.strip().partition(" ")
    if path == "*":
        return re.compile(rf"^{re.escape(method.upper())} .*$")
    parts = []
    for seg in path.strip("/").split("/"):
        if seg == "*":
            parts.append(".*")  # the rest of the path
        elif seg.startswith("{") and seg.endswith("}"):
            parts.append("[^/]+")
        else:
            parts.append(re.escape(seg))
    return re.compile(rf"^{re.escape(method.upper())} /" + "/".join(parts) + "$")


class Faults:
    """``dc.faults.add(route=..., status=429, retry_after=0.05, times=1)`` etc."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        route: str = "*",
        *,
        status: int | None = None,
        retry_after: float = 1.0,
        global_: bool = False,
        via: bool = True,
        scope: str | None = None,
        delay: float = 0.0,
        drop: bool = False,
        body: Any = None,
        times: int | None = 1,
        processed: bool = False,
    ) -> Fault:
        fault = Fault(
            route, status, retry_after, global_, via, scope, delay, drop, body, times, processed
        )
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def __len__(self) -> int:
        return len(self._faults)

    def __iter__(self) -> Iterator[Fault]:
        return iter(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None


# --------------------------------------------------------------------------------------------
# World model


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    premium_tier: int = 0
    preferred_locale: str = "en-US"
    features: list[str] = field(default_factory=list)
    channels: dict[int, Json] = field(default_factory=dict)
    roles: dict[int, Json] = field(default_factory=dict)
    members: dict[int, Json] = field(default_factory=dict)  # user id -> member (without "user")
    filesize_limit_override: int | None = None

    @property
    def filesize_limit(self) -> int:
        if self.filesize_limit_override is not None:
            return self.filesize_limit_override
        return FILESIZE_BY_PREMIUM_TIER.get(self.premium_tier, 10 * MIB)

    def channel_id(self, name: str) -> int:
        for cid, ch in self.channels.items():
            if ch["name"] == name:
                return cid
        raise FakeDiscordError(f"guild {self.id} has no channel named {name!r}")


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    request: web.Request
    path: str
    query: dict[str, str]
    compressor: Any  # zlib compressobj or None
    session: _Session | None = None
    heartbeats: int = 0
    server_closed: bool = False  # we closed it (its close_code is then the client's reply)

    async def send(self, payload: Json) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        if self.compressor is not None:
            # zlib-stream: one shared context, every message ends with a Z_SYNC_FLUSH marker
            data = self.compressor.compress(text.encode())
            data += self.compressor.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(text)


@dataclass(eq=False)
class _Session:
    id: str
    shard_id: int
    shard_count: int
    intents: int
    identify: Json
    seq: int = 0
    log: list[Json] = field(default_factory=list)
    conn: _Conn | None = None
    live: bool = False  # the connection receives dispatches
    ready: bool = False  # READY and the GUILD_CREATEs went out
    resumable: bool = True
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Bucket:
    limit: int
    window: float  # nominal seconds
    remaining: int
    reset_at: float  # nominal


@dataclass
class _Req:
    method: str
    route: str
    params: dict[str, str]
    query: Mapping[str, str]
    json: Any
    files: list[UploadedFile]
    headers: Mapping[str, str]


# Routes: (method, path template, handler name, needs bot auth). Templates use discord.py's
# placeholder names so RecordedRequest.route equals discord.py's Route.key.
_ROUTES: list[tuple[str, str, str, bool]] = [
    ("GET", "/gateway", "_r_gateway", False),
    ("GET", "/gateway/bot", "_r_gateway_bot", True),
    ("GET", "/users/@me", "_r_me", True),
    ("POST", "/users/@me/channels", "_r_create_dm", True),
    ("GET", "/users/{user_id}", "_r_user", True),
    ("GET", "/oauth2/applications/@me", "_r_application", True),
    ("GET", "/applications/@me", "_r_application", True),
    ("GET", "/applications/{application_id}/commands", "_r_get_commands", True),
    ("PUT", "/applications/{application_id}/commands", "_r_put_commands", True),
    ("POST", "/applications/{application_id}/commands", "_r_post_command", True),
    ("DELETE", "/applications/{application_id}/commands/{command_id}", "_r_delete_command", True),
    ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", "_r_get_commands", True),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", "_r_put_commands", True),
    ("POST", "/applications/{application_id}/guilds/{guild_id}/commands", "_r_post_command", True),
    (
        "DELETE",
        "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
        "_r_delete_command",
        True,
    ),
    ("POST", "/interactions/{webhook_id}/{webhook_token}/callback", "_r_callback", False),
    ("POST", "/webhooks/{webhook_id}/{webhook_token}", "_r_followup", False),
    ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", "_r_wh_get", False),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", "_r_wh_edit", False),
    ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", "_r_wh_delete", False),
    ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", "_r_wh_get", False),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", "_r_wh_edit", False),
    (
        "DELETE",
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
        "_r_wh_delete",
        False,
    ),
    ("GET", "/channels/{channel_id}", "_r_get_channel", True),
    ("GET", "/channels/{channel_id}/messages", "_r_history", True),
    ("POST", "/channels/{channel_id}/messages", "_r_send", True),
    ("GET", "/channels/{channel_id}/messages/{message_id}", "_r_get_message", True),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}", "_r_edit_message", True),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}", "_r_delete_message", True),
    ("POST", "/channels/{channel_id}/typing", "_r_typing", True),
    ("GET", "/guilds/{guild_id}", "_r_get_guild", True),
    ("GET", "/guilds/{guild_id}/channels", "_r_guild_channels", True),
    ("GET", "/guilds/{guild_id}/roles", "_r_guild_roles", True),
    ("GET", "/guilds/{guild_id}/members/{user_id}", "_r_get_member", True),
]

# Nominal (limit, window seconds) per route; everything else gets _DEFAULT_RATE_LIMIT.
DEFAULT_RATE_LIMITS: dict[str, tuple[int, float]] = {
    "POST /channels/{channel_id}/messages": (5, 5.0),
    "PATCH /channels/{channel_id}/messages/{message_id}": (5, 5.0),
    "DELETE /channels/{channel_id}/messages/{message_id}": (5, 5.0),
    "POST /webhooks/{webhook_id}/{webhook_token}": (5, 2.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original": (5, 2.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": (5, 2.0),
}
_DEFAULT_RATE_LIMIT = (50, 1.0)


def _compile_routes() -> list[tuple[str, str, re.Pattern[str], str, bool]]:
    out = []
    for method, template, handler, auth in _ROUTES:
        regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        out.append((method, template, re.compile(regex), handler, auth))
    return out


_COMPILED_ROUTES = _compile_routes()


# --------------------------------------------------------------------------------------------
# The fake


class FakeDiscord:
    """Discord on 127.0.0.1: REST under ``api_base``, the gateway at ``gateway_url``."""

    def __init__(
        self,
        *,
        token: str = "FAKE-TEST-TOKEN",
        application_id: int = 1_100_000_000_000_000_001,
        bot_user_id: int | None = None,
        bot_username: str = "AceJam",
        time_scale: float = 1.0,
        shard_count: int = 1,
        rate_limits: Mapping[str, tuple[int, float]] | None = None,
        gateway_compression: bool = True,
        allowed_privileged_intents: int = PRIVILEGED_INTENTS,
        application_flags: int = 0,
        interaction_response_window: float = INTERACTION_RESPONSE_WINDOW,
        interaction_token_ttl: float = INTERACTION_TOKEN_TTL,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.token = token
        self.application_id = application_id
        self.bot_user_id = bot_user_id or application_id  # Discord: the bot user shares the id
        self.time_scale = time_scale
        self.shard_count = shard_count
        self.gateway_compression = gateway_compression
        self.allowed_privileged_intents = allowed_privileged_intents
        self.application_flags = application_flags
        self.interaction_response_window = interaction_response_window
        self.interaction_token_ttl = interaction_token_ttl
        self.rate_limits: dict[str, tuple[int, float]] = dict(DEFAULT_RATE_LIMITS)
        if rate_limits:
            self.rate_limits.update(rate_limits)

        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.invalid_request_count = 0  # 401/403/429 answers, which Discord counts towards a ban
        self.server_errors: list[str] = []  # bugs in the fake itself (handler exceptions)
        self.gateway_events: list[GatewayEvent] = []
        self.identify_payloads: list[Json] = []  # IDENTIFY ``d`` (token redacted)
        self.presence_updates: list[Json] = []
        self.command_syncs: list[tuple[int | None, list[str]]] = []

        self._users: dict[int, Json] = {}
        self._guilds: dict[int, FakeGuild] = {}
        self._dm_channels: dict[int, Json] = {}  # channel id -> DM channel
        self._commands: dict[int | None, list[Json]] = {}  # guild id (None: global) -> commands
        self._messages: dict[int, RecordedMessage] = {}
        self._channel_order: dict[int, list[int]] = {}
        self._attachments: dict[int, RecordedAttachment] = {}
        self._nonces: dict[tuple[int, int, str], tuple[int, float]] = {}
        self._interactions: dict[int, FakeInteraction] = {}
        self._by_token: dict[str, FakeInteraction] = {}
        self._sessions: dict[str, _Session] = {}
        self._shard_sessions: dict[int, _Session] = {}
        self._conns: set[_Conn] = set()
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._gw_marker = 0
        self._last_snowflake = 0

        self._cond: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self._t0 = 0.0
        self._offset = 0.0
        self._port = 0

        self.add_user(self.bot_user_id, bot_username, bot=True)

    # ---- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        self._cond = asyncio.Condition()
        app = web.Application(client_max_size=1024 * MIB)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._handle_api)
        app.router.add_get("/gateway", self._handle_gateway)
        app.router.add_get("/resume-gateway", self._handle_gateway)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._handle_cdn)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"fake closing"), 1.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be set to."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` must be (as a ``yarl.URL``)."""
        return f"ws://127.0.0.1:{self._port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/resume-gateway"

    # ---- clock ----------------------------------------------------------------------------

    def now(self) -> float:
        """Nominal seconds since the fake started (real time / time_scale + advances)."""
        return (asyncio.get_running_loop().time() - self._t0) / self.time_scale + self._offset

    def _wall(self) -> float:
        return time.time() + self._offset

    async def advance_time(self, seconds: float) -> None:
        """Jump the fake's clock forward by ``seconds`` nominal seconds."""
        self._offset += seconds
        await self._notify()

    async def wait_until_time(self, nominal: float, timeout: float = 30.0) -> None:
        async def run() -> None:
            assert self._cond is not None
            async with self._cond:
                while self.now() < nominal:
                    real_left = (nominal - self.now()) * self.time_scale
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._cond.wait(), max(real_left, 0.001))

        try:
            await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            raise FakeDiscordTimeout(
                f"the fake's clock did not reach {nominal:.3f} within {timeout} s "
                f"(now {self.now():.3f}, time_scale={self.time_scale})"
            ) from None

    # ---- ids ------------------------------------------------------------------------------

    def snowflake(self) -> int:
        """A fresh id with a real timestamp, like Discord's."""
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        value = (ms << 22) | (1 << 17)
        if value <= self._last_snowflake:
            value = self._last_snowflake + 1
        self._last_snowflake = value
        return value

    @staticmethod
    def shard_for(guild_id: int, shard_count: int) -> int:
        return (guild_id >> 22) % shard_count

    # ---- world model ----------------------------------------------------------------------

    def add_user(
        self, id: int, username: str, *, global_name: str | None = None, bot: bool = False
    ) -> Json:
        user = {
            "id": str(id),
            "username": username,
            "discriminator": "0",
            "global_name": global_name,
            "avatar": None,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "public_flags": 0,
            "flags": 0,
            "bot": bot,
        }
        self._users[id] = user
        return user

    def add_guild(
        self,
        id: int,
        name: str,
        *,
        channels: Iterable[int | tuple[int, str] | Mapping[str, Any]] = (),
        members: Iterable[int | Mapping[str, Any]] = (),
        roles: Iterable[Mapping[str, Any]] = (),
        premium_tier: int = 0,
        owner_id: int | None = None,
        preferred_locale: str = "en-US",
        features: Iterable[str] = (),
        everyone_permissions: int = Perm.EVERYONE_DEFAULT,
        bot_permissions: int = Perm.BOT_DEFAULT,
    ) -> FakeGuild:
        """Add a guild the bot is in. Channels: ids, ``(id, name)`` or channel dicts (``nsfw``,
        ``type``, ``permission_overwrites``...). Members: user ids or dicts with ``id``,
        ``roles``, ``nick``, ``permissions`` (extra bits, as if granted by a role)."""
        if owner_id is None:
            owner_id = self.snowflake()
            self.add_user(owner_id, f"owner-of-{name}")
        guild = FakeGuild(
            id=id,
            name=name,
            owner_id=owner_id,
            premium_tier=premium_tier,
            preferred_locale=preferred_locale,
            features=list(features),
        )
        self._guilds[id] = guild
        guild.roles[id] = _role_payload(id, "@everyone", everyone_permissions, position=0)
        for i, spec in enumerate(roles, start=1):
            rid = int(spec["id"])
            guild.roles[rid] = _role_payload(
                rid,
                spec.get("name", f"role-{i}"),
                int(spec.get("permissions", 0)),
                position=int(spec.get("position", i)),
            )
        bot_role = self.snowflake()
        guild.roles[bot_role] = _role_payload(
            bot_role,
            self._users[self.bot_user_id]["username"],
            bot_permissions,
            position=len(guild.roles),
            managed=True,
            bot_id=self.bot_user_id,
        )
        for position, channel_spec in enumerate(channels):
            self.add_channel(id, channel_spec, position=position)
        self.add_member(id, owner_id)
        self.add_member(id, self.bot_user_id, roles=[bot_role])
        for m in members:
            if isinstance(m, Mapping):
                self.add_member(
                    id,
                    int(m["id"]),
                    roles=m.get("roles", ()),
                    nick=m.get("nick"),
                    permissions=int(m.get("permissions", 0)),
                    username=m.get("username"),
                )
            else:
                self.add_member(id, int(m))
        return guild

    def add_channel(
        self,
        guild_id: int,
        spec: int | tuple[int, str] | Mapping[str, Any],
        *,
        position: int | None = None,
    ) -> Json:
        guild = self.guild(guild_id)
        fields: Mapping[str, Any]
        if isinstance(spec, int):
            fields = {"id": spec}
        elif isinstance(spec, tuple):
            fields = {"id": spec[0], "name": spec[1]}
        else:
            fields = spec
        cid = int(fields["id"])
        channel: Json = {
            "id": str(cid),
            "type": 0,
            "guild_id": str(guild_id),
            "name": f"channel-{len(guild.channels)}",
            "position": len(guild.channels) if position is None else position,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }
        channel.update({k: v for k, v in fields.items() if k != "id"})
        channel["permission_overwrites"] = [
            {
                "id": str(o["id"]),
                "type": int(o.get("type", 0)),
                "allow": str(o.get("allow", 0)),
                "deny": str(o.get("deny", 0)),
            }
            for o in channel["permission_overwrites"]
        ]
        if channel["type"] == 2:
            channel.setdefault("bitrate", 64000)
            channel.setdefault("user_limit", 0)
            channel.setdefault("rtc_region", None)
        guild.channels[cid] = channel
        return channel

    def set_overwrite(
        self,
        channel_id: int,
        target_id: int,
        *,
        allow: int = 0,
        deny: int = 0,
        member: bool = True,
    ) -> None:
        """Set a channel's permission overwrite for a member (or a role, ``member=False``),
        replacing any it had. Applies to every request from now on; interactions carry the
        permissions as they were when they were created."""
        found = self._find_channel(channel_id)
        if found is None or found[1] is None:
            raise FakeDiscordError(f"no guild channel {channel_id}")
        channel = found[0]
        kept = [o for o in channel["permission_overwrites"] if int(o["id"]) != target_id]
        kept.append(
            {"id": str(target_id), "type": int(member), "allow": str(allow), "deny": str(deny)}
        )
        channel["permission_overwrites"] = kept

    def add_member(
        self,
        guild_id: int,
        user_id: int,
        *,
        roles: Iterable[int] = (),
        nick: str | None = None,
        permissions: int = 0,
        username: str | None = None,
    ) -> Json:
        guild = self.guild(guild_id)
        if user_id not in self._users:
            self.add_user(user_id, username or f"user{user_id}")
        member = {
            "roles": [str(r) for r in roles],
            "nick": nick,
            "avatar": None,
            "banner": None,
            "joined_at": _iso(time.time()),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
            "_extra_permissions": permissions,
        }
        guild.members[user_id] = member
        return member

    def set_filesize_limit(self, guild_id: int, limit: int | None) -> None:
        """Override a guild's upload limit (None: back to the premium tier's). Interactions
        carry it as ``attachment_size_limit`` (discord.py: ``Interaction.filesize_limit``);
        discord.py's ``Guild.filesize_limit`` only knows the premium tier table."""
        self.guild(guild_id).filesize_limit_override = limit

    def filesize_limit(self, guild_id: int | None) -> int:
        return self.guild(guild_id).filesize_limit if guild_id else DM_FILESIZE_LIMIT

    def guild(self, guild_id: int) -> FakeGuild:
        try:
            return self._guilds[guild_id]
        except KeyError:
            raise FakeDiscordError(f"no guild {guild_id}; add it with dc.add_guild()") from None

    def user(self, user_id: int) -> Json:
        return self._users[user_id]

    def _find_channel(self, channel_id: int) -> tuple[Json, FakeGuild | None] | None:
        for g in self._guilds.values():
            if channel_id in g.channels:
                return g.channels[channel_id], g
        if channel_id in self._dm_channels:
            return self._dm_channels[channel_id], None
        return None

    # ---- permissions ----------------------------------------------------------------------

    def permissions(self, guild_id: int, user_id: int, channel_id: int | None = None) -> int:
        """Effective permissions like Discord computes them (roles, then channel overwrites)."""
        g = self.guild(guild_id)
        if user_id == g.owner_id:
            return Perm.ALL
        member = g.members.get(user_id)
        if member is None:
            return 0
        perms = int(g.roles[g.id]["permissions"]) | int(member.get("_extra_permissions", 0))
        role_ids = {int(r) for r in member["roles"]}
        for rid in role_ids:
            if rid in g.roles:
                perms |= int(g.roles[rid]["permissions"])
        if perms & Perm.ADMINISTRATOR:
            return Perm.ALL
        if channel_id is None or channel_id not in g.channels:
            return perms
        overwrites = g.channels[channel_id]["permission_overwrites"]
        for ow in overwrites:
            if int(ow["id"]) == g.id and ow["type"] == 0:
                perms = (perms & ~int(ow["deny"])) | int(ow["allow"])
        allow = deny = 0
        for ow in overwrites:
            if ow["type"] == 0 and int(ow["id"]) in role_ids:
                allow |= int(ow["allow"])
                deny |= int(ow["deny"])
        perms = (perms & ~deny) | allow
        for ow in overwrites:
            if ow["type"] == 1 and int(ow["id"]) == user_id:
                perms = (perms & ~int(ow["deny"])) | int(ow["allow"])
        return perms

    # ---- payload builders -----------------------------------------------------------------

    def _user_payload(self, user_id: int) -> Json:
        return dict(self._users[user_id])

    def _member_payload(
        self,
        guild: FakeGuild,
        user_id: int,
        *,
        with_user: bool = True,
        channel_id: int | None = None,
    ) -> Json:
        member = {k: v for k, v in guild.members[user_id].items() if not k.startswith("_")}
        if with_user:
            member["user"] = self._user_payload(user_id)
        if channel_id is not None:
            member["permissions"] = str(self.permissions(guild.id, user_id, channel_id))
        return member

    def _guild_payload(self, g: FakeGuild) -> Json:
        return {
            "id": str(g.id),
            "name": g.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(g.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": list(g.roles.values()),
            "emojis": [],
            "stickers": [],
            "features": list(g.features),
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "premium_tier": g.premium_tier,
            "premium_subscription_count": (0, 2, 7, 14)[min(g.premium_tier, 3)],
            "preferred_locale": g.preferred_locale,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
        }

    def _guild_create_payload(self, g: FakeGuild) -> Json:
        payload = self._guild_payload(g)
        payload.update(
            joined_at=_iso(self._wall()),
            large=False,
            unavailable=False,
            member_count=len(g.members),
            members=[self._member_payload(g, uid) for uid in g.members],
            channels=[dict(c) for c in g.channels.values()],
            threads=[],
            presences=[],
            voice_states=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
        )
        return payload

    def _message_payload(
        self, m: RecordedMessage, *, for_gateway: bool = False, depth: int = 0
    ) -> Json:
        pings = m.pings
        payload: Json = {
            "id": str(m.id),
            "channel_id": str(m.channel_id),
            "author": self._user_payload(m.author_id),
            "content": m.content,
            "timestamp": _iso(m.created_wall),
            "edited_timestamp": _iso(m.edited_wall) if m.edited_wall else None,
            "tts": m.tts,
            "mention_everyone": pings.everyone,
            "mentions": [self._user_payload(u) for u in sorted(pings.users) if u in self._users],
            "mention_roles": [str(r) for r in sorted(pings.roles)],
            "attachments": [a.payload() for a in m.attachments],
            "embeds": m.embeds,
            "pinned": False,
            "type": m.type,
            "flags": m.flags,
            "components": m.raw_components,
        }
        if m.nonce is not None:
            payload["nonce"] = m.nonce
        if m.guild_id and for_gateway:
            payload["guild_id"] = str(m.guild_id)
            guild = self._guilds.get(m.guild_id)
            if guild and m.author_id in guild.members:
                payload["member"] = self._member_payload(guild, m.author_id, with_user=False)
        if m.message_reference:
            payload["message_reference"] = m.message_reference
            ref = self._messages.get(int(m.message_reference.get("message_id", 0)))
            payload["referenced_message"] = (
                self._message_payload(ref, depth=depth + 1) if ref and depth == 0 else None
            )
        if m.interaction_id is not None:
            inter = self._interactions.get(m.interaction_id)
            payload["webhook_id"] = str(self.application_id)
            payload["application_id"] = str(self.application_id)
            if inter is not None:
                meta: Json = {
                    "id": str(inter.id),
                    "type": inter.type,
                    "user": self._user_payload(inter.user_id),
                    "authorizing_integration_owners": inter.payload.get(
                        "authorizing_integration_owners", {}
                    ),
                }
                if inter.type == 2:
                    meta["name"] = inter.payload["data"]["name"]
                    meta["command_type"] = 1
                if m.id != inter.original_id and inter.original_id:
                    meta["original_response_message_id"] = str(inter.original_id)
                payload["interaction_metadata"] = meta
        return payload

    # ---- notifications and waiting --------------------------------------------------------

    async def _notify(self) -> None:
        if self._cond is None:
            return
        async with self._cond:
            self._cond.notify_all()

    async def _wait(
        self,
        check: Callable[[], T | None],
        timeout: float,
        what: str,
        state: Callable[[], str] | None = None,
    ) -> T:
        assert self._cond is not None, "FakeDiscord is not started"

        async def run() -> T:
            assert self._cond is not None
            async with self._cond:
                while True:
                    result = check()
                    if result is not None and result is not False:
                        return result
                    await self._cond.wait()

        try:
            return await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            details = state() if state else ""
            raise FakeDiscordTimeout(
                f"Timed out after {timeout} s waiting for {what}.\n{details}\n"
                f"{self._recent_requests_summary()}"
            ) from None

    def _recent_requests_summary(self, n: int = 8) -> str:
        lines = [f"last {min(n, len(self.requests))} requests:"]
        for r in self.requests[-n:]:
            code = ""
            if isinstance(r.response, dict) and "code" in r.response and r.status >= 400:
                code = f" code={r.response['code']}"
            lines.append(f"  {r.method} {r.path} -> {r.status}{code}")
        if self.server_errors:
            lines.append(f"fake server errors: {self.server_errors[-3:]}")
        return "\n".join(lines)

    def _channel_summary(self, channel_id: int) -> str:
        msgs = self.channel_messages(channel_id, include_deleted=True)
        if not msgs:
            return f"channel {channel_id} has no messages."
        return f"channel {channel_id} messages:\n" + "\n".join("  " + m.summary() for m in msgs)

    async def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Every shard identified and got READY plus its GUILD_CREATEs."""

        def check() -> bool:
            if not self._shard_sessions:
                return False
            count = next(iter(self._shard_sessions.values())).shard_count
            for sid in range(count):
                s = self._shard_sessions.get(sid)
                if s is None or not s.ready or not s.live:
                    return False
            return True

        await self._wait(
            check, timeout, "the bot to identify and get its guilds", self._gateway_summary
        )

    def _gateway_summary(self) -> str:
        lines = ["gateway events:"]
        for e in self.gateway_events[-10:]:
            lines.append(f"  {e.kind} shard={e.shard_id} code={e.code} path={e.path}")
        return "\n".join(lines)

    async def wait_for_gateway_event(
        self, kind: str, *, shard_id: int | None = None, since: int = 0, timeout: float = 10.0
    ) -> GatewayEvent:
        """The first ``kind`` gateway event at index >= ``since`` in ``gateway_events``."""

        def check() -> GatewayEvent | None:
            for e in self.gateway_events[since:]:
                if e.kind == kind and (shard_id is None or e.shard_id == shard_id):
                    return e
            return None

        return await self._wait(check, timeout, f"gateway event {kind!r}", self._gateway_summary)

    async def wait_for_resume(
        self, shard_id: int | None = None, timeout: float = 10.0
    ) -> GatewayEvent:
        """A successful RESUME after the last drop_connection/send_reconnect/invalidate."""
        return await self.wait_for_gateway_event(
            "resume", shard_id=shard_id, since=self._gw_marker, timeout=timeout
        )

    async def wait_for_identify(
        self, shard_id: int | None = None, timeout: float = 10.0
    ) -> GatewayEvent:
        """An IDENTIFY after the last drop_connection/send_reconnect/invalidate."""
        return await self.wait_for_gateway_event(
            "identify", shard_id=shard_id, since=self._gw_marker, timeout=timeout
        )

    async def wait_for_commands_synced(
        self, *names: str, guild_id: int | None = None, timeout: float = 10.0
    ) -> list[Json]:
        """Commands once a sync stored all ``names``: in ``guild_id``'s scope if given, else in
        whichever scope (global or any guild) has them all."""

        def check() -> list[Json] | None:
            scopes: Iterable[int | None] = [guild_id] if guild_id is not None else self._commands
            for scope in scopes:
                if scope not in self._commands:
                    continue
                if not any(s == scope for s, _ in self.command_syncs):
                    continue
                have = {c["name"] for c in self._commands[scope]}
                if set(names) <= have:
                    return list(self._commands[scope])
            return None

        return await self._wait(
            check,
            timeout,
            f"commands {names} synced (guild {guild_id})",
            lambda: f"synced so far: {self.command_syncs}",
        )

    async def wait_for_message(
        self,
        channel_id: int,
        predicate: Callable[[RecordedMessage], Any] | None = None,
        timeout: float = 10.0,
        *,
        include_ephemeral: bool = True,
    ) -> RecordedMessage:
        """The first message in the channel (existing ones included, in creation order) whose
        current state satisfies ``predicate``."""

        def check() -> RecordedMessage | None:
            for m in self.channel_messages(channel_id, include_ephemeral=include_ephemeral):
                if predicate is None or predicate(m):
                    return m
            return None

        return await self._wait(
            check,
            timeout,
            f"a message in channel {channel_id}" + (" matching the predicate" if predicate else ""),
            lambda: self._channel_summary(channel_id),
        )

    async def wait_for_attachment(
        self,
        channel_id: int,
        predicate: Callable[[RecordedMessage], Any] | None = None,
        timeout: float = 10.0,
    ) -> RecordedMessage:
        """The first message in the channel that has an attachment (and satisfies predicate)."""
        return await self.wait_for_message(
            channel_id, lambda m: m.attachments and (predicate is None or predicate(m)), timeout
        )

    async def wait_for_request(
        self, route: str, *, since: int = 0, timeout: float = 10.0
    ) -> RecordedRequest:
        """The first answered request matching ``route`` (``"POST /channels/{x}/messages"``)."""
        pattern = _route_regex(route)

        def check() -> RecordedRequest | None:
            for r in self.requests[since:]:
                if r.status and pattern.match(f"{r.method} {r.path}"):
                    return r
            return None

        return await self._wait(check, timeout, f"a request {route}")

    # ---- queries --------------------------------------------------------------------------

    def channel_messages(
        self, channel_id: int, *, include_deleted: bool = False, include_ephemeral: bool = True
    ) -> list[RecordedMessage]:
        out = []
        for mid in self._channel_order.get(channel_id, []):
            m = self._messages[mid]
            if m.deleted and not include_deleted:
                continue
            if m.ephemeral and not include_ephemeral:
                continue
            out.append(m)
        return out

    def message(self, message_id: int) -> RecordedMessage:
        try:
            return self._messages[message_id]
        except KeyError:
            raise FakeDiscordError(f"no message {message_id}") from None

    def requests_to(self, route: str) -> list[RecordedRequest]:
        """Recorded requests matching ``"METHOD /path/{placeholder}"``."""
        pattern = _route_regex(route)
        return [r for r in self.requests if pattern.match(f"{r.method} {r.path}")]

    def global_commands(self) -> list[Json]:
        return list(self._commands.get(None, []))

    def guild_commands(self, guild_id: int) -> list[Json]:
        return list(self._commands.get(guild_id, []))

    def command(self, name: str, guild_id: int | None = None) -> Json:
        """A synced command as stored (guild scope first, then global)."""
        found = self._find_command(name, guild_id)
        if found is None:
            raise FakeDiscordError(self._no_command_message(name, guild_id))
        return found

    def interaction(self, interaction_id: int) -> FakeInteraction:
        return self._interactions[interaction_id]

    @property
    def interactions(self) -> list[FakeInteraction]:
        return list(self._interactions.values())

    # ---- REST plumbing --------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        json_body, form, files = await _read_body(request)
        rec = RecordedRequest(
            request.method,
            path,
            None,
            dict(request.query),
            dict(request.headers),
            json_body,
            form,
            files,
            self.now(),
        )
        self.requests.append(rec)
        response = await self._answer(request, rec)
        if rec.status != -1:  # -1: a "drop" fault, nothing was answered
            rec.status = response.status
            if response.body and response.content_type == "application/json":
                with contextlib.suppress(ValueError, TypeError):
                    rec.response = json.loads(response.body)  # type: ignore[arg-type]
        scope = response.headers.get("X-RateLimit-Scope")
        if response.status in (401, 403) or (response.status == 429 and scope != "shared"):
            self.invalid_request_count += 1
        await self._notify()
        return response

    async def _answer(self, request: web.Request, rec: RecordedRequest) -> web.Response:
        method, path, json_body, files = rec.method, rec.path, rec.json, rec.files
        extra_headers: dict[str, str] = {}
        params: dict[str, str] = {}
        try:
            matched = _match_route(method, path)
            if matched is None:
                if any(rx.match(path) for _, _, rx, _, _ in _COMPILED_ROUTES):
                    raise _err("method_not_allowed")
                raise _err("not_found")
            template, params, handler_name, needs_auth = matched
            rec.route = f"{method} {template}"
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise _err("unauthorized")
            fault = self.faults.take(method, path)
            if fault is not None and not fault.processed:
                fault_response = await self._apply_fault(fault, rec, request, rec.route, params)
                if fault_response is not None:
                    return fault_response
            limited = self._take_rate_limit(rec.route, params, extra_headers)
            if limited is not None:
                return limited
            req = _Req(method, rec.route, params, request.query, json_body, files, request.headers)
            handler = getattr(self, handler_name)
            status, body = await handler(req)
            if fault is not None and fault.processed:
                fault_response = await self._apply_fault(fault, rec, request, rec.route, params)
                if fault_response is not None:
                    return fault_response
            response = _json_response(status, body, extra_headers)
        except DiscordAPIError as e:
            response = _json_response(e.status, e.body(), extra_headers)
            inter = self._interaction_of(params)
            if inter is not None:
                inter.rejections.append(
                    Rejection(rec.route or "", e.status, e.code, e.message, self.now())
                )
        except Exception as e:  # a bug in the fake: answer 500 and keep it visible
            self.server_errors.append(f"{method} {path}: {type(e).__name__}: {e}")
            response = _json_response(500, {"message": "500: Internal Server Error", "code": 0})
        return response

    async def _apply_fault(
        self,
        fault: Fault,
        rec: RecordedRequest,
        request: web.Request,
        route_key: str,
        params: dict[str, str],
    ) -> web.Response | None:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            if request.transport is not None:
                request.transport.abort()
            rec.status = -1  # no answer: the client sees a dropped connection
            return web.Response(status=500)
        if fault.status is None:
            return None
        if fault.status == 429:
            return self._rate_limited(
                route_key,
                params,
                fault.retry_after,
                global_=fault.global_,
                via=fault.via,
                scope=fault.scope,
                body=fault.body,
            )
        if fault.body is not None:
            body = fault.body
        elif fault.status in (502, 503, 504):
            # Cloudflare-style HTML; discord.py sees a str
            text = f"<html><body>{fault.status} Bad Gateway</body></html>"
            return web.Response(status=fault.status, text=text, content_type="text/html")
        else:
            body = {"message": f"{fault.status}: Fault injected", "code": 0}
        return _json_response(fault.status, body)

    def _bucket_key(self, template: str, params: dict[str, str]) -> tuple[str, str]:
        major = "+".join(
            params[k]
            for k in ("channel_id", "guild_id", "webhook_id", "webhook_token")
            if k in params
        )
        return template, major

    def _take_rate_limit(
        self, route_key: str, params: dict[str, str], headers: dict[str, str]
    ) -> web.Response | None:
        key = self._bucket_key(route_key, params)
        limit, window = self.rate_limits.get(key[0], _DEFAULT_RATE_LIMIT)
        now = self.now()
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset_at:
            bucket = _Bucket(limit, window, limit, now + window)
            self._buckets[key] = bucket
        if bucket.remaining <= 0:
            return self._rate_limited(route_key, params, (bucket.reset_at - now) * self.time_scale)
        bucket.remaining -= 1
        # Rounded up: a client that waits exactly this long must find the bucket refilled.
        reset_after = math.ceil(max(bucket.reset_at - now, 0.0) * self.time_scale * 1000) / 1000
        headers.update(
            {
                "X-RateLimit-Limit": str(bucket.limit),
                "X-RateLimit-Remaining": str(bucket.remaining),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": _bucket_hash(route_key),
            }
        )
        return None

    def _rate_limited(
        self,
        route_key: str,
        params: dict[str, str],
        retry_after: float,
        *,
        global_: bool = False,
        via: bool = True,
        scope: str | None = None,
        body: Any = None,
    ) -> web.Response:
        retry_after = math.ceil(max(retry_after, 0.001) * 1000) / 1000
        headers = {
            "Retry-After": str(max(1, int(retry_after + 0.999))),
            "X-RateLimit-Limit": str(self.rate_limits.get(route_key, _DEFAULT_RATE_LIMIT)[0]),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": _bucket_hash(route_key),
            "X-RateLimit-Scope": scope or ("global" if global_ else "user"),
        }
        if global_:
            headers["X-RateLimit-Global"] = "true"
        if via:
            headers["Via"] = "1.1 google"
        payload = (
            body
            if body is not None
            else {
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": global_,
                "code": 0,
            }
        )
        return _json_response(429, payload, headers)

    async def _handle_cdn(self, request: web.Request) -> web.StreamResponse:
        att = self._attachments.get(int(request.match_info["attachment_id"]))
        if att is None or att.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(
            body=att.data, content_type=att.content_type or "application/octet-stream"
        )

    # ---- REST: gateway, users, application ------------------------------------------------

    async def _r_gateway(self, req: _Req) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _r_gateway_bot(self, req: _Req) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": self.shard_count,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000 - len(self.identify_payloads),
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    def _me_payload(self) -> Json:
        me = self._user_payload(self.bot_user_id)
        me.update(verified=True, mfa_enabled=False, email=None, locale="en-US")
        return me

    async def _r_me(self, req: _Req) -> tuple[int, Any]:
        return 200, self._me_payload()

    async def _r_user(self, req: _Req) -> tuple[int, Any]:
        uid = _int(req.params["user_id"])
        if uid not in self._users:
            raise _err("unknown_user")
        return 200, self._user_payload(uid)

    async def _r_create_dm(self, req: _Req) -> tuple[int, Any]:
        uid = _int((req.json or {}).get("recipient_id"))
        if uid not in self._users:
            raise _err("unknown_user")
        for ch in self._dm_channels.values():
            if int(ch["recipients"][0]["id"]) == uid:
                return 200, ch
        cid = self.snowflake()
        ch = {
            "id": str(cid),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [self._user_payload(uid)],
        }
        self._dm_channels[cid] = ch
        return 200, ch

    async def _r_application(self, req: _Req) -> tuple[int, Any]:
        owner = next(
            (u for u in self._users.values() if not u["bot"]), self._user_payload(self.bot_user_id)
        )
        return 200, {
            "id": str(self.application_id),
            "name": self._users[self.bot_user_id]["username"],
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": owner,
            "team": None,
            "verify_key": "0" * 64,
            "flags": self.application_flags,
            "bot": self._user_payload(self.bot_user_id),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "approximate_guild_count": len(self._guilds),
            "integration_types_config": {"0": {}},
        }

    # ---- REST: application commands -------------------------------------------------------

    def _check_app(self, req: _Req) -> None:
        if _int(req.params["application_id"]) != self.application_id:
            raise DiscordAPIError(403, 50001, "Missing Access")

    def _scope(self, req: _Req) -> int | None:
        if "guild_id" not in req.params:
            return None
        gid = _int(req.params["guild_id"])
        if gid not in self._guilds:
            raise DiscordAPIError(403, 50001, "Missing Access")
        return gid

    async def _r_get_commands(self, req: _Req) -> tuple[int, Any]:
        self._check_app(req)
        return 200, list(self._commands.get(self._scope(req), []))

    async def _r_put_commands(self, req: _Req) -> tuple[int, Any]:
        self._check_app(req)
        scope = self._scope(req)
        body = req.json
        if not isinstance(body, list):
            raise DiscordAPIError(
                400,
                50035,
                "Invalid Form Body",
                {
                    "_errors": [
                        {
                            "code": "MODEL_TYPE_CONVERT",
                            "message": "Only iterables may be used in a ListType",
                        }
                    ]
                },
            )
        errors = _FormErrors()
        if len(body) > 100:
            errors.add([], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        for i, cmd in enumerate(body):
            _validate_command(cmd, errors, [i])
        errors.raise_if_any()
        old = {(c["name"], c.get("type", 1)): c for c in self._commands.get(scope, [])}
        stored = [self._store_command(c, scope, old) for c in body]
        self._commands[scope] = stored
        self.command_syncs.append((scope, [c["name"] for c in stored]))
        await self._notify()
        return 200, stored

    async def _r_post_command(self, req: _Req) -> tuple[int, Any]:
        self._check_app(req)
        scope = self._scope(req)
        errors = _FormErrors()
        _validate_command(req.json or {}, errors, [])
        errors.raise_if_any()
        current = self._commands.setdefault(scope, [])
        old = {(c["name"], c.get("type", 1)): c for c in current}
        cmd = self._store_command(req.json, scope, old)
        current[:] = [c for c in current if c["id"] != cmd["id"]] + [cmd]
        self.command_syncs.append((scope, [cmd["name"]]))
        await self._notify()
        return 201 if (cmd["name"], cmd["type"]) not in old else 200, cmd

    async def _r_delete_command(self, req: _Req) -> tuple[int, Any]:
        self._check_app(req)
        scope = self._scope(req)
        current = self._commands.get(scope, [])
        remaining = [c for c in current if c["id"] != req.params["command_id"]]
        if len(remaining) == len(current):
            raise _err("unknown_command")
        self._commands[scope] = remaining
        return 204, None

    def _store_command(
        self, raw: Json, scope: int | None, old: Mapping[tuple[str, int], Json]
    ) -> Json:
        cmd = json.loads(json.dumps(raw))
        cmd.setdefault("type", 1)
        previous = old.get((cmd["name"], cmd["type"]))
        cmd["id"] = previous["id"] if previous else str(self.snowflake())
        cmd["application_id"] = str(self.application_id)
        cmd["version"] = str(self.snowflake())
        perms = cmd.get("default_member_permissions")
        cmd["default_member_permissions"] = None if perms is None else str(perms)
        cmd.setdefault("nsfw", False)
        cmd.setdefault("description", "")
        if cmd["type"] == 1:
            cmd.setdefault("options", [])
        if scope is not None:
            cmd["guild_id"] = str(scope)
        else:
            cmd["integration_types"] = cmd.get("integration_types") or [0]
        return cmd

    def _find_command(self, name: str, guild_id: int | None, type_: int = 1) -> Json | None:
        scopes: list[int | None] = [guild_id, None] if guild_id else [None]
        for scope in scopes:
            for c in self._commands.get(scope, []):
                if c["name"] == name and c.get("type", 1) == type_:
                    return c
        return None

    def _no_command_message(self, name: str, guild_id: int | None) -> str:
        return (
            f"/{name} is not registered for guild {guild_id} or globally (the bot must sync "
            f"its command tree first). Registered: global="
            f"{[c['name'] for c in self._commands.get(None, [])]}, guild="
            f"{[c['name'] for c in self._commands.get(guild_id, [])] if guild_id else []}"
        )

    # ---- REST: channels, guilds -----------------------------------------------------------

    def _channel(self, req: _Req) -> tuple[Json, FakeGuild | None]:
        found = self._find_channel(_int(req.params["channel_id"]))
        if found is None:
            raise _err("unknown_channel")
        return found

    def _require(self, guild: FakeGuild | None, channel_id: int, bits: int) -> None:
        if guild is None:
            return
        if self.permissions(guild.id, self.bot_user_id, channel_id) & bits != bits:
            raise _err("missing_permissions")

    async def _r_get_channel(self, req: _Req) -> tuple[int, Any]:
        channel, _ = self._channel(req)
        return 200, channel

    async def _r_typing(self, req: _Req) -> tuple[int, Any]:
        channel, guild = self._channel(req)
        self._require(guild, int(channel["id"]), Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES)
        return 204, None

    async def _r_history(self, req: _Req) -> tuple[int, Any]:
        channel, guild = self._channel(req)
        cid = int(channel["id"])
        self._require(guild, cid, Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY)
        limit = max(1, min(100, int(req.query.get("limit", 50))))
        msgs = [m for m in self.channel_messages(cid, include_ephemeral=False)]
        if "before" in req.query:
            msgs = [m for m in msgs if m.id < int(req.query["before"])]
        if "after" in req.query:
            msgs = [m for m in msgs if m.id > int(req.query["after"])]
            msgs = msgs[:limit]
        msgs = sorted(msgs, key=lambda m: m.id, reverse=True)[:limit]
        return 200, [self._message_payload(m) for m in msgs]

    def _channel_message(self, req: _Req) -> RecordedMessage:
        channel, _ = self._channel(req)
        m = self._messages.get(_int(req.params["message_id"]))
        if m is None or m.deleted or m.channel_id != int(channel["id"]) or m.ephemeral:
            raise _err("unknown_message")
        return m

    async def _r_get_message(self, req: _Req) -> tuple[int, Any]:
        channel, guild = self._channel(req)
        self._require(guild, int(channel["id"]), Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY)
        return 200, self._message_payload(self._channel_message(req))

    async def _r_send(self, req: _Req) -> tuple[int, Any]:
        channel, guild = self._channel(req)
        cid = int(channel["id"])
        payload = req.json if isinstance(req.json, dict) else {}
        needed = Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES | (Perm.ATTACH_FILES if req.files else 0)
        self._require(guild, cid, needed)
        errors = _FormErrors()
        _validate_message(payload, req.files, errors, [])
        nonce = payload.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            errors.max_len(["nonce"], str(nonce), 25)
        ref = payload.get("message_reference")
        replied_author = None
        if ref:
            target = self._messages.get(_int(ref.get("message_id")))
            if target is None or target.deleted or target.ephemeral:
                if ref.get("fail_if_not_exists", True):
                    errors.add(
                        ["message_reference"],
                        "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                        "Unknown message",
                    )
            else:
                replied_author = target.author_id
        errors.raise_if_any()
        _require_not_empty(payload, req.files)
        self._check_upload(req.files, guild.id if guild else None)
        if nonce is not None and payload.get("enforce_nonce"):
            key = (cid, self.bot_user_id, str(nonce))
            seen = self._nonces.get(key)
            if seen and self.now() - seen[1] <= NONCE_WINDOW and seen[0] in self._messages:
                return 200, self._message_payload(self._messages[seen[0]])
        msg = self._new_message(
            cid,
            guild.id if guild else None,
            self.bot_user_id,
            "channel",
            payload,
            req.files,
            type_=19 if ref else 0,
        )
        msg._replied_author = replied_author
        if ref:
            msg.message_reference = {
                k: (str(v) if k.endswith("_id") else v) for k, v in ref.items()
            }
        if nonce is not None:
            msg.nonce = str(nonce)
            if payload.get("enforce_nonce"):
                self._nonces[(cid, self.bot_user_id, str(nonce))] = (msg.id, self.now())
        await self._emit_message("MESSAGE_CREATE", msg)
        return 200, self._message_payload(msg)

    async def _r_edit_message(self, req: _Req) -> tuple[int, Any]:
        msg = self._channel_message(req)
        if msg.author_id != self.bot_user_id:
            raise _err("cannot_edit_others")
        payload = req.json if isinstance(req.json, dict) else {}
        errors = _FormErrors()
        _validate_message(payload, req.files, errors, [])
        errors.raise_if_any()
        self._check_upload(req.files, msg.guild_id)
        self._apply_edit(msg, payload, req.files, "channel")
        await self._emit_message("MESSAGE_UPDATE", msg)
        return 200, self._message_payload(msg)

    async def _r_delete_message(self, req: _Req) -> tuple[int, Any]:
        msg = self._channel_message(req)
        if msg.author_id != self.bot_user_id and msg.guild_id:
            self._require(self._guilds[msg.guild_id], msg.channel_id, Perm.MANAGE_MESSAGES)
        msg.deleted = True
        await self._emit_message("MESSAGE_DELETE", msg)
        return 204, None

    async def _r_get_guild(self, req: _Req) -> tuple[int, Any]:
        g = self._guilds.get(_int(req.params["guild_id"]))
        if g is None:
            raise _err("unknown_guild")
        payload = self._guild_payload(g)
        if req.query.get("with_counts") in ("1", "true", "True"):
            payload["approximate_member_count"] = len(g.members)
            payload["approximate_presence_count"] = 0
        return 200, payload

    async def _r_guild_channels(self, req: _Req) -> tuple[int, Any]:
        g = self._guilds.get(_int(req.params["guild_id"]))
        if g is None:
            raise _err("unknown_guild")
        return 200, list(g.channels.values())

    async def _r_guild_roles(self, req: _Req) -> tuple[int, Any]:
        g = self._guilds.get(_int(req.params["guild_id"]))
        if g is None:
            raise _err("unknown_guild")
        return 200, list(g.roles.values())

    async def _r_get_member(self, req: _Req) -> tuple[int, Any]:
        g = self._guilds.get(_int(req.params["guild_id"]))
        if g is None:
            raise _err("unknown_guild")
        uid = _int(req.params["user_id"])
        if uid not in g.members:
            raise _err("unknown_member")
        return 200, self._member_payload(g, uid)

    # ---- REST: interactions ---------------------------------------------------------------

    def _reject(self, inter: FakeInteraction, req: _Req, kind: str) -> DiscordAPIError:
        # Recorded on the interaction by _answer, like every error on its routes.
        return _err(kind)

    def _interaction_of(self, params: Mapping[str, str]) -> FakeInteraction | None:
        """The interaction an interaction-callback or webhook-token route is about."""
        token = params.get("webhook_token")
        if token is None:
            return None
        by_id = self._interactions.get(_int(params.get("webhook_id")))
        if by_id is not None and by_id.token == token:
            return by_id
        return self._by_token.get(token)

    async def _r_callback(self, req: _Req) -> tuple[int, Any]:
        inter = self._interactions.get(_int(req.params["webhook_id"]))
        if inter is None or inter.token != req.params["webhook_token"]:
            raise _err("unknown_interaction")
        # Acknowledged in time, the interaction lives on: a second answer is 40060 even after
        # 3 s; never acknowledged within 3 s, it is gone (10062).
        if inter.responses:
            raise self._reject(inter, req, "already_acknowledged")
        if self.now() > inter.response_deadline:
            raise self._reject(inter, req, "unknown_interaction")
        body = req.json if isinstance(req.json, dict) else {}
        ctype = body.get("type")
        data = body.get("data") or {}
        allowed = {1: {1}, 2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}[inter.type]
        if inter.type == 5 and inter.source_message_id is None:
            allowed = {4, 5}
        errors = _FormErrors()
        if ctype not in allowed:
            errors.add(
                ["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
            )
            errors.raise_if_any()
        if ctype in (4, 7):
            _validate_message(data, req.files, errors, ["data"])
        elif ctype == 9:
            _validate_modal(data, errors, ["data"])
        elif ctype == 8 and len(data.get("choices") or []) > 25:
            errors.max_len(["data", "choices"], data["choices"], 25)
        errors.raise_if_any()
        if ctype == 4:
            _require_not_empty(data, req.files)
        self._check_upload(req.files, inter.guild_id)

        message: RecordedMessage | None = None
        if ctype == 4:
            message = self._new_message(
                inter.channel_id,
                inter.guild_id,
                self.bot_user_id,
                "interaction",
                data,
                req.files,
                type_=20 if inter.type == 2 else 0,
                interaction=inter,
            )
            inter.original_id = message.id
        elif ctype == 5:
            flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            message = self._new_message(
                inter.channel_id,
                inter.guild_id,
                self.bot_user_id,
                "interaction",
                {"flags": flags},
                [],
                type_=20 if inter.type == 2 else 0,
                interaction=inter,
            )
            inter.original_id = message.id
            inter._defer_pending = True
        elif ctype in (6, 7):
            inter.original_id = inter.source_message_id
            if ctype == 7 and inter.source_message_id is not None:
                message = self._messages[inter.source_message_id]
                self._apply_edit(message, data, req.files, "interaction")
        inter.responses.append(
            {"type": ctype, "data": data, "files": [f.filename for f in req.files]}
        )
        if message is not None:
            await self._emit_message("MESSAGE_UPDATE" if ctype == 7 else "MESSAGE_CREATE", message)
        await self._notify()
        if req.query.get("with_response") not in ("1", "true", "True"):
            return 204, None
        callback: Json = {"id": str(inter.id), "type": inter.type}
        original = inter.original
        if original is not None and ctype in (4, 5, 7):
            callback["response_message_id"] = str(original.id)
            callback["response_message_loading"] = original.loading
            callback["response_message_ephemeral"] = original.ephemeral
        resource: Json = {"type": ctype}
        if ctype in (4, 7) and original is not None:
            resource["message"] = self._message_payload(original)
        return 200, {"interaction": callback, "resource": resource}

    def _token_interaction(self, req: _Req) -> FakeInteraction:
        if _int(req.params["webhook_id"]) != self.application_id:
            raise _err("unknown_webhook")
        inter = self._by_token.get(req.params["webhook_token"])
        if inter is None:
            raise _err("invalid_webhook_token")
        if self.now() > inter.token_expires_at:
            raise self._reject(inter, req, "invalid_webhook_token")
        if not inter.responses:
            raise self._reject(inter, req, "unknown_webhook")
        return inter

    def _webhook_message(self, inter: FakeInteraction, req: _Req) -> RecordedMessage:
        ref = req.params.get("message_id")
        if ref is None:  # @original
            mid = inter.original_id
        else:
            mid = _int(ref)
            if mid != inter.original_id and mid not in inter.followup_ids:
                mid = None
        msg = self._messages.get(mid) if mid else None
        if msg is None or msg.deleted:
            raise self._reject(inter, req, "unknown_message")
        return msg

    async def _r_followup(self, req: _Req) -> tuple[int, Any]:
        inter = self._token_interaction(req)
        payload = req.json if isinstance(req.json, dict) else {}
        errors = _FormErrors()
        _validate_message(payload, req.files, errors, [])
        errors.raise_if_any()
        _require_not_empty(payload, req.files)
        self._check_upload(req.files, inter.guild_id)
        original = inter.original
        if inter._defer_pending and original is not None and not original.deleted:
            # Discord fills the "thinking" message; its ephemerality was fixed by the defer.
            inter._defer_pending = False
            self._apply_edit(
                original, payload, req.files, "followup", mark_edited=False, clear_loading=True
            )
            msg = original
            event = "MESSAGE_UPDATE"
        else:
            msg = self._new_message(
                inter.channel_id,
                inter.guild_id,
                self.bot_user_id,
                "followup",
                payload,
                req.files,
                type_=20 if inter.type == 2 else 0,
                interaction=inter,
            )
            event = "MESSAGE_CREATE"
        inter.followup_ids.append(msg.id)
        await self._emit_message(event, msg)
        await self._notify()
        if req.query.get("wait") in ("1", "true", "True"):
            return 200, self._message_payload(msg)
        return 204, None

    async def _r_wh_get(self, req: _Req) -> tuple[int, Any]:
        inter = self._token_interaction(req)
        return 200, self._message_payload(self._webhook_message(inter, req))

    async def _r_wh_edit(self, req: _Req) -> tuple[int, Any]:
        inter = self._token_interaction(req)
        msg = self._webhook_message(inter, req)
        payload = req.json if isinstance(req.json, dict) else {}
        errors = _FormErrors()
        _validate_message(payload, req.files, errors, [])
        errors.raise_if_any()
        self._check_upload(req.files, inter.guild_id)
        was_loading = msg.loading
        if was_loading:
            inter._defer_pending = False
        self._apply_edit(
            msg,
            payload,
            req.files,
            "interaction",
            mark_edited=not was_loading,
            clear_loading=was_loading,
        )
        await self._emit_message("MESSAGE_UPDATE", msg)
        await self._notify()
        return 200, self._message_payload(msg)

    async def _r_wh_delete(self, req: _Req) -> tuple[int, Any]:
        inter = self._token_interaction(req)
        msg = self._webhook_message(inter, req)
        msg.deleted = True
        await self._emit_message("MESSAGE_DELETE", msg)
        await self._notify()
        return 204, None

    # ---- messages -------------------------------------------------------------------------

    def _check_upload(self, files: Sequence[UploadedFile], guild_id: int | None) -> None:
        limit = self.filesize_limit(guild_id)
        if any(len(f.data) > limit for f in files):
            raise _err("too_large")

    def _new_message(
        self,
        channel_id: int,
        guild_id: int | None,
        author_id: int,
        via: MessageVia,
        payload: Json,
        files: Sequence[UploadedFile],
        *,
        type_: int = 0,
        interaction: FakeInteraction | None = None,
    ) -> RecordedMessage:
        msg = RecordedMessage(
            id=self.snowflake(),
            channel_id=channel_id,
            guild_id=guild_id,
            author_id=author_id,
            via=via,
            type=type_,
            created_at=self.now(),
            created_wall=self._wall(),
        )
        if interaction is not None:
            msg.interaction_id = interaction.id
            msg.interaction_user_id = interaction.user_id
        msg.content = payload.get("content") or ""
        msg.embeds = list(payload.get("embeds") or [])
        msg.raw_components = list(payload.get("components") or [])
        msg.flags = int(payload.get("flags") or 0)
        if via == "channel":
            msg.flags &= ~EPHEMERAL  # only interaction messages can be ephemeral
        msg.allowed_mentions = payload.get("allowed_mentions")
        msg.tts = bool(payload.get("tts"))
        msg.attachments = self._attachments_for(msg, payload, files)
        self._messages[msg.id] = msg
        self._channel_order.setdefault(channel_id, []).append(msg.id)
        return msg

    def _attachments_for(
        self, msg: RecordedMessage, payload: Json, files: Sequence[UploadedFile]
    ) -> list[RecordedAttachment]:
        by_field = {f.field: f for f in files}
        existing = {a.id: a for a in msg.attachments}
        out: list[RecordedAttachment] = []
        used: set[str] = set()
        specs = payload.get("attachments")
        if specs is None:
            specs = [] if files else [{"id": a.id} for a in msg.attachments]
        for spec in specs:
            sid = spec.get("id")
            upload = by_field.get(f"files[{sid}]")
            if upload is not None and f"files[{sid}]" not in used:
                used.add(f"files[{sid}]")
                out.append(self._store_attachment(msg.channel_id, upload, spec))
            elif sid is not None and _int(sid) in existing:
                out.append(existing[_int(sid)])
        # Parts the attachments array did not mention still get attached, in order.
        for f in files:
            if f.field not in used:
                out.append(self._store_attachment(msg.channel_id, f, {}))
        return out

    def _store_attachment(
        self, channel_id: int, upload: UploadedFile, spec: Json
    ) -> RecordedAttachment:
        aid = self.snowflake()
        filename = spec.get("filename") or upload.filename
        guessed, _ = mimetypes.guess_type(filename)
        att = RecordedAttachment(
            id=aid,
            filename=filename,
            data=upload.data,
            content_type=guessed,
            upload_content_type=upload.content_type,
            description=spec.get("description"),
            url=f"{self.base_url}/attachments/{channel_id}/{aid}/{filename}",
            spoiler=filename.startswith("SPOILER_"),
        )
        self._attachments[aid] = att
        return att

    def _apply_edit(
        self,
        msg: RecordedMessage,
        payload: Json,
        files: Sequence[UploadedFile],
        via: str,
        *,
        mark_edited: bool = True,
        clear_loading: bool = False,
    ) -> None:
        if "content" in payload:
            msg.content = payload["content"] or ""
        if "embeds" in payload:
            msg.embeds = list(payload["embeds"] or [])
        if "components" in payload:
            msg.raw_components = list(payload["components"] or [])
        if payload.get("flags") is not None:
            new = int(payload["flags"])
            # An edit may only toggle SUPPRESS_EMBEDS (and opt into components v2); EPHEMERAL
            # and LOADING belong to the server (a defer's ephemerality sticks).
            changeable = SUPPRESS_EMBEDS | IS_COMPONENTS_V2
            msg.flags = (msg.flags & ~SUPPRESS_EMBEDS) | (new & changeable)
        if clear_loading:
            msg.flags &= ~LOADING
        if "allowed_mentions" in payload:
            msg.allowed_mentions = payload["allowed_mentions"]
        if "attachments" in payload or files:
            msg.attachments = self._attachments_for(msg, payload, files)
        if mark_edited:
            msg.edited_wall = self._wall()
        msg.edits.append(RecordedEdit(dict(payload), [f.filename for f in files], via, self.now()))

    async def _emit_message(self, event: str, msg: RecordedMessage) -> None:
        """Gateway MESSAGE_* to the bot, as Discord does for non-ephemeral messages."""
        if msg.ephemeral:
            return
        session = self._session_for(msg.guild_id, required=False)
        if session is None:
            return
        wanted = INTENT_GUILD_MESSAGES if msg.guild_id else INTENT_DIRECT_MESSAGES
        if not session.intents & wanted:
            return
        if event == "MESSAGE_DELETE":
            data: Json = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id:
                data["guild_id"] = str(msg.guild_id)
        else:
            data = self._message_payload(msg, for_gateway=True)
            content_visible = (
                msg.author_id == self.bot_user_id
                or session.intents & INTENT_MESSAGE_CONTENT
                or self.bot_user_id in msg.pings.users
            )
            if not content_visible:
                data.update(content="", embeds=[], attachments=[], components=[])
        await self._dispatch(session, event, data)

    # ---- user actions ---------------------------------------------------------------------

    async def invoke_slash(
        self,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        locale: str = "en-US",
        respect_visibility: bool = True,
    ) -> FakeInteraction:
        """A user runs ``/name`` (``"group sub"`` for subcommands) with ``options`` (values by
        option name: str/int/float/bool, user/channel/role ids, ``(filename, bytes)`` for
        attachments). Raises FakeDiscordError for what Discord's UI would not allow: unknown
        command or option, missing required option, value outside choices/min/max, a command
        the user can't see (``default_member_permissions``, nsfw outside nsfw channels)."""
        parts = name.split()
        cmd = self._find_command(parts[0], guild_id)
        if cmd is None:
            raise FakeDiscordError(self._no_command_message(parts[0], guild_id))
        if respect_visibility:
            self._check_visible(cmd, guild_id, channel_id, user_id)
        data_options: list[Json] = []
        container = data_options
        defs: list[Json] = cmd.get("options") or []
        for sub in parts[1:]:
            d = next((o for o in defs if o["name"] == sub and o["type"] in (1, 2)), None)
            if d is None:
                raise FakeDiscordError(f"/{cmd['name']} has no subcommand {sub!r}")
            entry: Json = {"name": sub, "type": d["type"], "options": []}
            container.append(entry)
            container = entry["options"]
            defs = d.get("options") or []
        resolved: Json = {}
        container.extend(
            self._build_options(defs, dict(options or {}), guild_id, channel_id, resolved, name)
        )
        data: Json = {"id": cmd["id"], "name": cmd["name"], "type": 1, "options": data_options}
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return await self._create_interaction(2, guild_id, channel_id, user_id, data, locale=locale)

    async def autocomplete(
        self,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        name: str,
        focused: str,
        typed: str,
        options: Mapping[str, Any] | None = None,
        *,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """The user is typing ``typed`` into option ``focused`` of ``/name`` (type 4)."""
        cmd = self._find_command(name, guild_id)
        if cmd is None:
            raise FakeDiscordError(self._no_command_message(name, guild_id))
        defs = cmd.get("options") or []
        target = next((o for o in defs if o["name"] == focused), None)
        if target is None or not target.get("autocomplete"):
            raise FakeDiscordError(f"option {focused!r} of /{name} has no autocomplete")
        given = {k: v for k, v in (options or {}).items() if k != focused}
        built = self._build_options(
            [o for o in defs if o["name"] in given], given, guild_id, channel_id, {}, name
        )
        built.append({"name": focused, "type": target["type"], "value": typed, "focused": True})
        data = {"id": cmd["id"], "name": cmd["name"], "type": 1, "options": built}
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return await self._create_interaction(4, guild_id, channel_id, user_id, data, locale=locale)

    async def click_button(
        self, message_id: int, custom_id: str, user_id: int, *, locale: str = "en-US"
    ) -> FakeInteraction:
        """A user clicks the button ``custom_id`` on a message (INTERACTION_CREATE type 3)."""
        msg, comp = self._component(message_id, custom_id, user_id)
        if not comp.is_button:
            raise FakeDiscordError(f"{custom_id!r} is a select menu; use dc.select()")
        if comp.style == 5 or comp.custom_id is None:
            raise FakeDiscordError(f"{custom_id!r} is a link button: no interaction is sent")
        data: Json = {"custom_id": custom_id, "component_type": 2}
        if "id" in comp.raw:
            data["id"] = comp.raw["id"]
        return await self._create_interaction(
            3, msg.guild_id, msg.channel_id, user_id, data, locale=locale, source=msg
        )

    async def select(
        self,
        message_id: int,
        custom_id: str,
        user_id: int,
        values: Sequence[str],
        *,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A user picks ``values`` in the string select ``custom_id``."""
        msg, comp = self._component(message_id, custom_id, user_id)
        if comp.type != 3:
            raise FakeDiscordError(f"{custom_id!r} is not a string select (type {comp.type})")
        unknown = set(values) - set(comp.options)
        if unknown:
            raise FakeDiscordError(
                f"{sorted(unknown)} are not options of {custom_id!r}: {comp.options}"
            )
        lo, hi = comp.raw.get("min_values", 1), comp.raw.get("max_values", 1)
        if not lo <= len(values) <= hi:
            raise FakeDiscordError(f"{custom_id!r} takes {lo}..{hi} values, got {len(values)}")
        data = {"custom_id": custom_id, "component_type": 3, "values": list(values)}
        return await self._create_interaction(
            3, msg.guild_id, msg.channel_id, user_id, data, locale=locale, source=msg
        )

    async def submit_modal(
        self,
        interaction: FakeInteraction,
        custom_id: str | None = None,
        values: Mapping[str, str] | None = None,
    ) -> FakeInteraction:
        """The user fills in the modal the bot opened on ``interaction`` and submits it
        (type 5). ``values`` maps text input custom_ids to what the user typed."""
        modal = interaction.modal
        if modal is None:
            raise FakeDiscordError(
                f"the bot did not answer interaction {interaction.id} with a modal "
                f"(responses: {[r['type'] for r in interaction.responses]})"
            )
        if custom_id is not None and custom_id != modal.get("custom_id"):
            raise FakeDiscordError(
                f"the open modal is {modal.get('custom_id')!r}, not {custom_id!r}"
            )
        if interaction.modal_submitted:
            raise FakeDiscordError("this modal was already submitted (Discord closes it)")
        values = dict(values or {})
        components = _modal_submission(modal.get("components") or [], values)
        if values:
            raise FakeDiscordError(f"the modal has no inputs {sorted(values)}")
        interaction.modal_submitted = True
        source = (
            self._messages.get(interaction.source_message_id)
            if interaction.source_message_id
            else None
        )
        data = {"custom_id": modal["custom_id"], "components": components}
        return await self._create_interaction(
            5,
            interaction.guild_id,
            interaction.channel_id,
            interaction.user_id,
            data,
            locale=interaction.payload.get("locale", "en-US"),
            source=source,
            parent=interaction,
        )

    async def post_user_message(
        self, channel_id: int, user_id: int, content: str
    ) -> RecordedMessage:
        """A user writes in a channel (the bot gets MESSAGE_CREATE if its intents allow)."""
        found = self._find_channel(channel_id)
        if found is None:
            raise FakeDiscordError(f"no channel {channel_id}")
        _, guild = found
        msg = self._new_message(
            channel_id, guild.id if guild else None, user_id, "user", {"content": content}, []
        )
        await self._emit_message("MESSAGE_CREATE", msg)
        await self._notify()
        return msg

    def _component(
        self, message_id: int, custom_id: str, user_id: int
    ) -> tuple[RecordedMessage, RecordedComponent]:
        msg = self.message(message_id)
        if msg.deleted:
            raise FakeDiscordError(f"message {message_id} was deleted")
        if msg.ephemeral and msg.interaction_user_id not in (None, user_id):
            raise FakeDiscordError(
                f"message {message_id} is ephemeral: only user {msg.interaction_user_id} sees it"
            )
        comp = next((c for c in msg.components if c.custom_id == custom_id), None)
        if comp is None:
            raise FakeDiscordError(
                f"message {message_id} has no component {custom_id!r}; it has "
                f"{[c.custom_id for c in msg.components]}"
            )
        if comp.disabled:
            raise FakeDiscordError(f"{custom_id!r} on message {message_id} is disabled")
        return msg, comp

    def _check_visible(
        self, cmd: Json, guild_id: int | None, channel_id: int, user_id: int
    ) -> None:
        if guild_id is None:
            contexts = cmd.get("contexts")
            if (
                cmd.get("guild_id")
                or (contexts is not None and 1 not in contexts)
                or cmd.get("dm_permission") is False
            ):
                raise FakeDiscordError(f"/{cmd['name']} is not available in DMs")
            return
        perms = self.permissions(guild_id, user_id, channel_id)
        needed = cmd.get("default_member_permissions")
        if needed is not None and perms & int(needed) != int(needed):
            raise FakeDiscordError(
                f"user {user_id} lacks default_member_permissions={needed} for "
                f"/{cmd['name']}, so Discord hides it (pass respect_visibility=False to act as "
                f"a guild permission override)"
            )
        if not perms & Perm.USE_APPLICATION_COMMANDS:
            raise FakeDiscordError(f"user {user_id} may not use application commands here")
        channel = self.guild(guild_id).channels.get(channel_id)
        if channel is None:
            raise FakeDiscordError(f"guild {guild_id} has no channel {channel_id}")
        if cmd.get("nsfw") and not channel.get("nsfw"):
            raise FakeDiscordError(
                f"/{cmd['name']} is age-restricted: Discord hides it outside nsfw channels"
            )

    def _build_options(
        self,
        defs: list[Json],
        given: dict[str, Any],
        guild_id: int | None,
        channel_id: int,
        resolved: Json,
        command: str,
    ) -> list[Json]:
        by_name = {d["name"]: d for d in defs}
        unknown = set(given) - set(by_name)
        if unknown:
            raise FakeDiscordError(
                f"/{command} has no options {sorted(unknown)}; it has {list(by_name)}"
            )
        out = []
        for d in defs:
            if d["name"] not in given:
                if d.get("required"):
                    raise FakeDiscordError(f"/{command}: option {d['name']!r} is required")
                continue
            value = self._option_value(d, given[d["name"]], guild_id, channel_id, resolved, command)
            out.append({"name": d["name"], "type": d["type"], "value": value})
        return out

    def _option_value(
        self,
        d: Json,
        value: Any,
        guild_id: int | None,
        channel_id: int,
        resolved: Json,
        command: str,
    ) -> Any:
        kind = d["type"]
        where = f"/{command} {d['name']}"
        if kind == 3:
            value = str(value)
            if not d.get("min_length", 0) <= len(value) <= d.get("max_length", 6000):
                raise FakeDiscordError(
                    f"{where}: length must be within "
                    f"{d.get('min_length', 0)}..{d.get('max_length', 6000)}"
                )
        elif kind in (4, 10):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (kind == 4 and not float(value).is_integer())
            ):
                raise FakeDiscordError(f"{where}: expected a number, got {value!r}")
            value = int(value) if kind == 4 else value
            lo, hi = d.get("min_value"), d.get("max_value")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise FakeDiscordError(f"{where}: {value} is outside {lo}..{hi}")
        elif kind == 5:
            if not isinstance(value, bool):
                raise FakeDiscordError(f"{where}: expected a bool, got {value!r}")
        elif kind in (6, 9) and _int(value) in self._users:
            uid = _int(value)
            resolved.setdefault("users", {})[str(uid)] = self._user_payload(uid)
            guild = self._guilds.get(guild_id) if guild_id else None
            if guild and uid in guild.members:
                member = self._member_payload(guild, uid, with_user=False, channel_id=channel_id)
                resolved.setdefault("members", {})[str(uid)] = member
            value = str(uid)
        elif kind in (8, 9) and guild_id and _int(value) in self.guild(guild_id).roles:
            resolved.setdefault("roles", {})[str(value)] = self.guild(guild_id).roles[_int(value)]
            value = str(value)
        elif kind == 7:
            found = self._find_channel(_int(value))
            if found is None:
                raise FakeDiscordError(f"{where}: no channel {value}")
            ch = dict(found[0])
            ch["permissions"] = str(
                self.permissions(guild_id, self.bot_user_id, _int(value)) if guild_id else Perm.ALL
            )
            resolved.setdefault("channels", {})[str(value)] = ch
            value = str(value)
        elif kind == 11:
            filename, data, *ctype = value
            upload = UploadedFile("files[0]", filename, data, ctype[0] if ctype else None)
            att = self._store_attachment(channel_id, upload, {})
            if ctype:
                att.content_type = ctype[0]
            resolved.setdefault("attachments", {})[str(att.id)] = att.payload()
            value = str(att.id)
        elif kind in (6, 8, 9):
            raise FakeDiscordError(f"{where}: {value!r} is not a known user/role")
        choices = d.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise FakeDiscordError(
                f"{where}: {value!r} is not one of the choices {[c['value'] for c in choices]}"
            )
        return value

    async def _create_interaction(
        self,
        type_: int,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        data: Json,
        *,
        locale: str,
        source: RecordedMessage | None = None,
        parent: FakeInteraction | None = None,
    ) -> FakeInteraction:
        session = self._session_for(guild_id, required=True)
        assert session is not None
        if user_id not in self._users:
            raise FakeDiscordError(f"no user {user_id}; add it with dc.add_user()")
        iid = self.snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(64)
        payload: Json = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": type_,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "attachment_size_limit": self.filesize_limit(guild_id),
            "channel_id": str(channel_id),
        }
        if guild_id:
            guild = self.guild(guild_id)
            if user_id not in guild.members:
                raise FakeDiscordError(f"user {user_id} is not a member of guild {guild_id}")
            if channel_id not in guild.channels:
                raise FakeDiscordError(f"guild {guild_id} has no channel {channel_id}")
            channel = dict(guild.channels[channel_id])
            channel["permissions"] = str(self.permissions(guild_id, user_id, channel_id))
            payload.update(
                guild_id=str(guild_id),
                guild={
                    "id": str(guild_id),
                    "locale": guild.preferred_locale,
                    "features": list(guild.features),
                },
                guild_locale=guild.preferred_locale,
                member=self._member_payload(guild, user_id, channel_id=channel_id),
                app_permissions=str(self.permissions(guild_id, self.bot_user_id, channel_id)),
                authorizing_integration_owners={"0": str(guild_id)},
                context=0,
                channel=channel,
            )
        else:
            dm = self._dm_channels.get(channel_id)
            if dm is None:
                dm = {
                    "id": str(channel_id),
                    "type": 1,
                    "last_message_id": None,
                    "flags": 0,
                    "recipients": [self._user_payload(user_id)],
                }
                self._dm_channels[channel_id] = dm
            payload.update(
                user=self._user_payload(user_id),
                # What Discord resolves in a DM: no Send Messages bit, though the bot can
                # write in its own DM.
                app_permissions=str(Perm.DM_APP),
                authorizing_integration_owners={"0": "0"},
                context=1,
                channel=dict(dm),
            )
        if source is not None:
            payload["message"] = self._message_payload(source)
        inter = FakeInteraction(
            fake=self,
            id=iid,
            token=token,
            type=type_,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            payload=payload,
            created_at=self.now(),
            source_message_id=source.id if source else None,
            parent=parent,
        )
        self._interactions[iid] = inter
        self._by_token[token] = inter
        await self._dispatch(session, "INTERACTION_CREATE", payload)
        await self._notify()
        return inter

    # ---- gateway --------------------------------------------------------------------------

    def _session_for(self, guild_id: int | None, *, required: bool) -> _Session | None:
        if self._shard_sessions:
            count = next(iter(self._shard_sessions.values())).shard_count
            shard = self.shard_for(guild_id, count) if guild_id else 0
            session = self._shard_sessions.get(shard)
            if session is not None:
                return session
        if required:
            raise FakeDiscordError(
                "the bot has no gateway session for that guild's shard: start it and "
                "`await dc.wait_until_ready()` first\n" + self._gateway_summary()
            )
        return None

    def _record_gw(
        self,
        kind: str,
        conn: _Conn | None,
        *,
        shard_id: int | None = None,
        session: _Session | None = None,
        code: int | None = None,
        payload: Json | None = None,
    ) -> None:
        session = session or (conn.session if conn else None)
        self.gateway_events.append(
            GatewayEvent(
                kind=kind,
                shard_id=shard_id
                if shard_id is not None
                else (session.shard_id if session else None),
                session_id=session.id if session else None,
                code=code,
                path=conn.path if conn else "",
                query=dict(conn.query) if conn else {},
                payload=payload,
                at=self.now(),
            )
        )

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        query = dict(request.query)
        compressor = None
        if query.get("compress") == "zlib-stream" and self.gateway_compression:
            compressor = zlib.compressobj()
        # zstd-stream is not available here: plain text frames, which discord.py accepts too.
        conn = _Conn(ws=ws, request=request, path=request.path, query=query, compressor=compressor)
        self._conns.add(conn)
        self._record_gw("connect", conn)
        try:
            if query.get("v", "10") not in ("9", "10"):
                await ws.close(code=4012, message=b"Invalid API version.")
                return ws
            if query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Decode error.")
                return ws
            interval = max(100, int(HEARTBEAT_INTERVAL_MS * self.time_scale))
            await conn.send(
                {
                    "op": 10,
                    "d": {"heartbeat_interval": interval, "_trace": ['["fake-gateway"]']},
                    "s": None,
                    "t": None,
                }
            )
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        await ws.close(code=4002, message=b"Decode error.")
                        break
                    await self._on_gateway_op(conn, data)
                elif msg.type == WSMsgType.BINARY:
                    await ws.close(code=4002, message=b"Decode error.")
                    break
        finally:
            self._conns.discard(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                session.live = False
                if ws.close_code in (1000, 1001):
                    # A client closing with 1000/1001 ends its session (Discord docs).
                    session.resumable = False
            if ws.close_code is not None and not conn.server_closed:
                self._record_gw("client_close", conn, code=ws.close_code)
            await self._notify()
        return ws

    async def _on_gateway_op(self, conn: _Conn, data: Json) -> None:
        op = data.get("op")
        d = data.get("d")
        if op == 1:
            conn.heartbeats += 1
            await conn.send({"op": 11})
        elif op == 2:
            await self._identify(conn, d or {})
        elif op == 6:
            await self._resume(conn, d or {})
        elif conn.session is None:
            await self._server_close(conn, 4003, "Not authenticated.")
        elif op == 3:
            self.presence_updates.append(d or {})
        elif op == 4:
            pass  # voice state updates: nothing to do
        elif op == 8:
            await self._request_members(conn, d or {})
        else:
            await self._server_close(conn, 4001, "Unknown opcode.")

    async def _server_close(self, conn: _Conn, code: int, reason: str) -> None:
        conn.server_closed = True
        self._record_gw("server_close", conn, code=code)
        await conn.ws.close(code=code, message=reason.encode())

    async def _identify(self, conn: _Conn, d: Json) -> None:
        if conn.session is not None:
            await self._server_close(conn, 4005, "Already authenticated.")
            return
        if d.get("token") != self.token:
            await self._server_close(conn, 4004, "Authentication failed.")
            return
        shard_id, shard_count = d.get("shard") or [0, 1]
        if not (0 <= shard_id < shard_count):
            await self._server_close(conn, 4010, "Invalid shard.")
            return
        intents = d.get("intents")
        if not isinstance(intents, int):
            await self._server_close(conn, 4013, "Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS & ~self.allowed_privileged_intents:
            await self._server_close(conn, 4014, "Disallowed intent(s).")
            return
        session = _Session(
            id=secrets.token_hex(16),
            shard_id=shard_id,
            shard_count=shard_count,
            intents=intents,
            identify={k: v for k, v in d.items() if k != "token"},
        )
        self.identify_payloads.append(session.identify)
        old = self._shard_sessions.get(shard_id)
        if old is not None and old is not session and old.conn is not None and old.conn is not conn:
            old.resumable = False
        self._sessions[session.id] = session
        self._shard_sessions[shard_id] = session
        conn.session = session
        session.conn = conn
        self._record_gw("identify", conn, payload=session.identify)
        guilds = [g for g in self._guilds.values() if self.shard_for(g.id, shard_count) == shard_id]
        async with session.lock:
            ready: Json = {
                "v": 10,
                "user": self._me_payload(),
                "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
                "session_id": session.id,
                "session_type": "normal",
                "resume_gateway_url": self.resume_gateway_url,
                "application": {"id": str(self.application_id), "flags": self.application_flags},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "geo_ordered_rtc_regions": [],
                "_trace": ['["fake-gateway"]'],
            }
            if d.get("shard") is not None:
                ready["shard"] = [shard_id, shard_count]
            session.live = True
            await self._send_dispatch(session, "READY", ready)
            if intents & INTENT_GUILDS:
                for g in guilds:
                    await self._send_dispatch(
                        session, "GUILD_CREATE", self._guild_create_payload(g)
                    )
            session.ready = True
        await self._notify()

    async def _resume(self, conn: _Conn, d: Json) -> None:
        session = self._sessions.get(str(d.get("session_id")))
        if (
            session is None
            or not session.resumable
            or d.get("token") != self.token
            or self._shard_sessions.get(session.shard_id) is not session
        ):
            self._record_gw("invalid_session", conn, session=session)
            await conn.send({"op": 9, "d": False})
            await self._notify()
            return
        if session.conn is not None and session.conn is not conn:
            stale = session.conn
            session.conn = None
            with contextlib.suppress(Exception):
                await self._server_close(stale, 4000, "Session resumed elsewhere.")
        conn.session = session
        async with session.lock:
            session.conn = conn
            since = int(d.get("seq") or 0)
            for event in session.log:
                if event["s"] > since:
                    await conn.send(event)
            session.live = True
            await self._send_dispatch(session, "RESUMED", {"_trace": ['["fake-gateway"]']})
        self._record_gw("resume", conn, payload={"seq": since})
        await self._notify()

    async def _request_members(self, conn: _Conn, d: Json) -> None:
        session = conn.session
        assert session is not None
        ids = d.get("guild_id")
        for gid in ids if isinstance(ids, list) else [ids]:
            guild = self._guilds.get(_int(gid))
            if guild is None:
                continue
            wanted = d.get("user_ids")
            uids = [u for u in guild.members if wanted is None or str(u) in map(str, wanted)]
            chunk: Json = {
                "guild_id": str(guild.id),
                "members": [self._member_payload(guild, u) for u in uids],
                "chunk_index": 0,
                "chunk_count": 1,
            }
            if d.get("nonce") is not None:
                chunk["nonce"] = d["nonce"]
            await self._dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _send_dispatch(self, session: _Session, event: str, data: Json) -> None:
        """Number, log and (if connected) send a dispatch. Caller holds session.lock."""
        session.seq += 1
        payload = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.log.append(payload)
        conn = session.conn
        if session.live and conn is not None and not conn.ws.closed:
            try:
                await conn.send(payload)
            except (ConnectionError, RuntimeError):
                pass  # stays in the log for a RESUME

    async def _dispatch(self, session: _Session, event: str, data: Json) -> None:
        async with session.lock:
            await self._send_dispatch(session, event, data)

    def _target_sessions(self, shard_id: int | None) -> list[_Session]:
        if shard_id is None:
            return list(self._shard_sessions.values())
        s = self._shard_sessions.get(shard_id)
        if s is None:
            raise FakeDiscordError(f"no session for shard {shard_id}")
        return [s]

    async def drop_connection(
        self, shard_id: int | None = None, *, code: int | None = 4000, forget_session: bool = False
    ) -> None:
        """Close the bot's gateway socket from the server side. ``code=None`` cuts the TCP
        connection (a network failure); 4000 is "unknown error, reconnect". Close codes
        1000/1001 or ``forget_session=True`` make the session unresumable, so the client's
        RESUME gets op 9 and it re-identifies."""
        self._gw_marker = len(self.gateway_events)
        for session in self._target_sessions(shard_id):
            conn = session.conn
            session.live = False
            session.conn = None
            if forget_session or code in (1000, 1001):
                session.resumable = False
            if conn is None:
                continue
            conn.server_closed = True
            self._record_gw("server_close", conn, session=session, code=code)
            if code is None:
                transport = conn.request.transport
                if transport is not None:
                    transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.ws.close(code=code, message=b"fake drop"), 5.0)
        await self._notify()

    async def send_reconnect(self, shard_id: int | None = None) -> None:
        """Op 7 RECONNECT: the client should reconnect and RESUME."""
        self._gw_marker = len(self.gateway_events)
        for session in self._target_sessions(shard_id):
            if session.conn is not None:
                self._record_gw("reconnect_sent", session.conn, session=session)
                await session.conn.send({"op": 7, "d": None})

    async def invalidate_session(
        self, shard_id: int | None = None, *, resumable: bool = False
    ) -> None:
        """Op 9 INVALID_SESSION (``d=resumable``)."""
        self._gw_marker = len(self.gateway_events)
        for session in self._target_sessions(shard_id):
            if not resumable:
                session.resumable = False
            if session.conn is not None:
                self._record_gw("invalid_session", session.conn, session=session)
                session.live = False
                await session.conn.send({"op": 9, "d": resumable})

    def session_info(self, shard_id: int = 0) -> dict[str, Any]:
        """Current session of a shard: id, seq, intents, shard, connected, resumable."""
        s = self._target_sessions(shard_id)[0]
        return {
            "session_id": s.id,
            "seq": s.seq,
            "intents": s.intents,
            "shard": [s.shard_id, s.shard_count],
            "connected": s.live,
            "resumable": s.resumable,
            "heartbeats": s.conn.heartbeats if s.conn else 0,
        }


# --------------------------------------------------------------------------------------------
# Pointing discord.py at the fake


@contextlib.contextmanager
def point_discord_at(fake: FakeDiscord) -> Iterator[None]:
    """Point every discord.py client in this process at ``fake`` (and restore afterwards).

    discord.py reads two *class* attributes, so this is process-wide - close the client inside
    the block:
    * ``discord.http.Route.BASE`` (http.py: ``url = self.BASE + self.path``). Bot REST calls,
      interaction callbacks and webhook follow-ups all build ``Route`` objects from it
      (webhook/async_.py imports ``Route`` from ``..http``).
    * ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``, a ``yarl.URL`` (``from_client``
      calls ``gateway.with_query(...)``, so a ``str`` breaks). A plain ``Client`` connects there
      without asking ``/gateway/bot``, and every client falls back to it after op 9.
    """
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


# --------------------------------------------------------------------------------------------
# Helpers: HTTP


def _json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None
) -> web.Response:
    hdrs = dict(headers or {})
    if status == 204 or body is None:
        return web.Response(status=status, headers=hdrs)
    # Exactly "application/json": discord.py compares the header verbatim (http.py json_or_text).
    hdrs["Content-Type"] = "application/json"
    return web.Response(status=status, body=json.dumps(body).encode(), headers=hdrs)


async def _read_body(request: web.Request) -> tuple[Any, dict[str, str], list[UploadedFile]]:
    form: dict[str, str] = {}
    files: list[UploadedFile] = []
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            if part.filename is not None:
                data = await part.read(decode=False)
                files.append(
                    UploadedFile(name, part.filename, bytes(data), part.headers.get("Content-Type"))
                )
            else:
                form[name] = await part.text()
        body = json.loads(form["payload_json"]) if "payload_json" in form else None
        return body, form, files
    raw = await request.read()
    if not raw:
        return None, form, files
    try:
        return json.loads(raw), form, files
    except ValueError:
        return raw.decode(errors="replace"), form, files


def _match_route(method: str, path: str) -> tuple[str, dict[str, str], str, bool] | None:
    for m, template, rx, handler, auth in _COMPILED_ROUTES:
        if m != method:
            continue
        found = rx.match(path)
        if found:
            return template, found.groupdict(), handler, auth
    return None


def _bucket_hash(route_key: str) -> str:
    return hashlib.sha1(route_key.encode()).hexdigest()[:32]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat()


def _role_payload(
    rid: int,
    name: str,
    permissions: int,
    *,
    position: int,
    managed: bool = False,
    bot_id: int | None = None,
) -> Json:
    role: Json = {
        "id": str(rid),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": managed,
        "mentionable": False,
        "flags": 0,
    }
    if bot_id is not None:
        role["tags"] = {"bot_id": str(bot_id)}
    return role


# --------------------------------------------------------------------------------------------
# Helpers: components, mentions, validation


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


def _require_not_empty(payload: Json, files: Sequence[UploadedFile]) -> None:
    if not (
        payload.get("content")
        or payload.get("embeds")
        or files
        or payload.get("attachments")
        or payload.get("components")
        or payload.get("sticker_ids")
        or payload.get("poll")
    ):
        raise _err("empty_message")


def _validate_message(
    payload: Json, files: Sequence[UploadedFile], errors: _FormErrors, prefix: list[str | int]
) -> None:
    content = payload.get("content")
    if content is not None:
        errors.max_len([*prefix, "content"], str(content), 2000)
    embeds = payload.get("embeds") or []
    errors.max_len([*prefix, "embeds"], embeds, 10)
    total = 0
    for i, embed in enumerate(embeds):
        total += _validate_embed(embed, errors, [*prefix, "embeds", i])
    if total > 6000:
        errors.add(
            [*prefix, "embeds"],
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000",
        )
    flags = int(payload.get("flags") or 0)
    components = payload.get("components") or []
    if flags & IS_COMPONENTS_V2:
        if content or embeds:
            errors.add(
                [*prefix, "content" if content else "embeds"],
                "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                "The 'content' and 'embeds' fields cannot be used when using "
                "MessageFlags.IS_COMPONENTS_V2",
            )
        count = sum(1 for _ in _iter_all(components))
        if count > 40:
            errors.add(
                [*prefix, "components"], "BASE_TYPE_MAX_LENGTH", "Must be 40 or fewer in length."
            )
    else:
        errors.max_len([*prefix, "components"], components, 5)
        for i, row in enumerate(components):
            path = [*prefix, "components", i]
            if row.get("type") != 1:
                errors.add(
                    [*path, "type"],
                    "UNION_TYPE_CHOICES",
                    'Value of field "type" must be one of (1,).',
                )
                continue
            kids = row.get("components") or []
            if not kids:
                errors.add(
                    [*path, "components"], "BASE_TYPE_MIN_LENGTH", "Must be 1 or more in length."
                )
            errors.max_len([*path, "components"], kids, 5)
            if any(k.get("type") != 2 for k in kids) and len(kids) > 1:
                errors.add(
                    [*path, "components"],
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
    seen: set[str] = set()
    for c, path in _iter_all(components, [*prefix, "components"]):
        _validate_leaf(c, errors, path, seen)
    attachments = payload.get("attachments") or []
    if len(attachments) > 10 or len(files) > 10:
        errors.add(
            [*prefix, "attachments"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."
        )


def _iter_all(
    components: Iterable[Json], path: list[str | int] | None = None
) -> Iterator[tuple[Json, list[str | int]]]:
    """Every component, nested ones included, with its path for error reports."""
    base: list[str | int] = path if path is not None else ["components"]
    for i, c in enumerate(components):
        yield from _iter_one(c, [*base, i])


def _iter_one(c: Json, here: list[str | int]) -> Iterator[tuple[Json, list[str | int]]]:
    yield c, here
    if isinstance(c.get("components"), list):
        yield from _iter_all(c["components"], [*here, "components"])
    for key in ("component", "accessory"):
        if isinstance(c.get(key), dict):
            yield from _iter_one(c[key], [*here, key])


def _validate_leaf(c: Json, errors: _FormErrors, path: list[str | int], seen: set[str]) -> None:
    kind = c.get("type")
    custom_id = c.get("custom_id")
    if kind == 2:
        errors.max_len([*path, "label"], c.get("label"), 80)
        if c.get("style") == 5:
            if not c.get("url") or custom_id:
                errors.add(
                    [*path, "url"],
                    "BUTTON_COMPONENT_URL_REQUIRED",
                    "A url is required (and custom_id not allowed) for link buttons",
                )
            return
        if c.get("style") == 6:
            return
    if kind in (2, 3, 4, 5, 6, 7, 8):
        if not custom_id:
            errors.add([*path, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
            return
        errors.max_len([*path, "custom_id"], custom_id, 100)
        if custom_id in seen:
            errors.add(
                [*path, "custom_id"],
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(custom_id)
    if kind == 3:
        errors.max_len([*path, "options"], c.get("options") or [], 25)


def _validate_embed(embed: Json, errors: _FormErrors, path: list[str | int]) -> int:
    """Validate one embed's limits; return its size as Discord counts it."""
    size = 0
    for key, limit in (("title", 256), ("description", 4096)):
        value = embed.get(key)
        if value:
            errors.max_len([*path, key], value, limit)
            size += len(value)
    fields = embed.get("fields") or []
    errors.max_len([*path, "fields"], fields, 25)
    for i, f in enumerate(fields):
        errors.max_len([*path, "fields", i, "name"], f.get("name") or "", 256)
        errors.max_len([*path, "fields", i, "value"], f.get("value") or "", 1024)
        size += len(f.get("name") or "") + len(f.get("value") or "")
    footer = (embed.get("footer") or {}).get("text")
    if footer:
        errors.max_len([*path, "footer", "text"], footer, 2048)
        size += len(footer)
    author = (embed.get("author") or {}).get("name")
    if author:
        errors.max_len([*path, "author", "name"], author, 256)
        size += len(author)
    return size


def _validate_modal(data: Json, errors: _FormErrors, prefix: list[str | int]) -> None:
    title = data.get("title") or ""
    if not 1 <= len(title) <= 45:
        errors.add(
            [*prefix, "title"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length."
        )
    custom_id = data.get("custom_id") or ""
    if not 1 <= len(custom_id) <= 100:
        errors.add(
            [*prefix, "custom_id"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        errors.add(
            [*prefix, "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
    for i, top in enumerate(components):
        path = [*prefix, "components", i]
        if top.get("type") == 1:
            kids = top.get("components") or []
            if len(kids) != 1 or kids[0].get("type") != 4:
                errors.add(
                    path,
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "A modal action row holds exactly one text input",
                )
                continue
            _validate_text_input(kids[0], errors, [*path, "components", 0], in_row=True)
        elif top.get("type") == 18:
            errors.max_len([*path, "label"], top.get("label") or "", 45)
            inner = top.get("component") or {}
            if inner.get("type") == 4:
                _validate_text_input(inner, errors, [*path, "component"], in_row=False)
        elif top.get("type") != 10:
            errors.add([*path, "type"], "UNION_TYPE_CHOICES", "Invalid modal component type")


def _validate_text_input(
    c: Json, errors: _FormErrors, path: list[str | int], *, in_row: bool
) -> None:
    if not c.get("custom_id"):
        errors.add([*path, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
    if c.get("style") not in (1, 2):
        errors.add([*path, "style"], "BASE_TYPE_CHOICES", "Value must be one of {1, 2}.")
    if in_row:
        label = c.get("label") or ""
        if not 1 <= len(label) <= 45:
            errors.add(
                [*path, "label"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length."
            )
    lo, hi = c.get("min_length"), c.get("max_length")
    if lo is not None and not 0 <= lo <= 4000:
        errors.add([*path, "min_length"], "NUMBER_TYPE_MAX", "int value should be <= 4000.")
    if hi is not None and not 1 <= hi <= 4000:
        errors.add([*path, "max_length"], "NUMBER_TYPE_MAX", "int value should be <= 4000.")
    errors.max_len([*path, "value"], c.get("value"), 4000)
    errors.max_len([*path, "placeholder"], c.get("placeholder"), 100)


def _modal_submission(components: list[Json], values: dict[str, str]) -> list[Json]:
    """Mirror the modal's layout with what the user typed, checking what the UI would.
    Pops used entries from ``values`` so the caller can spot unknown ones."""
    out: list[Json] = []
    for top in components:
        if top.get("type") == 1:
            out.append(
                {
                    "type": 1,
                    "components": [
                        _submitted_input(c, values) for c in top.get("components") or []
                    ],
                }
            )
        elif top.get("type") == 18 and isinstance(top.get("component"), dict):
            item: Json = {"type": 18, "component": _submitted_input(top["component"], values)}
            if "id" in top:
                item["id"] = top["id"]
            out.append(item)
    return out


def _submitted_input(c: Json, values: dict[str, str]) -> Json:
    cid = c.get("custom_id", "")
    if c.get("type") != 4:
        picked: Any = values.pop(cid, [])
        return {"type": c.get("type"), "custom_id": cid, "values": list(picked)}
    value = values.pop(cid, c.get("value") or "")
    required = c.get("required", True)
    label = c.get("label") or cid
    if required and not value:
        raise FakeDiscordError(f"modal field {label!r} ({cid}) is required")
    if value:
        lo, hi = c.get("min_length", 0), c.get("max_length", 4000)
        if not lo <= len(value) <= hi:
            raise FakeDiscordError(
                f"modal field {label!r} takes {lo}..{hi} characters, got {len(value)}"
            )
    out: Json = {"type": 4, "custom_id": cid, "value": value}
    if "id" in c:
        out["id"] = c["id"]
    return out


def _validate_command(cmd: Json, errors: _FormErrors, path: list[str | int]) -> None:
    name = cmd.get("name") or ""
    kind = cmd.get("type", 1)
    if kind == 1:
        if not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower():
            errors.add(
                [*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
            )
        description = cmd.get("description") or ""
        if not 1 <= len(description) <= 100:
            errors.add(
                [*path, "description"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        _validate_options(cmd.get("options") or [], errors, [*path, "options"])
    elif not 1 <= len(name) <= 32:
        errors.add([*path, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")


def _validate_options(options: list[Json], errors: _FormErrors, path: list[str | int]) -> None:
    errors.max_len(path, options, 25)
    seen_optional = False
    names: set[str] = set()
    for i, o in enumerate(options):
        p = [*path, i]
        name = o.get("name") or ""
        if not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower():
            errors.add([*p, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if name in names:
            errors.add(
                [*p, "name"],
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            )
        names.add(name)
        description = o.get("description") or ""
        if not 1 <= len(description) <= 100:
            errors.add(
                [*p, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        if o.get("type") in (1, 2):
            _validate_options(o.get("options") or [], errors, [*p, "options"])
            continue
        if o.get("required"):
            if seen_optional:
                errors.add(
                    [*p, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
        errors.max_len([*p, "choices"], o.get("choices") or [], 25)
        if o.get("choices") and o.get("autocomplete"):
            errors.add(
                [*p, "autocomplete"],
                "AUTOCOMPLETE_CHOICES_CONFLICT",
                "Autocomplete cannot be enabled with choices",
            )
