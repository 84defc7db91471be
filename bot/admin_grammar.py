"""One grammar for the values admins type: Discord's /admin, Telegram's /admin and
`acejam admin` read a quota, a song length, a budget, on/off or a word list the same way,
and refuse what they can't use with the same sentence (it quotes what was typed and says
what would work; `literal` words in backticks, which each platform renders its own way).

Each front end used to have its own parser; this one accepts everything any of them
accepted, so no spelling that worked anywhere stops working:

- an amount of time: ``600``, ``600s``, ``10m``, ``10 min``, ``2h``, ``1:30``;
- a quota: an amount, ``unlimited`` (``infinite``, ``∞``, ``-1``), or back to the default;
- back to the default: ``default``, ``reset``, ``none``, ``off``, or nothing;
- on/off: ``on yes true 1 allow`` / ``off no false 0 deny``; ``own_audio`` also takes
  ``default`` (on in direct messages, off in groups), so ``off`` is off there, not a reset;
- a list: comma-separated (a chat may also split words on spaces);
- role quotas: ``role:quota`` or ``role=quota`` pairs, separated by ``,`` or ``;``;
- who pays for a jam's takes: ``host`` or ``chat`` (``jam_pays``; reset: host).

Pure functions, no I/O. Ranges that depend on the bot's settings (song lengths) take
:class:`~bot.domain.Limits`; the ceilings an operator sets are checked by `bot.admin`.
"""

from __future__ import annotations

import math
import re

from bot.domain import UNLIMITED, ChatRules, Limits

MAX_LIST_ITEMS = 200  # blocked words or allowed channels per chat
MAX_WORD_LENGTH = 64
# What an integer column holds: `acejam admin` took any whole number, so nothing below it
# is refused (the operator's ceilings bound what a chat's admins may set).
MAX_QUOTA_SECONDS = MAX_CHAT_JOBS = 2**31 - 1
MAX_USAGE_DAYS = 365

RESET_WORDS = frozenset({"", "default", "reset", "none", "off"})
UNLIMITED_WORDS = frozenset({"unlimited", "infinite", "∞", "-1"})
ON_WORDS = frozenset({"on", "yes", "true", "1", "allow"})
OFF_WORDS = frozenset({"off", "no", "false", "0", "deny"})

QUOTA_HINT = (
    "A quota is a number of seconds a day (like `600`, `10m`, `1h` or `1:30`), `unlimited`, "
    "or `default`."
)
BUDGET_HINT = "Give US dollars a month (like `5` or `12.50`), or `none` for no budget."

_AMOUNT = re.compile(
    r"(\d{1,9})\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)?", re.IGNORECASE
)
_CLOCK = re.compile(r"(\d{1,6}):([0-5]\d)")  # minutes:seconds, as /song takes a length
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_MONEY = re.compile(r"\$?\s*(\d{1,7}(?:\.\d{1,4})?)\s*(?:\$|usd)?", re.IGNORECASE)
_WHOLE = re.compile(r"#?(\d{1,9})")
_DAYS = re.compile(r"(\d{1,4})\s*(?:d|days?)?", re.IGNORECASE)
_ROLE_PAIR = re.compile(r"\s*([^:=]+?)\s*[:=]\s*(.*?)\s*")


class BadValue(ValueError):
    """A value an admin typed that can't be used; the message says what would work."""


def quoted(text: object, limit: int = 40) -> str:
    """What the admin typed, on one short line, to repeat back to them."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _word(text: str) -> str:
    return " ".join(text.split()).casefold()


# ---------------------------------------------------------------- amounts of time


def parse_seconds(text: str) -> int | None:
    """``90``, ``90s``, ``5m``, ``5 min``, ``2h``, ``1:30`` -> seconds; None if it isn't one."""
    word = text.strip()
    if clock := _CLOCK.fullmatch(word):
        return int(clock[1]) * 60 + int(clock[2])
    amount = _AMOUNT.fullmatch(word)
    if amount is None:
        return None
    unit = (amount[2] or "s")[0].lower()
    return int(amount[1]) * _UNIT_SECONDS[unit]


