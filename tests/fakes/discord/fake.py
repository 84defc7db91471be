"""``FakeDiscord``: the world (``State``), the server, the gateway and the user actions, wired
together behind the one object tests hold."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tests.fakes.discord.actions import Actions
from tests.fakes.discord.faults import fault_plan, route_regex
from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.interaction import FakeInteraction
from tests.fakes.discord.messages import Messages
from tests.fakes.discord.protocol import (
    API_PREFIX,
    INTERACTION_RESPONSE_WINDOW,
    INTERACTION_TOKEN_TTL,
    PRIVILEGED_INTENTS,
    FakeDiscordError,
    Json,
)
from tests.fakes.discord.records import GatewayEvent, RecordedMessage, RecordedRequest
from tests.fakes.discord.routes.channels import ChannelRoutes
from tests.fakes.discord.routes.commands import CommandRoutes, find_command, no_command_message
from tests.fakes.discord.routes.guilds import GuildRoutes
from tests.fakes.discord.routes.interactions import InteractionRoutes
from tests.fakes.discord.routes.threads import ThreadRoutes
from tests.fakes.discord.routes.users import UserRoutes
from tests.fakes.discord.server import Server
from tests.fakes.discord.state import State


class FakeDiscord(State):
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
        super().__init__(
            token=token,
            application_id=application_id,
            bot_user_id=bot_user_id,
            bot_username=bot_username,
            time_scale=time_scale,
            shard_count=shard_count,
            rate_limits=rate_limits,
            gateway_compression=gateway_compression,
            allowed_privileged_intents=allowed_privileged_intents,
            application_flags=application_flags,
            interaction_response_window=interaction_response_window,
            interaction_token_ttl=interaction_token_ttl,
        )
        self.faults = fault_plan()  # tests/fakes/common/faults.py: one model for every fake
        self._gateway = Gateway(self)
        messages = Messages(self, self._gateway)
        routes = [
            *UserRoutes(self, messages).routes(),
            *CommandRoutes(self, messages).routes(),
            *InteractionRoutes(self, messages).routes(),
            *ChannelRoutes(self, messages).routes(),
            *GuildRoutes(self, messages).routes(),
            *ThreadRoutes(self, messages).routes(),
        ]
        self._server = Server(self, self._gateway, self.faults, routes)
        # What a user does, and what the server does to the bot's gateway connection: the
        # Actions' and the Gateway's own methods, so their signatures and docs stay in one place.
        actions = Actions(self, self._gateway, messages)
        self.invoke_slash = actions.invoke_slash
        self.autocomplete = actions.autocomplete
        self.click_button = actions.click_button
        self.select = actions.select
        self.submit_modal = actions.submit_modal
        self.post_user_message = actions.post_user_message
        self.drop_connection = self._gateway.drop_connection
        self.send_reconnect = self._gateway.send_reconnect
        self.invalidate_session = self._gateway.invalidate_session
        self.session_info = self._gateway.session_info

    # ---- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        await self._server.start()

    async def close(self) -> None:
        await self._server.close()

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be set to."""
        return self.base_url + API_PREFIX

    # ---- clock ----------------------------------------------------------------------------

    async def advance_time(self, seconds: float) -> None:
        """Jump the fake's clock forward by ``seconds`` nominal seconds."""
        await self.clock.advance(seconds)

    async def wait_until_time(self, nominal: float, timeout: float = 30.0) -> None:
        await self.clock.wait_until(nominal, timeout)

    # ---- waiting --------------------------------------------------------------------------

    async def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Every shard identified and got READY plus its GUILD_CREATEs."""

        def check() -> bool:
            if not self._gateway.shard_sessions:
                return False
            count = next(iter(self._gateway.shard_sessions.values())).shard_count
            for sid in range(count):
                s = self._gateway.shard_sessions.get(sid)
                if s is None or not s.ready or not s.live:
                    return False
            return True

        await self.clock.wait(
            check, timeout, "the bot to identify and get its guilds", self._gateway.summary
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

        return await self.clock.wait(
            check, timeout, f"gateway event {kind!r}", self._gateway.summary
        )

    async def wait_for_resume(
        self, shard_id: int | None = None, timeout: float = 10.0
    ) -> GatewayEvent:
        """A successful RESUME after the last drop_connection/send_reconnect/invalidate."""
        return await self.wait_for_gateway_event(
            "resume", shard_id=shard_id, since=self._gateway.marker, timeout=timeout
        )

    async def wait_for_identify(
        self, shard_id: int | None = None, timeout: float = 10.0
    ) -> GatewayEvent:
        """An IDENTIFY after the last drop_connection/send_reconnect/invalidate."""
        return await self.wait_for_gateway_event(
            "identify", shard_id=shard_id, since=self._gateway.marker, timeout=timeout
        )

    async def wait_for_commands_synced(
        self, *names: str, guild_id: int | None = None, timeout: float = 10.0
    ) -> list[Json]:
        """Commands once a sync stored all ``names``: in ``guild_id``'s scope if given, else in
        whichever scope (global or any guild) has them all."""

        def check() -> list[Json] | None:
            scopes: Iterable[int | None] = [guild_id] if guild_id is not None else self.commands
            for scope in scopes:
                if scope not in self.commands:
                    continue
                if not any(s == scope for s, _ in self.command_syncs):
                    continue
                have = {c["name"] for c in self.commands[scope]}
                if set(names) <= have:
                    return list(self.commands[scope])
            return None

        return await self.clock.wait(
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

        return await self.clock.wait(
            check,
            timeout,
            f"a message in channel {channel_id}" + (" matching the predicate" if predicate else ""),
            lambda: self.channel_summary(channel_id),
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
        pattern = route_regex(route)

        def check() -> RecordedRequest | None:
            for r in self.requests[since:]:
                if r.status and pattern.match(f"{r.method} {r.path}"):
                    return r
            return None

        return await self.clock.wait(check, timeout, f"a request {route}")

    # ---- queries --------------------------------------------------------------------------

    def requests_to(self, route: str) -> list[RecordedRequest]:
        """Recorded requests matching ``"METHOD /path/{placeholder}"``."""
        pattern = route_regex(route)
        return [r for r in self.requests if pattern.match(f"{r.method} {r.path}")]

    def threads_of(self, channel_id: int) -> list[Json]:
        """The threads started in ``channel_id``, oldest first."""
        found = self.find_channel(channel_id)
        if found is None or found[1] is None:
            raise FakeDiscordError(f"no guild channel {channel_id}")
        return [t for t in found[1].threads() if t["parent_id"] == str(channel_id)]

    def global_commands(self) -> list[Json]:
        return list(self.commands.get(None, []))

    def guild_commands(self, guild_id: int) -> list[Json]:
        return list(self.commands.get(guild_id, []))

    def command(self, name: str, guild_id: int | None = None) -> Json:
        """A synced command as stored (guild scope first, then global)."""
        found = find_command(self, name, guild_id)
        if found is None:
            raise FakeDiscordError(no_command_message(self, name, guild_id))
        return found

    def interaction(self, interaction_id: int) -> FakeInteraction:
        return self.interaction_by_id[interaction_id]

    @property
    def interactions(self) -> list[FakeInteraction]:
        return list(self.interaction_by_id.values())
