"""REST: the gateway URL, users, DMs and the application."""

from __future__ import annotations

from typing import Any

from tests.fakes.discord.payloads import me_payload, user_payload
from tests.fakes.discord.protocol import api_error, as_int
from tests.fakes.discord.routes import Req, Route, RouteArea


class UserRoutes(RouteArea):
    def routes(self) -> list[Route]:
        return [
            ("GET", "/gateway", self.gateway, False),
            ("GET", "/gateway/bot", self.gateway_bot, True),
            ("GET", "/users/@me", self.me, True),
            ("POST", "/users/@me/channels", self.create_dm, True),
            ("GET", "/users/{user_id}", self.user, True),
            ("GET", "/oauth2/applications/@me", self.application, True),
            ("GET", "/applications/@me", self.application, True),
        ]

    async def gateway(self, req: Req) -> tuple[int, Any]:
        return 200, {"url": self.state.gateway_url}

    async def gateway_bot(self, req: Req) -> tuple[int, Any]:
        return 200, {
            "url": self.state.gateway_url,
            "shards": self.state.shard_count,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000 - len(self.state.identify_payloads),
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    async def me(self, req: Req) -> tuple[int, Any]:
        return 200, me_payload(self.state)

    async def user(self, req: Req) -> tuple[int, Any]:
        uid = as_int(req.params["user_id"])
        if uid not in self.state.users:
            raise api_error("unknown_user")
        return 200, user_payload(self.state, uid)

    async def create_dm(self, req: Req) -> tuple[int, Any]:
        uid = as_int((req.json or {}).get("recipient_id"))
        if uid not in self.state.users:
            raise api_error("unknown_user")
        for ch in self.state.dm_channels.values():
            if int(ch["recipients"][0]["id"]) == uid:
                return 200, ch
        ch = self.state.open_dm(self.state.snowflake(), uid)
        return 200, ch

    async def application(self, req: Req) -> tuple[int, Any]:
        owner = next(
            (u for u in self.state.users.values() if not u["bot"]),
            user_payload(self.state, self.state.bot_user_id),
        )
        return 200, {
            "id": str(self.state.application_id),
            "name": self.state.users[self.state.bot_user_id]["username"],
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": owner,
            "team": None,
            "verify_key": "0" * 64,
            "flags": self.state.application_flags,
            "bot": user_payload(self.state, self.state.bot_user_id),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "approximate_guild_count": len(self.state.guilds),
            "integration_types_config": {"0": {}},
        }

    # ---- REST: application commands -------------------------------------------------------
