"""REST routes by area. Each area is a small class over the shared state whose ``routes()``
lists ``(method, path template, handler, needs bot auth)``; templates use discord.py's
placeholder names so that ``RecordedRequest.route`` equals discord.py's ``Route.key``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.records import UploadedFile

if TYPE_CHECKING:
    from tests.fakes.discord.messages import Messages
    from tests.fakes.discord.state import State


@dataclass
class Req:
    method: str
    route: str
    params: dict[str, str]
    query: Mapping[str, str]
    json: Any
    files: list[UploadedFile]
    headers: Mapping[str, str]


Handler = Callable[[Req], Awaitable[tuple[int, Any]]]
Route = tuple[str, str, Handler, bool]


class RouteArea:
    """One REST area: its handlers over the shared state and message maker."""

    def __init__(self, state: State, messages: Messages) -> None:
        self.state = state
        self.messages = messages

    def routes(self) -> list[Route]:
        raise NotImplementedError
