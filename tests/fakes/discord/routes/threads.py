"""REST: starting a thread without a message (``POST /channels/{channel_id}/threads``), as a
bot's ``TextChannel.create_thread(name=..., type=ChannelType.public_thread)`` does.

What it is faithful to (Discord's docs, "Start Thread without Message"; discord.py 2.7.1):

* Only in a guild text (0) or announcement (5) channel; the bot needs View Channel and
  Create Public Threads (type 11) or Create Private Threads (type 12, the API's default when
  no ``type`` is given); an announcement channel always makes an announcement thread (10).
* ``name`` 1–100 characters, ``auto_archive_duration`` one of 60, 1440, 4320, 10080
  (otherwise 400/50035 with the field's error).
* The answer is 201 with the thread channel: ``parent_id``, ``owner_id`` (the bot),
  ``thread_metadata``, ``message_count``/``member_count`` and the creator's thread ``member``.
  The creator joins it; a THREAD_CREATE with ``newly_created`` goes to the guild's shard
  (Discord sends it to those who can see the parent with the Guilds intent).
* A public thread leaves a system message in its channel ("AceJam started a thread: …",
  type 18, its name as content, ``message_reference`` to the thread).

A thread is a channel of its guild from then on (messages, interactions, permissions: its
parent's overwrites, Send Messages in Threads instead of Send Messages); GUILD_CREATE lists it
under ``threads``, not ``channels``.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.discord.guild import THREAD_TYPES
from tests.fakes.discord.protocol import (
    INTENT_GUILDS,
    DiscordAPIError,
    FormErrors,
    Json,
    Perm,
    api_error,
    iso,
)
from tests.fakes.discord.routes import Req, Route, RouteArea

CREATE_PRIVATE_THREADS = 1 << 36
ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)
NAME_MAX = 100
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
ANNOUNCEMENT_THREAD = 10
THREAD_CREATED = 18  # the system message a thread started without a message leaves


class ThreadRoutes(RouteArea):
    def routes(self) -> list[Route]:
        return [("POST", "/channels/{channel_id}/threads", self.start_thread, True)]

    async def start_thread(self, req: Req) -> tuple[int, Any]:
        found = self.state.find_channel(int(req.params["channel_id"]))
        if found is None:
            raise api_error("unknown_channel")
        parent, guild = found
        if guild is None or parent["type"] not in (0, 5):
            raise DiscordAPIError(400, 50024, "Cannot execute action on this channel type")
        body: Json = req.json if isinstance(req.json, dict) else {}
        kind = int(body.get("type") or PRIVATE_THREAD)
        if parent["type"] == 5:
            kind = ANNOUNCEMENT_THREAD
        parent_id = int(parent["id"])
        bits = Perm.VIEW_CHANNEL | (
            CREATE_PRIVATE_THREADS if kind == PRIVATE_THREAD else Perm.CREATE_PUBLIC_THREADS
        )
        if guild.permissions(self.state.bot_user_id, parent_id) & bits != bits:
            raise api_error("missing_permissions")
        errors = FormErrors()
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX:
            errors.add(
                ["name"], "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {NAME_MAX} in length."
            )
        archive = body.get("auto_archive_duration") or 4320
        if archive not in ARCHIVE_DURATIONS:
            errors.add(
                ["auto_archive_duration"],
                "BASE_TYPE_CHOICES",
                f"Value must be one of {ARCHIVE_DURATIONS}.",
            )
        errors.raise_if_any()
        thread = self._make(guild.id, parent, str(name), kind, int(archive), body)
        guild.channels[int(thread["id"])] = thread
        if kind != PRIVATE_THREAD:
            await self._tell_parent(guild.id, parent_id, thread)
        session = self.messages.gateway.session_for(guild.id, required=False)
        if session is not None and session.intents & INTENT_GUILDS:
            await self.messages.gateway.dispatch(
                session, "THREAD_CREATE", {**thread, "newly_created": True}
            )
        return 201, thread

    async def _tell_parent(self, guild_id: int, parent_id: int, thread: Json) -> None:
        """What members of the channel see: a system message (type 18, THREAD_CREATED) whose
        text is the thread's name and which refers to the thread."""
        note = self.messages.new(
            parent_id,
            guild_id,
            self.state.bot_user_id,
            "channel",
            {"content": thread["name"]},
            [],
            type_=THREAD_CREATED,
        )
        note.message_reference = {"channel_id": thread["id"], "guild_id": str(guild_id)}
        await self.messages.emit("MESSAGE_CREATE", note)

    def _make(
        self, guild_id: int, parent: Json, name: str, kind: int, archive: int, body: Json
    ) -> Json:
        thread_id = self.state.snowflake()
        now = iso(self.state.clock.wall())
        assert kind in THREAD_TYPES
        return {
            "id": str(thread_id),
            "type": kind,
            "guild_id": str(guild_id),
            "parent_id": parent["id"],
            "owner_id": str(self.state.bot_user_id),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": int(body.get("rate_limit_per_user") or 0),
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "nsfw": bool(parent.get("nsfw")),
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": archive,
                "archive_timestamp": now,
                "locked": False,
                "invitable": bool(body.get("invitable", True)),
                "create_timestamp": now,
            },
            "member": {
                "id": str(thread_id),
                "user_id": str(self.state.bot_user_id),
                "join_timestamp": now,
                "flags": 0,
            },
        }
