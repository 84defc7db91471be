"""Telegram's faults in the common fault model (``tests/fakes/common/faults.py``, whose
docstring gives the counting and the order a fault is applied in)::

    tg.faults.add("sendAudio", status=429, retry_after=7)       # the next sendAudio: flood wait
    tg.faults.add("sendMessage", status=502)                    # nginx's HTML page, not sent
    tg.faults.add("sendMessage", status=502, processed=True)    # sent, then the 502
    tg.faults.add("sendMessage", delay_response=0.3)            # sent, answered 0.3 s late
    tg.faults.add("getChatAdministrators", status=500, message="Internal error", times=2)
    tg.faults.add("sendMessage", status=403, about=chat.id)     # only requests for that chat

Routes are Bot API method names, matched case-insensitively as Telegram does ("*": any);
``about`` is a chat id. A status fault answers with Telegram's JSON error (429s carry
``retry_after``, 1 unless given), or nginx's HTML page for 502/504 without a ``message``.
"""

from __future__ import annotations

from aiohttp import web

from tests.fakes.common import ANY_ROUTE, Fault, FaultPlan
from tests.fakes.telegram.protocol import ApiError

_DEFAULT_DESCRIPTIONS = {500: "Internal Server Error", 400: "Bad Request", 403: "Forbidden"}
_GATEWAY_PHRASES = {502: "Bad Gateway", 504: "Gateway Time-out"}


def same_method(pattern: str, method: str) -> bool:
    return pattern == ANY_ROUTE or pattern.lower() == method.lower()


def fault_plan() -> FaultPlan[Fault]:
    return FaultPlan(Fault, match=same_method)


def gateway_page(fault: Fault) -> tuple[str, web.Response] | None:
    """(phrase, page): Telegram's nginx front end answers 502/504 with an HTML page, not
    JSON (unless the fault gives a message, which needs the JSON body)."""
    status = fault.status or 500
    phrase = _GATEWAY_PHRASES.get(status)
    if phrase is None or fault.message is not None:
        return None
    page = web.Response(
        status=status,
        text=f"<html><head><title>{status} {phrase}</title></head><body><center>"
        f"<h1>{status} {phrase}</h1></center><hr><center>nginx</center></body></html>",
        content_type="text/html",
    )
    return phrase, page


def fault_error(fault: Fault) -> ApiError:
    """The JSON error a status fault answers with."""
    status = fault.status or 500
    if status == 429:
        retry_after = 1 if fault.retry_after is None else fault.retry_after
        return ApiError(
            429,
            fault.message or f"Too Many Requests: retry after {retry_after}",
            {"retry_after": retry_after},
        )
    return ApiError(status, fault.message or _DEFAULT_DESCRIPTIONS.get(status, "Error"))


def malformed_answer() -> web.Response:
    """A 200 the client can't parse: a proxy's page where JSON should be."""
    return web.Response(text="<html><body>OK</body></html>", content_type="text/html")
