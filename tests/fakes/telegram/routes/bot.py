"""The bot itself: ``getMe`` and its command lists per scope and language."""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.telegram.protocol import Params, bad
from tests.fakes.telegram.state import World

_COMMAND_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")


def get_me(world: World, params: Params) -> dict[str, Any]:
    return {
        **world.bot_user.to_api(),
        "can_join_groups": True,
        "can_read_all_group_messages": not world.privacy_mode,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


def _scope_key(params: Params) -> tuple[str, str]:
    """The key ``commands`` are kept under: the scope ("default", "chat:<id>", ...) and the
    language code."""
    scope = params.get_json("scope", "BotCommandScope") or {"type": "default"}
    kind = scope.get("type") if isinstance(scope, dict) else None
    if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
        key = str(kind)
    elif kind in ("chat", "chat_administrators"):
        key = f"{kind}:{scope.get('chat_id')}"
    elif kind == "chat_member":
        key = f"chat_member:{scope.get('chat_id')}:{scope.get('user_id')}"
    else:
        raise bad("can't parse BotCommandScope JSON object")
    return key, params.get_str("language_code") or ""


def set_my_commands(world: World, params: Params) -> bool:
    commands = params.get_json("commands", "commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad("can't parse commands JSON object")
    parsed = []
    for command in commands:
        name = command.get("command") if isinstance(command, dict) else None
        description = command.get("description") if isinstance(command, dict) else None
        if not isinstance(name, str) or not _COMMAND_NAME_RE.fullmatch(name):
            raise bad("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description) <= 256:
            raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        parsed.append((name, description))
    world.commands[_scope_key(params)] = parsed
    world.touch()
    return True


def get_my_commands(world: World, params: Params) -> list[dict[str, str]]:
    return [
        {"command": name, "description": description}
        for name, description in world.commands.get(_scope_key(params), [])
    ]


def delete_my_commands(world: World, params: Params) -> bool:
    world.commands.pop(_scope_key(params), None)
    world.touch()
    return True
