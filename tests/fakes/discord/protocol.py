"""What Discord's API defines and the fake checks: limits, flags, intents, permission bits, error
codes, and the exact JSON answer discord.py expects."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

Json = dict[str, Any]

API_PREFIX = "/api/v10"
# Attachments live on the CDN (cdn.discordapp.com), not the API host: the fake serves them
# under this host name, which resolves to the loopback address it listens on.
CDN_HOST = "localhost"
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
# Create Message: "The maximum request size when sending a message is 25 MiB" (Discord's docs);
# the limit per file (above) holds for each attachment. A guild whose per-file limit is larger
# takes at least one such file, so the fake allows the larger of the two per message.
MAX_REQUEST_BYTES = 25 * MIB

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


def api_error(kind: str) -> DiscordAPIError:
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


class FormErrors:
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


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    hdrs = dict(headers or {})
    if status == 204 or body is None:
        return web.Response(status=status, headers=hdrs)
    # Exactly "application/json": discord.py compares the header verbatim (http.py json_or_text).
    hdrs["Content-Type"] = "application/json"
    return web.Response(status=status, body=json.dumps(body).encode(), headers=hdrs)


def as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat()
