"""Callback queries: ``answerCallbackQuery``, once per query and only while it is fresh."""

from __future__ import annotations

from tests.fakes.telegram.protocol import Params, bad
from tests.fakes.telegram.records import CallbackAnswer
from tests.fakes.telegram.state import World

QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"


def answer_callback_query(world: World, params: Params) -> bool:
    query_id = params.get_str("callback_query_id") or ""
    query = world.queries.get(query_id)
    expired = (
        query is not None
        and world.callback_query_ttl is not None
        and (world.clock() - query.created) / world.time_scale > world.callback_query_ttl
    )
    if query is None or query.answered or expired:
        raise bad(QUERY_TOO_OLD)
    if len(params.get_str("text") or "") > 200:
        raise bad("MESSAGE_TOO_LONG")
    query.answered = True
    world.callback_answers[query_id] = CallbackAnswer(
        query_id,
        params.get_str("text"),
        params.get_bool("show_alert"),
        params.get_str("url"),
        params.get_int("cache_time"),
    )
    world.touch()
    return True
