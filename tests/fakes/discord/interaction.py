"""One interaction the fake sent to the bot (slash command, button, autocomplete, modal submit),
with every answer the bot gave it and waits on them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.protocol import Json
from tests.fakes.discord.records import RecordedMessage, Rejection

if TYPE_CHECKING:
    from tests.fakes.discord.state import State


@dataclass(eq=False)
class FakeInteraction:
    """One interaction the fake sent to the bot, and everything the bot did with it."""

    state: State = field(repr=False)
    id: int
    token: str = field(repr=False)
    type: int  # 2 command, 3 component, 4 autocomplete, 5 modal submit
    guild_id: int | None
    channel_id: int
    user_id: int
    payload: Json = field(repr=False)  # the INTERACTION_CREATE ``d``
    created_at: float  # nominal
    source_message_id: int | None = None  # the message a component (or its modal) was on
    parent: FakeInteraction | None = field(default=None, repr=False)  # modal submit → opener
    responses: list[Json] = field(default_factory=list)  # accepted callbacks {type, data, files}
    rejections: list[Rejection] = field(default_factory=list)
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal_submitted: bool = False
    _defer_pending: bool = field(default=False, repr=False)

    @property
    def response_type(self) -> int | None:
        return self.responses[0]["type"] if self.responses else None

    @property
    def acknowledged(self) -> bool:
        return bool(self.responses)

    @property
    def deferred(self) -> bool:
        return self.response_type in (5, 6)

    @property
    def modal(self) -> Json | None:
        """The modal the bot answered with (response type 9), as sent."""
        for r in self.responses:
            if r["type"] == 9:
                return dict(r["data"])
        return None

    @property
    def autocomplete_choices(self) -> list[Json] | None:
        for r in self.responses:
            if r["type"] == 8:
                return list(r["data"].get("choices", []))
        return None

    @property
    def original(self) -> RecordedMessage | None:
        """The current ``@original`` message (None before a response that makes one)."""
        return self.state.messages.get(self.original_id) if self.original_id else None

    @property
    def followups(self) -> list[RecordedMessage]:
        """Messages the bot's follow-ups produced. After a type-5 defer the first one *is*
        ``original`` (Discord fills the "thinking" message instead of posting a new one)."""
        return [self.state.messages[i] for i in self.followup_ids]

    @property
    def response_deadline(self) -> float:
        return self.created_at + self.state.interaction_response_window

    @property
    def token_expires_at(self) -> float:
        return self.created_at + self.state.interaction_token_ttl

    def summary(self) -> str:
        lines = [f"interaction {self.id} type={self.type} user={self.user_id}"]
        lines.append(f"  responses: {[r['type'] for r in self.responses]}")
        if self.original:
            lines.append(f"  original: {self.original.summary()}")
        for m in self.followups:
            lines.append(f"  followup: {m.summary()}")
        for r in self.rejections:
            lines.append(f"  rejected: {r.route} -> {r.status} {r.code} {r.message}")
        return "\n".join(lines)

    async def wait_for_response(self, timeout: float = 10.0) -> Json:
        """The first accepted callback ({type, data, files})."""
        return await self.state.clock.wait(
            lambda: self.responses[0] if self.responses else None,
            timeout,
            f"a response to interaction {self.id}",
            self.summary,
        )

    async def wait_for_original(
        self, predicate: Callable[[RecordedMessage], Any] | None = None, timeout: float = 10.0
    ) -> RecordedMessage:
        """``@original`` once it exists and (judged on its current state) satisfies predicate."""

        def check() -> RecordedMessage | None:
            m = self.original
            if m is not None and (predicate is None or predicate(m)):
                return m
            return None

        return await self.state.clock.wait(
            check,
            timeout,
            f"@original of interaction {self.id}"
            + (" matching the predicate" if predicate else ""),
            self.summary,
        )

    async def wait_for_followup(
        self, predicate: Callable[[RecordedMessage], Any] | None = None, timeout: float = 10.0
    ) -> RecordedMessage:
        def check() -> RecordedMessage | None:
            for m in self.followups:
                if predicate is None or predicate(m):
                    return m
            return None

        return await self.state.clock.wait(
            check, timeout, f"a follow-up of interaction {self.id}", self.summary
        )

    async def wait_for_modal(self, timeout: float = 10.0) -> Json:
        return await self.state.clock.wait(
            lambda: self.modal, timeout, f"a modal answering interaction {self.id}", self.summary
        )

    async def wait_for_rejection(self, code: int | None = None, timeout: float = 10.0) -> Rejection:
        def check() -> Rejection | None:
            for r in self.rejections:
                if code is None or r.code == code:
                    return r
            return None

        return await self.state.clock.wait(
            check, timeout, f"a rejected call (code {code}) on interaction {self.id}", self.summary
        )

    async def wait_until_response_deadline_passed(self, timeout: float = 30.0) -> None:
        """Block until the fake's clock is past the 3 s (nominal) deadline."""
        await self.state.clock.wait_until(self.response_deadline + 1e-3, timeout)


# --------------------------------------------------------------------------------------------
# Faults
