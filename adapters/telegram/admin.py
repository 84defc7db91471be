"""``/admin``: a group's admins set its quotas and rules, see its queue and usage, stop songs.

Only the chat's admins may use it, checked on every call (:class:`ChatAdmins` remembers the
admin list for a minute; a refusal is checked against a list at most ``RECHECK_SECONDS`` old,
so someone just promoted doesn't wait a minute; an anonymous admin, writing as the group, is
one of them). Everything applies to this chat only: a
Telegram chat is its own scope. The rules themselves live in the core
(:class:`~bot.admin.AdminService`); this module parses what an admin typed and says what
changed; the values themselves are read by the core's grammar (`bot.admin_grammar`), the
same for the operator's ``acejam admin`` and Discord.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import Bot, BotCommand, Chat, Message, Update
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from adapters.telegram import admin_texts, keyboards, texts
from adapters.telegram.delivery import PLATFORM
from adapters.telegram.parse import command_arguments
from adapters.telegram.permissions import ADMIN_ROLE, ChatAdmins, Sender, sender_of
from adapters.telegram.places import in_chat
from bot import admin_grammar as grammar
from bot import messages
from bot.admin import AdminService
from bot.domain import UNLIMITED
from bot.service import Done, GenerationService

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE

ADMIN_COMMAND = BotCommand("admin", "This chat's quotas, limits, blocks, queue and usage")
RECHECK_SECONDS = 10.0

PRIVATE_TEXT = (
    "🛠 /admin is for groups: add me to one, and its admins can set its quotas, limits and "
    "blocked words there with /admin."
)
CANT_CHECK = "I couldn't check who the admins here are just now; please try again in a moment."
_JOB_NUMBER = re.compile(r"#(\d{1,19})\s*$")  # a status message ends with "· #12"
_USER_ID = re.compile(r"^-?\d{1,15}$")  # a person's id, or a channel's (negative)


class Problem(Exception):
    """What the admin typed can't be done; the message says why, for them."""


@dataclass(frozen=True)
class _Call:
    bot: Bot
    message: Message
    chat: Chat
    sender: Sender  # a person, or the group's anonymous admins
    args: list[str]  # the words after the subcommand
    rest: str  # the text after the subcommand, as typed

    @property
    def scope(self) -> str:
        return str(self.chat.id)


@dataclass(frozen=True)
class _Target:
    user_id: str
    name: str


Action = Callable[[_Call], Awaitable[str]]


