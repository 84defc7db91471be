"""REST: guilds, their channels, roles and members."""

from __future__ import annotations

from typing import Any

from tests.fakes.discord.guild import FakeGuild
from tests.fakes.discord.payloads import guild_payload, member_payload
from tests.fakes.discord.protocol import api_error, as_int
from tests.fakes.discord.routes import Req, Route, RouteArea


class GuildRoutes(RouteArea):
    def routes(self) -> list[Route]:
        return [
            ("GET", "/guilds/{guild_id}", self.get_guild, True),
            ("GET", "/guilds/{guild_id}/channels", self.channels, True),
            ("GET", "/guilds/{guild_id}/roles", self.roles, True),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member, True),
        ]

    def _guild(self, req: Req) -> FakeGuild:
        g = self.state.guilds.get(as_int(req.params["guild_id"]))
        if g is None:
            raise api_error("unknown_guild")
        return g

    async def get_guild(self, req: Req) -> tuple[int, Any]:
        g = self._guild(req)
        payload = guild_payload(self.state, g)
        if req.query.get("with_counts") in ("1", "true", "True"):
            payload["approximate_member_count"] = len(g.members)
            payload["approximate_presence_count"] = 0
        return 200, payload

    async def channels(self, req: Req) -> tuple[int, Any]:
        g = self._guild(req)
        return 200, g.listed_channels()

    async def roles(self, req: Req) -> tuple[int, Any]:
        g = self._guild(req)
        return 200, list(g.roles.values())

    async def get_member(self, req: Req) -> tuple[int, Any]:
        g = self._guild(req)
        uid = as_int(req.params["user_id"])
        if uid not in g.members:
            raise api_error("unknown_member")
        return 200, member_payload(self.state, g, uid)
