"""What Discord's client lets a user type into a slash command: visibility, options, choices,
ranges, and the ``resolved`` users, members, roles, channels and attachments."""

from __future__ import annotations

from typing import Any

from tests.fakes.discord.messages import Messages
from tests.fakes.discord.payloads import member_payload, user_payload
from tests.fakes.discord.protocol import FakeDiscordError, Json, Perm, as_int
from tests.fakes.discord.records import UploadedFile
from tests.fakes.discord.state import State


class Options:
    def __init__(self, state: State, messages: Messages) -> None:
        self.state = state
        self.messages = messages

    def check_visible(self, cmd: Json, guild_id: int | None, channel_id: int, user_id: int) -> None:
        if guild_id is None:
            contexts = cmd.get("contexts")
            if (
                cmd.get("guild_id")
                or (contexts is not None and 1 not in contexts)
                or cmd.get("dm_permission") is False
            ):
                raise FakeDiscordError(f"/{cmd['name']} is not available in DMs")
            return
        perms = self.state.permissions(guild_id, user_id, channel_id)
        needed = cmd.get("default_member_permissions")
        if needed is not None and perms & int(needed) != int(needed):
            raise FakeDiscordError(
                f"user {user_id} lacks default_member_permissions={needed} for "
                f"/{cmd['name']}, so Discord hides it (pass respect_visibility=False to act as "
                f"a guild permission override)"
            )
        if not perms & Perm.USE_APPLICATION_COMMANDS:
            raise FakeDiscordError(f"user {user_id} may not use application commands here")
        channel = self.state.guild(guild_id).channels.get(channel_id)
        if channel is None:
            raise FakeDiscordError(f"guild {guild_id} has no channel {channel_id}")
        if cmd.get("nsfw") and not channel.get("nsfw"):
            raise FakeDiscordError(
                f"/{cmd['name']} is age-restricted: Discord hides it outside nsfw channels"
            )

    def build(
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
            value = self._value(d, given[d["name"]], guild_id, channel_id, resolved, command)
            out.append({"name": d["name"], "type": d["type"], "value": value})
        return out

    def _value(
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
        elif kind in (6, 9) and as_int(value) in self.state.users:
            uid = as_int(value)
            resolved.setdefault("users", {})[str(uid)] = user_payload(self.state, uid)
            guild = self.state.guilds.get(guild_id) if guild_id else None
            if guild and uid in guild.members:
                member = member_payload(
                    self.state, guild, uid, with_user=False, channel_id=channel_id
                )
                resolved.setdefault("members", {})[str(uid)] = member
            value = str(uid)
        elif kind in (8, 9) and guild_id and as_int(value) in self.state.guild(guild_id).roles:
            resolved.setdefault("roles", {})[str(value)] = self.state.guild(guild_id).roles[
                as_int(value)
            ]
            value = str(value)
        elif kind == 7:
            found = self.state.find_channel(as_int(value))
            if found is None:
                raise FakeDiscordError(f"{where}: no channel {value}")
            ch = dict(found[0])
            ch["permissions"] = str(
                self.state.permissions(guild_id, self.state.bot_user_id, as_int(value))
                if guild_id
                else Perm.ALL
            )
            resolved.setdefault("channels", {})[str(value)] = ch
            value = str(value)
        elif kind == 11:
            filename, data, *ctype = value
            upload = UploadedFile("files[0]", filename, data, ctype[0] if ctype else None)
            att = self.messages.store_attachment(channel_id, upload, {})
            if ctype:
                att.content_type = ctype[0]
            # An upload into a command option lives only for the interaction (Discord marks
            # it so); its url is on the fake's CDN like any other attachment.
            payload = {**att.payload(), "ephemeral": True}
            resolved.setdefault("attachments", {})[str(att.id)] = payload
            value = str(att.id)
        elif kind in (6, 8, 9):
            raise FakeDiscordError(f"{where}: {value!r} is not a known user/role")
        choices = d.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise FakeDiscordError(
                f"{where}: {value!r} is not one of the choices {[c['value'] for c in choices]}"
            )
        return value