class TelegramAdmin:
    """service: the core. admins: the shared admin-list cache (the one the handlers use)."""

    def __init__(self, service: GenerationService, admins: ChatAdmins) -> None:
        self._service = service
        self._admins = admins
        self._actions: dict[str, Action] = {
            "help": self._overview,
            "settings": self._overview,
            "quota": self._quota,
            "adminquota": self._admin_quota,
            "userquota": self._user_quota,
            "block": self._block,
            "unblock": self._unblock,
            "maxduration": self._max_duration,
            "defaultduration": self._default_duration,
            "maxjobs": self._max_jobs,
            "buttons": self._buttons,
            "nsfw": self._nsfw,
            "own_audio": self._own_audio,
            "ownaudio": self._own_audio,
            "words": self._words,
            "budget": self._budget,
            "jam_pays": self._jam_pays,
            "jampays": self._jam_pays,
            "queue": self._queue,
            "cancel": self._cancel,
            "usage": self._usage,
        }

    def register(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        application.add_handler(
            CommandHandler("admin", self.admin, filters=filters.UpdateType.MESSAGE)
        )

    @property
    def _core(self) -> AdminService:
        return self._service.admin

    # ------------------------------------------------------------ the command
    async def admin(self, update: Update, context: Context) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        if chat.type == Chat.PRIVATE:
            await message.reply_text(PRIVATE_TEXT)
            return
        sender = sender_of(message)
        if sender is None:  # Telegram's stand-in, with no chat to say whose: no one's admin
            await message.reply_text(admin_texts.refused(messages.NOT_AN_ADMIN))
            return
        try:
            allowed = await self._allowed(context.bot, chat, sender)
        except TelegramError as error:  # nothing is changed on a guess
            logger.warning("Telegram: could not list the admins of %s: %s", chat.id, error)
            await message.reply_text(texts.problem(CANT_CHECK))
            return
        if not allowed:
            await message.reply_text(admin_texts.refused(messages.NOT_AN_ADMIN))
            return
        words = command_arguments(message.text or "").split(maxsplit=1)
        name = words[0].lower() if words else "help"
        rest = words[1].strip() if len(words) > 1 else ""
        action = self._actions.get(name)
        if action is None:
            unknown = texts.esc(texts.clip(name, 32))
            await message.reply_text(
                f"⚠️ I don't know <code>/admin {unknown}</code>.\n\n{admin_texts.HELP}"
            )
            return
        call = _Call(context.bot, message, chat, sender, rest.split(), rest)
        try:
            reply = await action(call)
        except (Problem, ValueError) as problem:  # the core words its refusals for admins
            reply = texts.problem(str(problem))
        await message.reply_text(reply)

    async def _allowed(self, bot: Bot, chat: Chat, sender: Sender) -> bool:
        if await self._admins.is_admin(bot, chat, sender):
            return True
        # Just promoted? A refusal is checked against a fresher list before it's given.
        return await self._admins.is_admin(bot, chat, sender, max_age=RECHECK_SECONDS)

    # ------------------------------------------------------------ settings
    async def _overview(self, call: _Call) -> str:
        rules = await self._core.chat_rules(PLATFORM, call.scope)
        return admin_texts.overview(
            call.chat.title, rules, self._service.policy, self._service.limits
        )

    async def _quota(self, call: _Call) -> str:
        value = grammar.parse_quota(
            _one(call, "/admin quota 600 (seconds a day), unlimited or default")
        )
        await self._core.update_chat_rules(PLATFORM, call.scope, quota_seconds_per_day=value)
        if value is None:
            default = _allowance(self._service.policy.seconds_per_day)
            return admin_texts.done(f"Everyone here is back to the bot's default: {default}.")
        return admin_texts.done(f"Everyone here now gets {_allowance(value)}.")

    async def _admin_quota(self, call: _Call) -> str:
        value = grammar.parse_quota(
            _one(call, "/admin adminquota 1200 (seconds a day), unlimited or default")
        )
        rules = await self._core.chat_rules(PLATFORM, call.scope)
        roles = dict(rules.role_quotas)
        if value is None:
            roles.pop(ADMIN_ROLE, None)
        else:
            roles[ADMIN_ROLE] = value
        await self._core.update_chat_rules(PLATFORM, call.scope, role_quotas=roles)
        if value is None:
            return admin_texts.done("This chat's admins now get the same as everyone.")
        return admin_texts.done(f"This chat's admins now get {_allowance(value)}.")

    async def _user_quota(self, call: _Call) -> str:
        target, args = await self._target(call, values=1, example="/admin userquota 1200")
        value = grammar.parse_quota(args[0])
        await self._core.set_user_quota(PLATFORM, target.user_id, call.scope, value)
        if value is None:
            return admin_texts.done(f"{target.name} is back to this chat's usual quota.")
        return admin_texts.done(f"{target.name} now gets {_allowance(value)} here.")

    async def _block(self, call: _Call) -> str:
        target, _ = await self._target(call, values=0, example="/admin block")
        if target.user_id == str(call.bot.id):
            raise Problem("That's me.")
        if target.user_id == str(call.sender.id):
            raise Problem("You can't block yourself.")
        note = f"blocked by Telegram admin {call.sender.id}"
        await self._core.set_blocked(PLATFORM, target.user_id, call.scope, True, note)
        return admin_texts.done(f"{target.name} can't make songs here any more.")

    async def _unblock(self, call: _Call) -> str:
        target, _ = await self._target(call, values=0, example="/admin unblock")
        await self._core.set_blocked(PLATFORM, target.user_id, call.scope, False)
        standing = await self._core.standing(PLATFORM, target.user_id, call.scope)
        if standing.blocked:  # the operator's block applies everywhere; only they lift it
            return texts.problem(
                f"{target.name} is unblocked here, but the bot's operator blocked them "
                "everywhere; only the operator can lift that."
            )
        return admin_texts.done(f"{target.name} can make songs here again.")

    async def _max_duration(self, call: _Call) -> str:
        value = self._length(_one(call, "/admin maxduration 120 (seconds) or default"))
        rules = await self._core.chat_rules(PLATFORM, call.scope)
        if value is not None and rules.default_duration is not None:
            if value < rules.default_duration:
                raise Problem(
                    f"Songs here are {rules.default_duration} s by default; lower that first "
                    "with /admin defaultduration."
                )
        await self._core.update_chat_rules(PLATFORM, call.scope, max_duration=value)
        if value is None:
            limit = self._service.limits.max_duration
            return admin_texts.done(f"Songs here can be as long as the bot allows ({limit} s).")
        return admin_texts.done(f"Songs here can now be up to {value} s long.")

    async def _default_duration(self, call: _Call) -> str:
        value = self._length(_one(call, "/admin defaultduration 60 (seconds) or default"))
        rules = await self._core.chat_rules(PLATFORM, call.scope)
        if value is not None and rules.max_duration is not None and value > rules.max_duration:
            raise Problem(f"That's longer than the longest song here ({rules.max_duration} s).")
        await self._core.update_chat_rules(PLATFORM, call.scope, default_duration=value)
        if value is None:
            return admin_texts.done("Songs with no length asked get the bot's default again.")
        return admin_texts.done(f"Songs with no length asked are now {value} s long.")

    async def _max_jobs(self, call: _Call) -> str:
        value = grammar.parse_jobs(_one(call, "/admin maxjobs 5 or default"))
        await self._core.update_chat_rules(PLATFORM, call.scope, max_active_jobs=value)
        if value is None:
            return admin_texts.done("This chat has the bot's usual limit of songs at once again.")
        return admin_texts.done(f"Up to {value} songs can be in the works at once here.")

    async def _buttons(self, call: _Call) -> str:
        allow = grammar.parse_switch(_one(call, "/admin buttons on or /admin buttons off"))
        await self._core.update_chat_rules(PLATFORM, call.scope, others_may_press=allow)
        if allow:
            return admin_texts.done(
                "Anyone here may now press 🎲 / 🔁 under anyone's song (it uses their own quota)."
            )
        return admin_texts.done("Only a song's owner may press its 🎲 / 🔁 now.")

    async def _nsfw(self, call: _Call) -> str:
        allow = grammar.parse_switch(_one(call, "/admin nsfw on or /admin nsfw off"))
        await self._core.update_chat_rules(PLATFORM, call.scope, allow_nsfw=allow)
        if allow:
            return admin_texts.done(
                "Songs the music engine flags as not safe for work will be posted here."
            )
        return admin_texts.done(
            "Songs the music engine flags as not safe for work will be held back here "
            "(their quota is given back)."
        )

    async def _own_audio(self, call: _Call) -> str:
        allow = grammar.parse_switch(_one(call, "/admin own_audio on or /admin own_audio off"))
        await self._core.update_chat_rules(PLATFORM, call.scope, own_audio=allow)
        if allow:
            return admin_texts.done("Members may now /remix and /extend audio they send here.")
        return admin_texts.done("Audio members send can't be edited here now; my tracks can.")

    async def _words(self, call: _Call) -> str:
        usage = (
            "Use `/admin words add grim, dark`, `/admin words remove grim` or `/admin words list`."
        )
        sub = call.args[0].lower() if call.args else "list"
        rules = await self._core.chat_rules(PLATFORM, call.scope)
        if sub == "list":
            return admin_texts.words_text(rules.blocked_words)
        if sub not in ("add", "remove"):
            raise Problem(usage)
        if len(call.args) < 2:
            raise Problem(usage)
        given = grammar.parse_words(call.rest.split(maxsplit=1)[1], spaces_separate=True)
        if not given:
            raise Problem(usage)
        current = list(rules.blocked_words)
        known = {word.casefold() for word in current}
        if sub == "add":
            new = [w for w in given if w.casefold() not in known]
            if not new:
                return admin_texts.done("Those words were already blocked here.")
            if len(current) + len(new) > grammar.MAX_LIST_ITEMS:
                raise Problem(f"A chat can block at most {grammar.MAX_LIST_ITEMS} words.")
            words = (*current, *new)
            sentence = f"Blocked {_count(len(new), 'word')} here ({len(words)} in all)."
        else:
            gone = {w.casefold() for w in given}
            words = tuple(w for w in current if w.casefold() not in gone)
            sentence = f"Unblocked {_count(len(current) - len(words), 'word')} ({len(words)} left)."
        await self._core.update_chat_rules(PLATFORM, call.scope, blocked_words=words)
        return admin_texts.done(sentence)

    async def _budget(self, call: _Call) -> str:
        value = grammar.parse_budget(_one(call, "/admin budget 5 (US dollars a month) or none"))
        await self._core.update_chat_rules(PLATFORM, call.scope, monthly_budget_usd=value)
        if value is None:
            return admin_texts.done("This chat has no monthly budget of its own now.")
        return admin_texts.done(
            f"This chat may now spend up to {admin_texts.dollars(value)} a month on music."
        )

    async def _jam_pays(self, call: _Call) -> str:
        payer = grammar.parse_jam_pays(_one(call, "/admin jam_pays host or chat"))
        # The core refuses "chat" with a sentence where the chat has no budget.
        await self._core.update_chat_rules(PLATFORM, call.scope, jam_pays=payer)
        if payer == "chat":
            return admin_texts.done("Jams here are paid from this chat's monthly budget now.")
        return admin_texts.done("A jam's takes count against its host's daily music again.")

    # ------------------------------------------------------------ jobs and usage
    async def _queue(self, call: _Call) -> str:
        entries = await self._core.queue(PLATFORM, call.scope)
        names: dict[str, str] = {}
        if entries:  # the usage report knows everyone who asked lately, by name
            for row in await self._core.usage(days=30, platform=PLATFORM, scope_id=call.scope):
                if row.display_name:
                    names[row.user_id] = row.display_name
        return admin_texts.queue_text(entries, names)

    async def _cancel(self, call: _Call) -> str:
        job_id: int | None = None
        if call.args:
            word = call.args[0].lstrip("#")
            if not (word.isdigit() and word.isascii() and int(word) <= keyboards.MAX_JOB_ID):
                raise Problem("Give the song's number, like `/admin cancel 12` (see /admin queue).")
            job_id = int(word)
        else:
            replied = _replied(call.message)
            if replied is not None and _from_bot(replied, call.bot):
                job_id = _job_of(replied)
        if job_id is None:
            raise Problem("Give the song's number, like `/admin cancel 12` (see /admin queue).")
        job = await self._core.job(job_id)
        if (
            job is None
            or job.destination.platform != PLATFORM
            or not in_chat(job.destination.chat_id, call.scope)
        ):
            raise Problem(f"I can't find song #{job_id} in this chat.")
        outcome = await self._admins.cancel(
            call.bot, job_id, call.sender, call.chat, known_admin=True
        )
        if isinstance(outcome, Done):
            return f"✖ {texts.rich(outcome.message)}"
        return texts.problem(outcome.message)

    async def _usage(self, call: _Call) -> str:
        days = grammar.parse_days(call.args[0]) if call.args else 30
        rows = await self._core.usage(days=days, platform=PLATFORM, scope_id=call.scope)
        return admin_texts.usage_text(rows, days)

    # ------------------------------------------------------------ helpers
    def _length(self, word: str) -> int | None:
        """A song length in seconds within the bot's limits, or None for "default"."""
        return grammar.parse_length(word, self._service.limits)

    async def _target(self, call: _Call, *, values: int, example: str) -> tuple[_Target, list[str]]:
        """Whom a user command is about: the author of the replied message (or the owner of
        the song a replied bot message is about), or a numeric id given before the values."""
        how = f"Reply to one of their messages with `{example}`, or put their numeric id first."
        if len(call.args) == values + 1:
            if not _USER_ID.match(call.args[0]):
                raise Problem(how)
            return _Target(call.args[0], f"User {call.args[0]}"), call.args[1:]
        replied = _replied(call.message)
        if len(call.args) != values or replied is None:
            raise Problem(how)
        if _from_bot(replied, call.bot):
            job_id = _job_of(replied)
            job = await self._core.job(job_id) if job_id is not None else None
            if job is None or not in_chat(job.destination.chat_id, call.scope):
                raise Problem("That message isn't someone's song. " + how)
            return _Target(job.destination.user_id, f"The owner of song #{job.id}"), call.args
        # A person, or a chat someone writes as (a channel, the anonymous admins): whoever
        # owns that message's songs. Not a bot.
        author = sender_of(replied)
        bot_author = replied.sender_chat is None and bool(
            replied.from_user and replied.from_user.is_bot
        )
        if author is None or bot_author:
            raise Problem("That only works for a person or a channel. " + how)
        return _Target(str(author.id), author.name or f"User {author.id}"), call.args


def _one(call: _Call, example: str) -> str:
    if len(call.args) != 1:
        raise Problem(f"Use `{example}`.")
    return call.args[0]


def _allowance(seconds: int) -> str:
    if seconds == UNLIMITED:
        return "unlimited music"
    return f"{messages.humanize_seconds(seconds)} of music a day"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _replied(message: Message) -> Message | None:
    """The message this one answers; in a forum topic, not the topic's opening message."""
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        return None
    return replied


def _from_bot(message: Message, bot: Bot) -> bool:
    return message.from_user is not None and message.from_user.id == bot.id


def _job_of(message: Message) -> int | None:
    """The song a bot message is about: its buttons, or the "#12" ending a status message."""
    job_id = keyboards.job_of(message.reply_markup)
    if job_id is not None:
        return job_id
    found = _JOB_NUMBER.search(message.text or message.caption or "")
    return int(found.group(1)) if found and int(found.group(1)) <= keyboards.MAX_JOB_ID else None
