"""The fake's world: config, users, guilds (channels, roles, members), DMs, commands, messages,
attachments and interactions, plus what tests read back (requests, gateway events, syncs).

``FakeDiscord`` *is* a ``State`` (tests build the world through it); the gateway, the REST
routes and the user actions each hold the same ``State``."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.clock import Clock
from tests.fakes.discord.guild import FakeGuild
from tests.fakes.discord.payloads import role_payload
from tests.fakes.discord.protocol import (
    CDN_HOST,
    DISCORD_EPOCH_MS,
    DM_FILESIZE_LIMIT,
    MAX_REQUEST_BYTES,
    FakeDiscordError,
    Json,
    Perm,
    iso,
)
from tests.fakes.discord.ratelimits import DEFAULT_RATE_LIMITS
from tests.fakes.discord.records import (
    GatewayEvent,
    RecordedAttachment,
    RecordedMessage,
    RecordedRequest,
)

if TYPE_CHECKING:
    from tests.fakes.discord.interaction import FakeInteraction


class State:
    """Config, world and records of one fake Discord."""

    def __init__(
        self,
        *,
        token: str,
        application_id: int,
        bot_user_id: int | None,
        bot_username: str,
        time_scale: float,
        shard_count: int,
        rate_limits: Mapping[str, tuple[int, float]] | None,
        gateway_compression: bool,
        allowed_privileged_intents: int,
        application_flags: int,
        interaction_response_window: float,
        interaction_token_ttl: float,
    ) -> None:
        self.token = token
        self.application_id = application_id
        self.bot_user_id = bot_user_id or application_id  # Discord: the bot user shares the id
        self.clock = Clock(time_scale, self.recent_requests_summary)
        self.shard_count = shard_count
        self.gateway_compression = gateway_compression
        self.allowed_privileged_intents = allowed_privileged_intents
        self.application_flags = application_flags
        self.interaction_response_window = interaction_response_window
        self.interaction_token_ttl = interaction_token_ttl
        self.rate_limits: dict[str, tuple[int, float]] = dict(DEFAULT_RATE_LIMITS)
        if rate_limits:
            self.rate_limits.update(rate_limits)
        self.port = 0  # set once the server listens

        # What tests read back.
        self.requests: list[RecordedRequest] = []
        self.invalid_request_count = 0  # 401/403/429 answers, which Discord counts towards a ban
        self.server_errors: list[str] = []  # bugs in the fake itself (handler exceptions)
        self.gateway_events: list[GatewayEvent] = []
        self.identify_payloads: list[Json] = []  # IDENTIFY ``d`` (token redacted)
        self.presence_updates: list[Json] = []
        self.command_syncs: list[tuple[int | None, list[str]]] = []

        # The world.
        self.users: dict[int, Json] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.dm_channels: dict[int, Json] = {}  # channel id -> DM channel
        self.commands: dict[int | None, list[Json]] = {}  # guild id (None: global) -> commands
        self.messages: dict[int, RecordedMessage] = {}
        self.channel_order: dict[int, list[int]] = {}
        self.attachments: dict[int, RecordedAttachment] = {}
        self.cdn_downloads: list[int] = []  # attachment ids fetched from the CDN, in order
        self.nonces: dict[tuple[int, int, str], tuple[int, float]] = {}
        # What one message's files may have together (Discord's docs: 25 MiB); a test may
        # lower it to see a bot share it out without uploading megabytes.
        self.max_request_bytes = MAX_REQUEST_BYTES
        self.interaction_by_id: dict[int, FakeInteraction] = {}
        self.interaction_by_token: dict[str, FakeInteraction] = {}
        self._last_snowflake = 0

        self.add_user(self.bot_user_id, bot_username, bot=True)

    @property
    def time_scale(self) -> float:
        return self.clock.time_scale

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn_url(self) -> str:
        """Where attachments live, as on cdn.discordapp.com: the same loopback server under
        another host name, so a test can tell a CDN address from an API one."""
        return f"http://{CDN_HOST}:{self.port}"

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` must be (as a ``yarl.URL``)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/resume-gateway"

    def now(self) -> float:
        """Nominal seconds since the fake started (real time / time_scale + advances)."""
        return self.clock.now()

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
        self.users[id] = user
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
        self.guilds[id] = guild
        guild.roles[id] = role_payload(id, "@everyone", everyone_permissions, position=0)
        for i, spec in enumerate(roles, start=1):
            rid = int(spec["id"])
            guild.roles[rid] = role_payload(
                rid,
                spec.get("name", f"role-{i}"),
                int(spec.get("permissions", 0)),
                position=int(spec.get("position", i)),
            )
        bot_role = self.snowflake()
        guild.roles[bot_role] = role_payload(
            bot_role,
            self.users[self.bot_user_id]["username"],
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
        found = self.find_channel(channel_id)
        if found is None or found[1] is None:
            raise FakeDiscordError(f"no guild channel {channel_id}")
        channel = found[0]
        kept = [o for o in channel["permission_overwrites"] if int(o["id"]) != target_id]
        kept.append(
            {"id": str(target_id), "type": int(member), "allow": str(allow), "deny": str(deny)}
        )
        channel["permission_overwrites"] = kept

    def delete_channel(self, channel_id: int) -> None:
        """Delete a guild channel: from now on every request naming it answers 404 Unknown
        Channel (10003), as Discord does. Like the overwrites above, no gateway event is sent."""
        found = self.find_channel(channel_id)
        if found is None or found[1] is None:
            raise FakeDiscordError(f"no guild channel {channel_id}")
        del found[1].channels[channel_id]

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
        if user_id not in self.users:
            self.add_user(user_id, username or f"user{user_id}")
        member = {
            "roles": [str(r) for r in roles],
            "nick": nick,
            "avatar": None,
            "banner": None,
            "joined_at": iso(time.time()),
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
            return self.guilds[guild_id]
        except KeyError:
            raise FakeDiscordError(f"no guild {guild_id}; add it with dc.add_guild()") from None

    def user(self, user_id: int) -> Json:
        return self.users[user_id]

    def open_dm(self, channel_id: int, user_id: int) -> Json:
        """The DM channel ``channel_id`` with ``user_id``, made on first use."""
        dm = self.dm_channels.get(channel_id)
        if dm is None:
            dm = {
                "id": str(channel_id),
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [dict(self.users[user_id])],
            }
            self.dm_channels[channel_id] = dm
        return dm

    def find_channel(self, channel_id: int) -> tuple[Json, FakeGuild | None] | None:
        for g in self.guilds.values():
            if channel_id in g.channels:
                return g.channels[channel_id], g
        if channel_id in self.dm_channels:
            return self.dm_channels[channel_id], None
        return None

    # ---- permissions ----------------------------------------------------------------------

    def permissions(self, guild_id: int, user_id: int, channel_id: int | None = None) -> int:
        """Effective permissions like Discord computes them (roles, then channel overwrites)."""
        return self.guild(guild_id).permissions(user_id, channel_id)

    # ---- what tests read back -------------------------------------------------------------

    def channel_messages(
        self, channel_id: int, *, include_deleted: bool = False, include_ephemeral: bool = True
    ) -> list[RecordedMessage]:
        out = []
        for mid in self.channel_order.get(channel_id, []):
            m = self.messages[mid]
            if m.deleted and not include_deleted:
                continue
            if m.ephemeral and not include_ephemeral:
                continue
            out.append(m)
        return out

    def message(self, message_id: int) -> RecordedMessage:
        try:
            return self.messages[message_id]
        except KeyError:
            raise FakeDiscordError(f"no message {message_id}") from None

    def recent_requests_summary(self, n: int = 8) -> str:
        lines = [f"last {min(n, len(self.requests))} requests:"]
        for r in self.requests[-n:]:
            code = ""
            if isinstance(r.response, dict) and "code" in r.response and r.status >= 400:
                code = f" code={r.response['code']}"
            lines.append(f"  {r.method} {r.path} -> {r.status}{code}")
        if self.server_errors:
            lines.append(f"fake server errors: {self.server_errors[-3:]}")
        return "\n".join(lines)

    def channel_summary(self, channel_id: int) -> str:
        msgs = self.channel_messages(channel_id, include_deleted=True)
        if not msgs:
            return f"channel {channel_id} has no messages."
        return f"channel {channel_id} messages:\n" + "\n".join("  " + m.summary() for m in msgs)
