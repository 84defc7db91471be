"""What users do: run slash commands, type into autocomplete, click buttons, pick from selects,
submit modals, write messages. Each becomes an INTERACTION_CREATE (or MESSAGE_CREATE) on the
gateway, after the checks Discord's client would make."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.interaction import FakeInteraction
from tests.fakes.discord.messages import Messages
from tests.fakes.discord.options import Options
from tests.fakes.discord.payloads import member_payload, message_payload, user_payload
from tests.fakes.discord.protocol import FakeDiscordError, Json, Perm
from tests.fakes.discord.records import RecordedComponent, RecordedMessage
from tests.fakes.discord.routes.commands import find_command, no_command_message
from tests.fakes.discord.state import State
from tests.fakes.discord.validation import modal_submission


class Actions:
    def __init__(self, state: State, gateway: Gateway, messages: Messages) -> None:
        self.state = state
        self.gateway = gateway
        self.messages = messages
        self.options = Options(state, messages)

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
        cmd = find_command(self.state, parts[0], guild_id)
        if cmd is None:
            raise FakeDiscordError(no_command_message(self.state, parts[0], guild_id))
        if respect_visibility:
            self.options.check_visible(cmd, guild_id, channel_id, user_id)
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
            self.options.build(defs, dict(options or {}), guild_id, channel_id, resolved, name)
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
        cmd = find_command(self.state, name, guild_id)
        if cmd is None:
            raise FakeDiscordError(no_command_message(self.state, name, guild_id))
        defs = cmd.get("options") or []
        target = next((o for o in defs if o["name"] == focused), None)
        if target is None or not target.get("autocomplete"):
            raise FakeDiscordError(f"option {focused!r} of /{name} has no autocomplete")
        given = {k: v for k, v in (options or {}).items() if k != focused}
        built = self.options.build(
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
        components = modal_submission(modal.get("components") or [], values)
        if values:
            raise FakeDiscordError(f"the modal has no inputs {sorted(values)}")
        interaction.modal_submitted = True
        source = (
            self.state.messages.get(interaction.source_message_id)
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
        found = self.state.find_channel(channel_id)
        if found is None:
            raise FakeDiscordError(f"no channel {channel_id}")
        _, guild = found
        msg = self.messages.new(
            channel_id, guild.id if guild else None, user_id, "user", {"content": content}, []
        )
        await self.messages.emit("MESSAGE_CREATE", msg)
        await self.state.clock.notify()
        return msg

    def _component(
        self, message_id: int, custom_id: str, user_id: int
    ) -> tuple[RecordedMessage, RecordedComponent]:
        msg = self.state.message(message_id)
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
        session = self.gateway.session_for(guild_id, required=True)
        assert session is not None
        if user_id not in self.state.users:
            raise FakeDiscordError(f"no user {user_id}; add it with dc.add_user()")
        iid = self.state.snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(64)
        payload: Json = {
            "id": str(iid),
            "application_id": str(self.state.application_id),
            "type": type_,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "attachment_size_limit": self.state.filesize_limit(guild_id),
            "channel_id": str(channel_id),
        }
        if guild_id:
            guild = self.state.guild(guild_id)
            if user_id not in guild.members:
                raise FakeDiscordError(f"user {user_id} is not a member of guild {guild_id}")
            if channel_id not in guild.channels:
                raise FakeDiscordError(f"guild {guild_id} has no channel {channel_id}")
            channel = dict(guild.channels[channel_id])
            channel["permissions"] = str(self.state.permissions(guild_id, user_id, channel_id))
            payload.update(
                guild_id=str(guild_id),
                guild={
                    "id": str(guild_id),
                    "locale": guild.preferred_locale,
                    "features": list(guild.features),
                },
                guild_locale=guild.preferred_locale,
                member=member_payload(self.state, guild, user_id, channel_id=channel_id),
                app_permissions=str(
                    self.state.permissions(guild_id, self.state.bot_user_id, channel_id)
                ),
                authorizing_integration_owners={"0": str(guild_id)},
                context=0,
                channel=channel,
            )
        else:
            dm = self.state.open_dm(channel_id, user_id)
            payload.update(
                user=user_payload(self.state, user_id),
                # What Discord resolves in a DM: no Send Messages bit, though the bot can
                # write in its own DM.
                app_permissions=str(Perm.DM_APP),
                authorizing_integration_owners={"0": "0"},
                context=1,
                channel=dict(dm),
            )
        if source is not None:
            payload["message"] = message_payload(self.state, source)
        inter = FakeInteraction(
            state=self.state,
            id=iid,
            token=token,
            type=type_,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            payload=payload,
            created_at=self.state.now(),
            source_message_id=source.id if source else None,
            parent=parent,
        )
        self.state.interaction_by_id[iid] = inter
        self.state.interaction_by_token[token] = inter
        await self.gateway.dispatch(session, "INTERACTION_CREATE", payload)
        await self.state.clock.notify()
        return inter

    # ---- gateway --------------------------------------------------------------------------
