"""Getting updates: ``getUpdates`` long polling (offsets, ``allowed_updates``, the 409 for a
superseded poll) and the webhook methods that compete with it."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.fakes.telegram.protocol import ApiError, Params
from tests.fakes.telegram.state import DEFAULT_UPDATE_TYPES, World

GETUPDATES_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
    "running"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)


async def get_updates(world: World, params: Params) -> list[dict[str, Any]]:
    if world.webhook_url:
        raise ApiError(409, WEBHOOK_CONFLICT)
    offset = params.get_int("offset", 0) or 0
    limit = min(max(params.get_int("limit", 100) or 100, 1), 100)
    timeout = max(params.get_int("timeout", 0) or 0, 0)
    allowed = params.get_json("allowed_updates", "allowed updates")
    if isinstance(allowed, list):
        world.allowed_updates = frozenset(allowed) or DEFAULT_UPDATE_TYPES
    _confirm(world, offset)
    # A newer getUpdates ends the older one with 409, as Telegram does.
    world.poll_generation += 1
    generation = world.poll_generation
    world.touch()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        changed = world.changed
        world.updates = [u for u in world.updates if u.kind in world.allowed_updates]
        if world.updates:
            batch = world.updates[:limit]
            return [{"update_id": u.update_id, u.kind: u.payload} for u in batch]
        if generation != world.poll_generation:
            raise ApiError(409, GETUPDATES_CONFLICT)
        remaining = deadline - loop.time()
        if world.closing.is_set() or remaining <= 0:
            return []
        try:
            await asyncio.wait_for(changed.wait(), remaining)
        except TimeoutError:
            pass


def _confirm(world: World, offset: int) -> None:
    if offset < 0:  # the last -offset updates only; everything before is forgotten
        world.updates = world.updates[offset:]
    elif offset:
        world.updates = [u for u in world.updates if u.update_id >= offset]


def delete_webhook(world: World, params: Params) -> bool:
    return _set_webhook_url(world, params, "")


def set_webhook(world: World, params: Params) -> bool:
    return _set_webhook_url(world, params, params.get_str("url") or "")


def _set_webhook_url(world: World, params: Params, url: str) -> bool:
    world.webhook_url = url
    if params.get_bool("drop_pending_updates"):
        world.updates.clear()
    return True


def get_webhook_info(world: World, params: Params) -> dict[str, Any]:
    return {
        "url": world.webhook_url,
        "has_custom_certificate": False,
        "pending_update_count": len(world.updates),
    }
