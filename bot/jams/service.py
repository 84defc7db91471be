"""`JamService`: community jams, reached by the adapters as ``service.jams`` (docs/jams.md).

Every method answers with a value or :class:`~bot.service.Refused` (never raises for what a
user typed); the sentences are in :mod:`bot.jams.texts`, the same on both platforms. Who
may do what:

- anyone in the place (not blocked there): start a jam where none is open, add words while
  it collects, vote (one vote per member and round, changeable), stats, the board link;
- a contribution's author, the host or an admin: remove it (this round's, while collecting);
- the host or an admin: render, close, next round, revoke the board link.

State changes are compare-and-set in the store (:class:`bot.stores.JamStore`): two presses,
or two processes, never act twice. What the clock (:mod:`bot.jams.clock`) does, and every
contribution, is told to the listeners of the jam's platform as :class:`JamNews`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot import quotas
from bot.clock import utcnow
from bot.domain import EVERYWHERE, Destination
from bot.jams import texts
from bot.jams.model import (
    DEFAULT_COLLECT_MINUTES,
    DEFAULT_TAKES,
    DEFAULT_VOTE_MINUTES,
    MAX_MINUTES,
    VOTABLE_STATES,
    Added,
    Contribution,
    Jam,
    JamChanged,
    JamNews,
    JamNewsKind,
    JamState,
    JamStats,
    JamTakeRef,
    NewJam,
    Part,
    Voted,
    room,
    words_for,
)
from bot.jams.ports import JamListener
from bot.jams.rounds import Rounds

if TYPE_CHECKING:
    from bot.service import GenerationService, Refused, Requester
    from bot.stores import JamStore, RulesStore

logger = logging.getLogger(__name__)


def _refused(message: str, code: str) -> Refused:
    from bot.service import Refused

    return Refused(message, code)


class JamService:
    def __init__(
        self,
        service: GenerationService,
        store: JamStore,
        rules: RulesStore,
        *,
        public_url: str | None = None,  # PUBLIC_URL: None (or empty) switches the board off
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._service = service
        self._store = store
        self._rules = rules
        self._public_url = (public_url or "").rstrip("/") or None
        self._now = now
        self._listeners: list[JamListener] = []
        self._wakers: list[Callable[[], None]] = []

    @property
    def store(self) -> JamStore:
        return self._store

    @property
    def now(self) -> Callable[[], datetime]:
        return self._now

    @property
    def service(self) -> GenerationService:
        return self._service

    def register_listener(self, listener: JamListener) -> None:
        self._listeners.append(listener)

    def on_change(self, wake: Callable[[], None]) -> None:
        """The clock's: called when a jam got a deadline or a take (it looks again)."""
        self._wakers.append(wake)

    def wake(self) -> None:
        for wake in self._wakers:
            wake()

    async def tell(self, kind: JamNewsKind, jam: Jam, message: str) -> None:
        """Best effort: a chat that can't show the news must not stop the jam."""
        for listener in list(self._listeners):
            if listener.platform != jam.platform:
                continue
            try:
                await listener.on_jam(JamNews(kind, jam, message))
            except Exception:
                logger.exception("jam %s: %s news not shown on %s", jam.id, kind, jam.platform)

    # ------------------------------------------------------------ reads
    async def get(self, jam_id: int) -> Jam | None:
        return await self._store.get_jam(jam_id)

    async def jam_at(self, platform: str, chat_id: str) -> Jam | None:
        return await self._store.jam_at(platform, chat_id)

    async def by_token(self, token: str) -> Jam | None:
        if not token:
            return None
        return await self._store.jam_by_token(token)

    async def take_of(self, job_id: int) -> JamTakeRef | None:
        return await self._store.take_of(job_id)

    async def stats(self, platform: str, scope_id: str) -> JamStats:
        return await self._store.jam_stats(platform, scope_id)

    # ------------------------------------------------------------ who may
    @staticmethod
    def runs(requester: Requester, jam: Jam) -> bool:
        """The host, or an admin of the jam's guild or chat."""
        if requester.platform != jam.platform:
            return False
        admin = requester.is_admin and requester.admin_scope in (EVERYWHERE, jam.scope_id)
        return requester.user_id == jam.host_id or admin

    async def _words_blocked(self, requester: Requester, scope_id: str, text: str) -> str | None:
        """Why ``requester`` may not write ``text`` in that scope, or None."""
        chat, overrides = await self._rules.rules_for(
            requester.platform, requester.user_id, scope_id
        )
        if quotas.is_blocked(overrides, scope_id):
            return texts.BLOCKED_USER
        words = (*self._service.blocked_words, *(chat.blocked_words if chat else ()))
        if quotas.blocked_word(text, words) is not None:
            return texts.BLOCKED_WORD
        return None

    # ------------------------------------------------------------ commands
    async def start(
        self,
        requester: Requester,
        where: Destination,
        theme: str,
        *,
        takes: int | None = None,
        minutes: int | None = None,
        vote_minutes: int | None = None,
    ) -> JamChanged | Refused:
        theme = " ".join(theme.split())
        if not theme:
            return _refused(texts.EMPTY_THEME, "invalid")
        most = self._service.limits.max_takes
        takes = min(DEFAULT_TAKES, most) if takes is None else takes
        if not 1 <= takes <= most:
            return _refused(texts.bad_takes(most), "invalid")
        minutes = DEFAULT_COLLECT_MINUTES if minutes is None else minutes
        vote_minutes = DEFAULT_VOTE_MINUTES if vote_minutes is None else vote_minutes
        if not 1 <= minutes <= MAX_MINUTES:
            return _refused(texts.bad_minutes("collecting"), "invalid")
        if not 1 <= vote_minutes <= MAX_MINUTES:
            return _refused(texts.bad_minutes("voting"), "invalid")
        limits = self._service.limits
        if len(theme) > limits.max_tags_chars:
            return _refused(
                texts.too_long(Part.TAG, len(theme), limits.max_tags_chars, 0), "too_long"
            )
        blocked = await self._words_blocked(requester, where.scope, theme)
        if blocked is not None:
            return _refused(blocked, "blocked")
        rules = await self._service.chat_rules(where.platform, where.scope)
        if rules.allowed_channels and where.chat_id not in rules.allowed_channels:
            if not requester.is_admin:
                return _refused(
                    "Jams aren't held in this channel; try the music channel.", "channel"
                )
        now = self._now()
        new = NewJam(
            platform=where.platform,
            chat_id=where.chat_id,
            scope_id=where.scope,
            host_id=requester.user_id,
            host_name=requester.display_name,
            theme=theme,
            takes=takes,
            collect_minutes=minutes,
            vote_minutes=vote_minutes,
            token=secrets.token_urlsafe(24),
            context=dict(where.context),
        )
        jam = await self._store.create_jam(
            new, now=now, collect_ends_at=now + timedelta(minutes=minutes)
        )
        if jam is None:
            existing = await self._store.jam_at(where.platform, where.chat_id)
            return _refused(texts.open_here(existing) if existing else texts.NO_JAM, "open_jam")
        logger.info("jam %s started by %s:%s", jam.id, jam.platform, jam.host_id)
        self.wake()
        return JamChanged(jam, texts.started(jam))

    async def move(self, jam_id: int, chat_id: str, context: dict[str, Any]) -> Jam | None:
        """The jam lives in ``chat_id`` from now on (Discord: the thread made for it)."""
        return await self._store.update_jam(
            jam_id, now=self._now(), chat_id=chat_id, context=context
        )

    async def set_context(self, jam_id: int, **patch: Any) -> Jam | None:
        return await self._store.update_jam(jam_id, now=self._now(), context=patch)

    async def add(
        self, requester: Requester, jam_id: int, part: Part, text: str
    ) -> Added | Refused:
        text = " ".join(text.split()) if part == Part.TAG else _lines(text)
        if not text:
            return _refused(texts.EMPTY_TEXT, "invalid")
        jam = await self._store.get_jam(jam_id)
        if jam is None or jam.platform != requester.platform:
            return _refused(texts.NOT_FOUND, "not_found")
        blocked = await self._words_blocked(requester, jam.scope_id, text)
        if blocked is not None:
            return _refused(blocked, "blocked")
        limits = self._service.limits

        def fits(jam: Jam, added: Contribution) -> str | None:
            if jam.state != JamState.COLLECTING:
                return texts.not_collecting(jam)
            before = replace(
                jam, contributions=tuple(c for c in jam.contributions if c.number != added.number)
            )
            extended = jam.current.extended
            left = room(
                words_for(before, jam.round, extended=extended),
                max_tags=limits.max_tags_chars,
                max_lyrics=limits.max_lyrics_chars,
            )
            words = words_for(jam, jam.round, extended=extended)
            if part == Part.TAG and len(words.tags) > limits.max_tags_chars:
                return texts.too_long(part, len(words.tags), limits.max_tags_chars, left.tags_left)
            if part == Part.LINE and len(words.lyrics) > limits.max_lyrics_chars:
                return texts.too_long(
                    part, len(words.lyrics), limits.max_lyrics_chars, left.lyrics_left
                )
            return None

        outcome = await self._store.add_contribution(
            jam_id,
            part=part,
            text=text,
            author_id=requester.user_id,
            author_name=requester.display_name,
            now=self._now(),
            check=fits,
        )
        if outcome is None:
            return _refused(texts.NOT_FOUND, "not_found")
        if isinstance(outcome, str):
            return _refused(outcome, "jam_state" if "isn't taking" in outcome else "too_long")
        jam, contribution = outcome
        left = room(
            words_for(jam, jam.round, extended=jam.current.extended),
            max_tags=limits.max_tags_chars,
            max_lyrics=limits.max_lyrics_chars,
        )
        message = texts.added(contribution, left.tags_left, left.lyrics_left)
        await self.tell(JamNewsKind.CHANGED, jam, message)
        return Added(jam, contribution, left.tags_left, left.lyrics_left, message)

    async def remove(self, requester: Requester, jam_id: int, number: int) -> JamChanged | Refused:
        jam = await self._store.get_jam(jam_id)
        if jam is None or jam.platform != requester.platform:
            return _refused(texts.NOT_FOUND, "not_found")
        runs = self.runs(requester, jam)

        def may(jam: Jam, c: Contribution) -> str | None:
            if jam.state != JamState.COLLECTING:
                return texts.not_collecting(jam)
            if c.round != jam.round or c.removed:
                return texts.no_contribution(number)
            if c.author_id != requester.user_id and not runs:
                return texts.REMOVE_WHO
            return None

        outcome = await self._store.remove_contribution(jam_id, number, now=self._now(), check=may)
        if outcome is None:
            return _refused(texts.no_contribution(number), "not_found")
        if isinstance(outcome, str):
            return _refused(outcome, "forbidden" if outcome == texts.REMOVE_WHO else "jam_state")
        message = texts.removed(number)
        await self.tell(JamNewsKind.CHANGED, outcome, message)
        return JamChanged(outcome, message)

    # Rounds: render, close, next (bot/jams/rounds.py holds the transitions).
    async def render(self, requester: Requester | None, jam_id: int) -> JamChanged | Refused:
        """Collecting → rendering, and the takes queued (None: the clock, time is up)."""
        return await Rounds(self).render(requester, jam_id)

    async def close(self, requester: Requester | None, jam_id: int) -> JamChanged | Refused:
        """Voting → closed with its winner (None: the clock, voting time is up)."""
        return await Rounds(self).close(requester, jam_id)

    async def next_round(self, requester: Requester, jam_id: int) -> JamChanged | Refused:
        return await Rounds(self).next_round(requester, jam_id)

    async def vote(
        self, requester: Requester, jam_id: int, round: int, take: int
    ) -> Voted | Refused:
        jam = await self._store.get_jam(jam_id)
        if jam is None or jam.platform != requester.platform:
            return _refused(texts.NOT_FOUND, "not_found")

        def may(jam: Jam) -> str | None:
            if round != jam.round or jam.state not in VOTABLE_STATES:
                return texts.vote_closed(jam)
            found = jam.current.take(take)
            # Made: its track is posted, or being posted (the button may be pressed
            # before the job is marked delivered).
            if found is None or not found.made:
                return texts.no_take(round, take)
            return None

        outcome = await self._store.vote(
            jam_id, round, take, requester.user_id, now=self._now(), check=may
        )
        if outcome is None:
            return _refused(texts.NOT_FOUND, "not_found")
        if isinstance(outcome, str):
            return _refused(
                outcome, "vote_closed" if outcome == texts.vote_closed(jam) else "not_found"
            )
        voted, changed = outcome
        return Voted(voted, take, changed, texts.voted(take, changed))

    async def board_url(self, requester: Requester, jam_id: int) -> str | Refused:
        if self._public_url is None:
            return _refused(texts.BOARD_OFF, "board_off")
        jam = await self._store.get_jam(jam_id)
        if jam is None or jam.platform != requester.platform:
            return _refused(texts.NOT_FOUND, "not_found")
        token = jam.token
        if token is None:
            made = await self._store.update_jam(
                jam.id, now=self._now(), token=secrets.token_urlsafe(24)
            )
            token = made.token if made is not None else None
        if token is None:
            return _refused(texts.NOT_FOUND, "not_found")
        return f"{self._public_url}/jam/{token}"

    async def revoke_board(self, requester: Requester, jam_id: int) -> JamChanged | Refused:
        jam = await self._store.get_jam(jam_id)
        if jam is None or jam.platform != requester.platform:
            return _refused(texts.NOT_FOUND, "not_found")
        if not self.runs(requester, jam):
            return _refused(texts.HOST_ONLY, "forbidden")
        revoked = await self._store.update_jam(jam.id, now=self._now(), revoke_token=True)
        if revoked is None:
            return _refused(texts.NOT_FOUND, "not_found")
        return JamChanged(revoked, texts.BOARD_REVOKED)


def _lines(text: str) -> str:
    """Lyric lines as typed: each line's spaces tidied, blank lines dropped."""
    lines = (" ".join(line.split()) for line in text.replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line)
