"""A guild as the fake keeps it: channels, roles, members, and the permissions they add up to."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.fakes.discord.protocol import FILESIZE_BY_PREMIUM_TIER, MIB, FakeDiscordError, Json, Perm

THREAD_TYPES = (10, 11, 12)  # announcement, public and private threads


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

    def is_thread(self, channel_id: int) -> bool:
        channel = self.channels.get(channel_id)
        return channel is not None and channel["type"] in THREAD_TYPES

    def listed_channels(self) -> list[Json]:
        """The guild's channels as Discord lists them: threads are not among them."""
        return [c for c in self.channels.values() if c["type"] not in THREAD_TYPES]

    def threads(self) -> list[Json]:
        return [c for c in self.channels.values() if c["type"] in THREAD_TYPES]

    def permissions(self, user_id: int, channel_id: int | None = None) -> int:
        """Effective permissions like Discord computes them (roles, then channel overwrites;
        a thread has its parent channel's)."""
        if channel_id is not None and self.is_thread(channel_id):
            channel_id = int(self.channels[channel_id]["parent_id"])
        if user_id == self.owner_id:
            return Perm.ALL
        member = self.members.get(user_id)
        if member is None:
            return 0
        perms = int(self.roles[self.id]["permissions"]) | int(member.get("_extra_permissions", 0))
        role_ids = {int(r) for r in member["roles"]}
        for rid in role_ids:
            if rid in self.roles:
                perms |= int(self.roles[rid]["permissions"])
        if perms & Perm.ADMINISTRATOR:
            return Perm.ALL
        if channel_id is None or channel_id not in self.channels:
            return perms
        overwrites = self.channels[channel_id]["permission_overwrites"]
        for ow in overwrites:
            if int(ow["id"]) == self.id and ow["type"] == 0:
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
