"""Chats and their members: ``getChat``, ``getChatMember`` and ``getChatAdministrators``."""

from __future__ import annotations

from typing import Any

from tests.fakes.telegram.protocol import Params, bad
from tests.fakes.telegram.records import FakeChat
from tests.fakes.telegram.state import World

_ADMIN_RIGHTS = {  # what an admin may do here: the rights a typical group admin holds
    "can_be_edited": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_pin_messages": True,
}


def get_chat(world: World, params: Params) -> dict[str, Any]:
    chat = world.chat_of(params)
    return {
        **chat.to_api(),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }


def get_chat_member(world: World, params: Params) -> dict[str, Any]:
    chat = world.chat_of(params)
    return _member(world, chat, params.required_int("user_id", "user_id is empty"))


def get_chat_administrators(world: World, params: Params) -> list[dict[str, Any]]:
    chat = world.chat_of(params)
    if not chat.is_group:
        raise bad("there are no administrators in the private chat")
    ids = list(world.admins.get(chat.id, set()))
    owner = world.owners.get(chat.id)
    if owner is not None and owner not in ids:
        ids.insert(0, owner)
    return [_member(world, chat, user_id) for user_id in ids if user_id in world.users]


def _member(world: World, chat: FakeChat, user_id: int) -> dict[str, Any]:
    user = world.users.get(user_id)
    if user is None:
        raise bad("user not found")
    if world.owners.get(chat.id) == user_id:
        return {"status": "creator", "user": user.to_api(), "is_anonymous": False}
    if world.is_admin(chat.id, user_id):
        return {
            "status": "administrator",
            "user": user.to_api(),
            "is_anonymous": user_id in world.anonymous.get(chat.id, set()),
            **_ADMIN_RIGHTS,
        }
    in_chat = (
        user_id in (chat.id, world.bot_id)
        if not chat.is_group
        else user_id == world.bot_id or user_id in world.members[chat.id]
    )
    return {"status": "member" if in_chat else "left", "user": user.to_api()}
