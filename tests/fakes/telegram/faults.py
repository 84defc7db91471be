"""Scripted faults: ``tg.faults.add("sendAudio", status=429, retry_after=7)`` makes the next
call of a method misbehave (fail, stall, or be carried out and then lose its answer), and the
error each one answers with, as Telegram's front end would give it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web

from tests.fakes.telegram.protocol import ApiError


@dataclass
class Fault:
    """A scripted misbehaviour; see ``FaultPlan.add``. ``hits`` counts how often it fired."""

    method: str | None
    status: int | None
    retry_after: int | None
    description: str | None
    delay: float
    times: int | None
    chat_id: int | None
    processed: bool
    hits: int = 0

    def matches(self, method: str, chat_id: int | None) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id


class FaultPlan:
    """Scripted faults, consulted in the order they were added (first match fires)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        method: str | None = None,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        description: str | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        chat_id: int | None = None,
        processed: bool = False,
    ) -> Fault:
        """Make the next ``times`` calls of ``method`` (any method when None) misbehave.

        status: answer with this HTTP status instead (429 carries ``retry_after``, default 1;
            502/504 come back as nginx's HTML page, like the real front end; others as JSON).
        delay: real seconds to stall before answering (not scaled: meant to trip client
            timeouts).
        processed: carry the request out first (the message really is sent) and only then
            stall/fail - a response lost on the way back.
        times: how many calls to affect; None for every call.
        chat_id: only calls for this chat.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = Fault(method, status, retry_after, description, delay, times, chat_id, processed)
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str, chat_id: int | None) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, chat_id):
                fault.hits += 1
                return fault
        return None

    def __iter__(self) -> Iterator[Fault]:
        return iter(list(self._faults))

    def __len__(self) -> int:
        return len(self._faults)


_DEFAULT_DESCRIPTIONS = {500: "Internal Server Error", 400: "Bad Request", 403: "Forbidden"}
_GATEWAY_PHRASES = {502: "Bad Gateway", 504: "Gateway Time-out"}


def gateway_page(fault: Fault) -> tuple[str, web.Response] | None:
    """(phrase, page): Telegram's nginx front end answers 502/504 with an HTML page, not
    JSON (unless the fault gives a description, which needs the JSON body)."""
    status = fault.status or 500
    phrase = _GATEWAY_PHRASES.get(status)
    if phrase is None or fault.description is not None:
        return None
    page = web.Response(
        status=status,
        text=f"<html><head><title>{status} {phrase}</title></head><body><center>"
        f"<h1>{status} {phrase}</h1></center><hr><center>nginx</center></body></html>",
        content_type="text/html",
    )
    return phrase, page


def fault_error(fault: Fault) -> ApiError:
    """The JSON error a fault answers with (429s carry ``retry_after``)."""
    status = fault.status or 500
    if status == 429:
        return ApiError(
            429,
            fault.description or f"Too Many Requests: retry after {fault.retry_after}",
            {"retry_after": fault.retry_after},
        )
    return ApiError(status, fault.description or _DEFAULT_DESCRIPTIONS.get(status, "Error"))
