"""Discord's JSON shapes for users, members, guilds, roles and messages, built from the state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.fakes.discord.protocol import Json, iso

if TYPE_CHECKING:
    from tests.fakes.discord.guild import FakeGuild
    from tests.fakes.discord.records import RecordedMessage
    from tests.fakes.discord.state import State


def user_payload(state: State, user_id: int) -> Json:
    return dict(state.users[user_id])


def member_payload(
    state: State,
    guild: FakeGuild,
    user_id: int,
    *,
    with_user: bool = True,
    channel_id: int | None = None,
) -> Json:
    member = {k: v for k, v in guild.members[user_id].items() if not k.startswith("_")}
    if with_user:
        member["user"] = user_payload(state, user_id)
    if channel_id is not None:
        member["permissions"] = str(state.permissions(guild.id, user_id, channel_id))
    return member


def guild_payload(state: State, g: FakeGuild) -> Json:
    return {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(g.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": list(g.roles.values()),
        "emojis": [],
        "stickers": [],
        "features": list(g.features),
        "mfa_level": 0,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "max_members": 500000,
        "vanity_url_code": None,
        "premium_tier": g.premium_tier,
        "premium_subscription_count": (0, 2, 7, 14)[min(g.premium_tier, 3)],
        "preferred_locale": g.preferred_locale,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
    }


def guild_create_payload(state: State, g: FakeGuild) -> Json:
    payload = guild_payload(state, g)
    payload.update(
        joined_at=iso(state.clock.wall()),
        large=False,
        unavailable=False,
        member_count=len(g.members),
        members=[member_payload(state, g, uid) for uid in g.members],
        channels=[dict(c) for c in g.listed_channels()],
        threads=[dict(c) for c in g.threads()],
        presences=[],
        voice_states=[],
        stage_instances=[],
        guild_scheduled_events=[],
        soundboard_sounds=[],
    )
    return payload


def message_payload(
    state: State, m: RecordedMessage, *, for_gateway: bool = False, depth: int = 0
) -> Json:
    pings = m.pings
    payload: Json = {
        "id": str(m.id),
        "channel_id": str(m.channel_id),
        "author": user_payload(state, m.author_id),
        "content": m.content,
        "timestamp": iso(m.created_wall),
        "edited_timestamp": iso(m.edited_wall) if m.edited_wall else None,
        "tts": m.tts,
        "mention_everyone": pings.everyone,
        "mentions": [user_payload(state, u) for u in sorted(pings.users) if u in state.users],
        "mention_roles": [str(r) for r in sorted(pings.roles)],
        "attachments": [a.payload() for a in m.attachments],
        "embeds": m.embeds,
        "pinned": False,
        "type": m.type,
        "flags": m.flags,
        "components": m.raw_components,
    }
    if m.nonce is not None:
        payload["nonce"] = m.nonce
    if m.guild_id and for_gateway:
        payload["guild_id"] = str(m.guild_id)
        guild = state.guilds.get(m.guild_id)
        if guild and m.author_id in guild.members:
            payload["member"] = member_payload(state, guild, m.author_id, with_user=False)
    if m.message_reference:
        payload["message_reference"] = m.message_reference
        ref = state.messages.get(int(m.message_reference.get("message_id", 0)))
        payload["referenced_message"] = (
            message_payload(state, ref, depth=depth + 1) if ref and depth == 0 else None
        )
    if m.interaction_id is not None:
        inter = state.interaction_by_id.get(m.interaction_id)
        payload["webhook_id"] = str(state.application_id)
        payload["application_id"] = str(state.application_id)
        if inter is not None:
            meta: Json = {
                "id": str(inter.id),
                "type": inter.type,
                "user": user_payload(state, inter.user_id),
                "authorizing_integration_owners": inter.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
            if inter.type == 2:
                meta["name"] = inter.payload["data"]["name"]
                meta["command_type"] = 1
            if m.id != inter.original_id and inter.original_id:
                meta["original_response_message_id"] = str(inter.original_id)
            payload["interaction_metadata"] = meta
    return payload


def me_payload(state: State) -> Json:
    me = user_payload(state, state.bot_user_id)
    me.update(verified=True, mfa_enabled=False, email=None, locale="en-US")
    return me


def role_payload(
    rid: int,
    name: str,
    permissions: int,
    *,
    position: int,
    managed: bool = False,
    bot_id: int | None = None,
) -> Json:
    role: Json = {
        "id": str(rid),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": managed,
        "mentionable": False,
        "flags": 0,
    }
    if bot_id is not None:
        role["tags"] = {"bot_id": str(bot_id)}
    return role


# --------------------------------------------------------------------------------------------
# Helpers: components, mentions, validation