def parse_quota(text: str) -> int | None:
    """A daily quota: seconds, ``UNLIMITED``, or None for "back to the default"."""
    word = _word(text)
    if word in RESET_WORDS:
        return None
    if word in UNLIMITED_WORDS:
        return UNLIMITED
    seconds = parse_seconds(word)
    if seconds is None:
        raise BadValue(f"“{quoted(text)}” isn't a quota. {QUOTA_HINT}")
    if seconds > MAX_QUOTA_SECONDS:
        raise BadValue(
            f"“{quoted(text)}” is more music than a day can hold; for no limit say "
            f"`unlimited`. {QUOTA_HINT}"
        )
    return seconds


def length_hint(limits: Limits, reset: str = "default") -> str:
    return (
        f"Give a length from {limits.min_duration} to {limits.max_duration} seconds, or `{reset}`."
    )


def parse_length(
    value: str | int, limits: Limits | None = None, reset: str = "default"
) -> int | None:
    """A song length (``90``, ``1:30``, ``2m``), or None for the bot's own (a reset word, or
    0: no song is 0 s long). With ``limits``, a length the bot can't make is refused; without,
    `bot.admin` checks it when it is saved."""
    if isinstance(value, int):
        seconds: int | None = value
    elif _word(value) in RESET_WORDS:
        return None
    else:
        seconds = parse_seconds(value)
    if seconds == 0:
        return None
    if seconds is None:
        hint = length_hint(limits, reset) if limits else "Give seconds like `90` or `1:30`."
        raise BadValue(f"“{quoted(value)}” isn't a length. {hint}")
    if limits is not None and not limits.min_duration <= seconds <= limits.max_duration:
        raise BadValue(length_hint(limits, reset))
    return seconds


# ---------------------------------------------------------------- numbers and money


def parse_jobs(value: str | int) -> int | None:
    """Songs in the works at once in a chat, or None (a reset word, or 0) for the default."""
    if isinstance(value, int):
        number: int | None = value
    elif _word(value) in RESET_WORDS:
        return None
    else:
        found = _WHOLE.fullmatch(value.strip())
        number = int(found[1]) if found else None
    if number is None or not 0 <= number <= MAX_CHAT_JOBS:
        raise BadValue(
            f"“{quoted(value)}” isn't a number of songs: give a whole number like `5`, "
            "or `default`."
        )
    return number or None


def parse_budget(text: str) -> float | None:
    """US dollars a month (``5``, ``$2.50``, ``12.5 usd``), or None for no budget."""
    word = _word(text)
    if word in RESET_WORDS:
        return None
    money = _MONEY.fullmatch(word)
    if money is None:
        try:  # what the CLI took: anything float() reads, within the range
            amount = float(word)
        except ValueError:
            raise BadValue(f"“{quoted(text)}” isn't an amount. {BUDGET_HINT}") from None
    else:
        amount = float(money[1])
    if not (math.isfinite(amount) and amount >= 0):
        raise BadValue(f"“{quoted(text)}” isn't an amount. {BUDGET_HINT}")
    return round(amount, 4)  # costs are fractions of a cent; no float noise past that


def parse_days(text: str) -> int:
    """How many days back a report goes: ``7`` or ``7d``."""
    found = _DAYS.fullmatch(text.strip())
    days = int(found[1]) if found else 0
    if not 1 <= days <= MAX_USAGE_DAYS:
        raise BadValue(
            f"“{quoted(text)}” isn't a number of days: give one from 1 to {MAX_USAGE_DAYS}, "
            "like `7`."
        )
    return days


# ---------------------------------------------------------------- switches and lists


def parse_switch(text: str) -> bool:
    word = _word(text)
    if word in ON_WORDS:
        return True
    if word in OFF_WORDS:
        return False
    raise BadValue(f"“{quoted(text)}” isn't on or off: say `on` or `off`.")


# What own_audio's "default" is: whether the chat is one-to-one (bot/edits.py).
OWN_AUDIO_DEFAULT = "default (on in direct messages, off in groups)"
OWN_AUDIO_HINT = "Say `on`, `off`, or `default` (on in direct messages, off in groups)."


def parse_own_audio(text: str) -> bool | None:
    """``own_audio``: may members edit audio they send? on, off, or None for the default."""
    word = _word(text)
    if word in RESET_WORDS - OFF_WORDS:  # "off" turns it off; it resets nothing here
        return None
    try:
        return parse_switch(word)
    except BadValue:
        raise BadValue(f"“{quoted(text)}” isn't on, off or default. {OWN_AUDIO_HINT}") from None


