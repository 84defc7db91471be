"""REST: application commands (global and per guild), and finding a synced command."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tests.fakes.discord.protocol import DiscordAPIError, FormErrors, Json, api_error, as_int
from tests.fakes.discord.routes import Req, Route, RouteArea
from tests.fakes.discord.state import State
from tests.fakes.discord.validation import validate_command

_APP = "/applications/{application_id}"
_GUILD = "/applications/{application_id}/guilds/{guild_id}"


class CommandRoutes(RouteArea):
    def routes(self) -> list[Route]:
        out: list[Route] = []
        for scope in (_APP, _GUILD):
            out += [
                ("GET", scope + "/commands", self.get_commands, True),
                ("PUT", scope + "/commands", self.put_commands, True),
                ("POST", scope + "/commands", self.post_command, True),
                ("DELETE", scope + "/commands/{command_id}", self.delete_command, True),
            ]
        return out

    def _check_app(self, req: Req) -> None:
        if as_int(req.params["application_id"]) != self.state.application_id:
            raise DiscordAPIError(403, 50001, "Missing Access")

    def _scope(self, req: Req) -> int | None:
        if "guild_id" not in req.params:
            return None
        gid = as_int(req.params["guild_id"])
        if gid not in self.state.guilds:
            raise DiscordAPIError(403, 50001, "Missing Access")
        return gid

    async def get_commands(self, req: Req) -> tuple[int, Any]:
        self._check_app(req)
        return 200, list(self.state.commands.get(self._scope(req), []))

    async def put_commands(self, req: Req) -> tuple[int, Any]:
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
        errors = FormErrors()
        if len(body) > 100:
            errors.add([], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        for i, cmd in enumerate(body):
            validate_command(cmd, errors, [i])
        errors.raise_if_any()
        old = {(c["name"], c.get("type", 1)): c for c in self.state.commands.get(scope, [])}
        stored = [self._store_command(c, scope, old) for c in body]
        self.state.commands[scope] = stored
        self.state.command_syncs.append((scope, [c["name"] for c in stored]))
        await self.state.clock.notify()
        return 200, stored

    async def post_command(self, req: Req) -> tuple[int, Any]:
        self._check_app(req)
        scope = self._scope(req)
        errors = FormErrors()
        validate_command(req.json or {}, errors, [])
        errors.raise_if_any()
        current = self.state.commands.setdefault(scope, [])
        old = {(c["name"], c.get("type", 1)): c for c in current}
        cmd = self._store_command(req.json, scope, old)
        current[:] = [c for c in current if c["id"] != cmd["id"]] + [cmd]
        self.state.command_syncs.append((scope, [cmd["name"]]))
        await self.state.clock.notify()
        return 201 if (cmd["name"], cmd["type"]) not in old else 200, cmd

    async def delete_command(self, req: Req) -> tuple[int, Any]:
        self._check_app(req)
        scope = self._scope(req)
        current = self.state.commands.get(scope, [])
        remaining = [c for c in current if c["id"] != req.params["command_id"]]
        if len(remaining) == len(current):
            raise api_error("unknown_command")
        self.state.commands[scope] = remaining
        return 204, None

    def _store_command(
        self, raw: Json, scope: int | None, old: Mapping[tuple[str, int], Json]
    ) -> Json:
        cmd = json.loads(json.dumps(raw))
        cmd.setdefault("type", 1)
        previous = old.get((cmd["name"], cmd["type"]))
        cmd["id"] = previous["id"] if previous else str(self.state.snowflake())
        cmd["application_id"] = str(self.state.application_id)
        cmd["version"] = str(self.state.snowflake())
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


def find_command(state: State, name: str, guild_id: int | None, type_: int = 1) -> Json | None:
    scopes: list[int | None] = [guild_id, None] if guild_id else [None]
    for scope in scopes:
        for c in state.commands.get(scope, []):
            if c["name"] == name and c.get("type", 1) == type_:
                return c
    return None


def no_command_message(state: State, name: str, guild_id: int | None) -> str:
    return (
        f"/{name} is not registered for guild {guild_id} or globally (the bot must sync "
        f"its command tree first). Registered: global="
        f"{[c['name'] for c in state.commands.get(None, [])]}, guild="
        f"{[c['name'] for c in state.commands.get(guild_id, [])] if guild_id else []}"
    )