def parse_jam_pays(text: str) -> str:
    """``jam_pays``: who pays for a jam's takes, ``host`` or ``chat`` (default: host)."""
    word = _word(text)
    if word in RESET_WORDS or word == "host":
        return "host"
    if word == "chat":
        return "chat"
    raise BadValue(f"“{quoted(text)}” isn't host or chat: `jam_pays=host` or `jam_pays=chat`.")


def own_audio_word(value: bool | None) -> str:
    """``own_audio`` as admins read it back: on, off, or what the default means."""
    return OWN_AUDIO_DEFAULT if value is None else "on" if value else "off"


def parse_words(
    text: str, *, spaces_separate: bool = False, at_least_one: bool = False
) -> list[str]:
    """Comma-separated words or phrases, trimmed, without repeats (ignoring case). With
    ``spaces_separate`` (Telegram's ``/admin words add grim dark``), a text without commas is
    one word per space. Nothing is an empty list (`acejam admin` clears a list so) unless
    ``at_least_one``."""
    parts = text.split() if spaces_separate and "," not in text else text.split(",")
    words: dict[str, str] = {}
    for part in parts:
        word = " ".join(part.split())
        if len(word) > MAX_WORD_LENGTH:
            raise BadValue(f"Keep each word or phrase to {MAX_WORD_LENGTH} characters.")
        if word:
            words.setdefault(word.casefold(), word)
    if at_least_one and not words:
        raise BadValue("Give one or more words, separated by commas.")
    return list(words.values())


def parse_role_quotas(text: str) -> dict[str, int]:
    """``dj:600,vip:unlimited`` or ``dj=10m;vip=unlimited``: every role's own quota (a role
    given ``default`` has none). Nothing, or a reset word, clears them all."""
    if _word(text) in RESET_WORDS:
        return {}
    roles: dict[str, int] = {}
    for pair in re.split(r"[,;]", text):
        if not pair.strip():
            continue
        found = _ROLE_PAIR.fullmatch(pair)
        if found is None:
            raise BadValue(
                f"“{quoted(pair)}” isn't a role's quota: write `role:600` (or `role=10m`), "
                "several separated by commas."
            )
        seconds = parse_quota(found[2])
        if seconds is not None:
            roles[found[1]] = seconds
    return roles


# ---------------------------------------------------------------- one setting by name

_QUOTAS = frozenset({"quota_seconds_per_day", "operator_quota_seconds_per_day"})
_JOBS = frozenset({"max_active_jobs", "operator_max_active_jobs"})
_LENGTHS = frozenset({"default_duration", "max_duration"})
_SWITCHES = frozenset({"others_may_press", "allow_nsfw"})
_LISTS = frozenset({"allowed_channels", "blocked_words"})
SETTING_NAMES = frozenset(ChatRules.__dataclass_fields__)


def parse_setting(item: str) -> tuple[str, object]:
    """``name=value`` for one of a chat's settings (`acejam admin settings`), its value read
    by the grammar above."""
    name, sep, raw = item.partition("=")
    if not sep:
        raise BadValue(f"Expected name=value, got “{quoted(item)}”.")
    name = name.strip()
    if name not in SETTING_NAMES:
        raise BadValue(
            f"unknown chat setting “{quoted(name)}”; known: {', '.join(sorted(SETTING_NAMES))}"
        )
    value: object
    if name in _QUOTAS:
        value = parse_quota(raw)
    elif name in _JOBS:
        value = parse_jobs(raw)
    elif name in _LENGTHS:
        value = parse_length(raw)
    elif name in _SWITCHES:  # both are off unless a chat turns them on
        value = False if _word(raw) in RESET_WORDS else parse_switch(raw)
    elif name == "own_audio":
        value = parse_own_audio(raw)
    elif name in _LISTS:
        value = tuple(parse_words(raw))
    elif name == "role_quotas":
        value = parse_role_quotas(raw)
    elif name == "monthly_budget_usd":
        value = parse_budget(raw)
    elif name == "jam_pays":
        value = parse_jam_pays(raw)
    else:  # a new setting needs its grammar here first
        raise BadValue(f"{name} can't be set from here.")
    return name, value
