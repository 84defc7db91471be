"""The one admin grammar (`bot.admin_grammar`): every spelling Discord, Telegram or the CLI
took before is still taken, and what can't be used gets one sentence everywhere."""

from __future__ import annotations

import pytest

from bot import admin_grammar as grammar
from bot.admin_grammar import BadValue
from bot.domain import UNLIMITED, Limits

LIMITS = Limits(min_duration=5, max_duration=240)
QUOTA_HINT = (
    "A quota is a number of seconds a day (like `600`, `10m`, `1h` or `1:30`), `unlimited`, "
    "or `default`."
)
BUDGET_HINT = "Give US dollars a month (like `5` or `12.50`), or `none` for no budget."


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("600", 600),  # the CLI's only spelling
        ("600s", 600),
        ("90 secs", 90),
        ("10m", 600),  # Telegram's and Discord's
        ("10 min", 600),
        ("10 Minutes", 600),
        ("2h", 7200),
        ("1 hour", 3600),
        ("1:30", 90),  # as /song takes a length
        ("10:00", 600),
        (" 0 ", 0),  # nobody here may make songs
        ("unlimited", UNLIMITED),
        ("Infinite", UNLIMITED),  # Discord's
        ("∞", UNLIMITED),
        ("-1", UNLIMITED),  # how `acejam admin settings` wrote it
        ("default", None),
        ("RESET", None),  # Telegram's
        ("none", None),  # Discord's and `acejam admin settings`'
        ("off", None),
        ("", None),
        ("999999999", 999_999_999),  # the CLI took any whole number
    ],
)
def test_quotas(text: str, seconds: int | None) -> None:
    assert grammar.parse_quota(text) == seconds


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("lots", f"“lots” isn't a quota. {QUOTA_HINT}"),
        ("-5", f"“-5” isn't a quota. {QUOTA_HINT}"),
        ("1.5h", f"“1.5h” isn't a quota. {QUOTA_HINT}"),
        ("10 fortnights", f"“10 fortnights” isn't a quota. {QUOTA_HINT}"),
        (
            "999999999h",
            f"“999999999h” is more music than a day can hold; for no limit say `unlimited`. "
            f"{QUOTA_HINT}",
        ),
        ("x" * 60, f"“{'x' * 39}…” isn't a quota. {QUOTA_HINT}"),  # quoted, not repeated whole
    ],
)
def test_what_isnt_a_quota(text: str, sentence: str) -> None:
    with pytest.raises(BadValue) as refused:
        grammar.parse_quota(text)
    assert str(refused.value) == sentence


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90", 90),
        ("1:30", 90),
        ("2m", 120),
        ("240s", 240),
        ("default", None),
        ("0", None),
        (0, None),
        (30, 30),
    ],
)
def test_song_lengths(value: str | int, seconds: int | None) -> None:
    assert grammar.parse_length(value, LIMITS) == seconds


def test_song_lengths_out_of_range_or_unreadable() -> None:
    with pytest.raises(BadValue, match=r"^Give a length from 5 to 240 seconds, or `default`\.$"):
        grammar.parse_length("9999", LIMITS)
    with pytest.raises(BadValue, match=r"^Give a length from 5 to 240 seconds, or `0`\.$"):
        grammar.parse_length(3, LIMITS, reset="0")  # Discord's option is a number
    with pytest.raises(BadValue) as refused:
        grammar.parse_length("soon", LIMITS)
    assert str(refused.value) == (
        "“soon” isn't a length. Give a length from 5 to 240 seconds, or `default`."
    )
    # Without the bot's limits (the CLI, before the core is open) only the spelling counts;
    # the core checks the range when it saves.
    assert grammar.parse_length("9999") == 9999
    with pytest.raises(BadValue, match="Give seconds like `90` or `1:30`"):
        grammar.parse_length("soon")


@pytest.mark.parametrize(
    ("value", "jobs"),
    [("5", 5), ("#5", 5), ("default", None), ("0", None), (0, None), (1000, 1000)],
)
def test_songs_at_once(value: str | int, jobs: int | None) -> None:
    assert grammar.parse_jobs(value) == jobs


@pytest.mark.parametrize("text", ["many", "-2", "2.5"])
def test_what_isnt_a_number_of_songs(text: str) -> None:
    with pytest.raises(BadValue) as refused:
        grammar.parse_jobs(text)
    assert str(refused.value) == (
        f"“{text}” isn't a number of songs: give a whole number like `5`, or `default`."
    )


@pytest.mark.parametrize(
    ("text", "usd"),
    [
        ("5", 5.0),
        ("2.50", 2.5),
        ("$12.5", 12.5),  # Discord's
        ("12.50 USD", 12.5),
        ("5$", 5.0),  # Telegram's
        ("0.0125", 0.0125),  # a song costs fractions of a cent
        ("1e3", 1000.0),  # the CLI read anything float() does
        ("2000000", 2_000_000.0),
        ("none", None),
        ("off", None),
        ("default", None),
    ],
)
def test_budgets(text: str, usd: float | None) -> None:
    assert grammar.parse_budget(text) == usd


@pytest.mark.parametrize("text", ["lots", "-5", "nan", "inf", "$"])
def test_what_isnt_a_budget(text: str) -> None:
    with pytest.raises(BadValue) as refused:
        grammar.parse_budget(text)
    assert str(refused.value) == f"“{text}” isn't an amount. {BUDGET_HINT}"


@pytest.mark.parametrize(
    ("text", "on"),
    [(w, True) for w in ("on", "Yes", "true", "1", "allow")]
    + [(w, False) for w in ("off", "no", "FALSE", "0", "deny")],
)
def test_switches(text: str, on: bool) -> None:
    assert grammar.parse_switch(text) is on


def test_what_isnt_a_switch() -> None:
    with pytest.raises(BadValue) as refused:
        grammar.parse_switch("maybe")
    assert str(refused.value) == "“maybe” isn't on or off: say `on` or `off`."


def test_word_lists() -> None:
    assert grammar.parse_words("grim, dark  ages, , Grim") == ["grim", "dark ages"]
    assert grammar.parse_words("grim dark") == ["grim dark"]  # a phrase, as Discord reads it
    assert grammar.parse_words("grim dark", spaces_separate=True) == ["grim", "dark"]
    assert grammar.parse_words("grim, dark ages", spaces_separate=True) == ["grim", "dark ages"]
    assert grammar.parse_words("") == []  # `acejam admin settings blocked_words=` clears
    with pytest.raises(BadValue, match=r"^Give one or more words, separated by commas\.$"):
        grammar.parse_words(" , ", at_least_one=True)
    with pytest.raises(BadValue, match=r"^Keep each word or phrase to 64 characters\.$"):
        grammar.parse_words("a" * 65)


def test_role_quotas() -> None:
    assert grammar.parse_role_quotas("dj:300,vip:-1") == {"dj": 300, "vip": UNLIMITED}  # CLI
    assert grammar.parse_role_quotas("dj=5m; vip=unlimited") == {"dj": 300, "vip": UNLIMITED}
    assert grammar.parse_role_quotas("dj:1:30, vip:default") == {"dj": 90}  # default: none
    assert grammar.parse_role_quotas("") == {}
    with pytest.raises(BadValue) as refused:
        grammar.parse_role_quotas("dj")
    assert str(refused.value) == (
        "“dj” isn't a role's quota: write `role:600` (or `role=10m`), several separated by commas."
    )
    with pytest.raises(BadValue, match=r"^“lots” isn't a quota"):
        grammar.parse_role_quotas("dj:lots")


def test_days() -> None:
    assert grammar.parse_days("7") == 7
    assert grammar.parse_days("7d") == 7
    assert grammar.parse_days("365") == 365
    for text in ("0", "366", "week"):
        with pytest.raises(BadValue) as refused:
            grammar.parse_days(text)
        assert str(refused.value) == (
            f"“{text}” isn't a number of days: give one from 1 to 365, like `7`."
        )


@pytest.mark.parametrize(
    ("item", "parsed"),
    [
        ("max_duration=90", ("max_duration", 90)),
        ("max_duration=1:30", ("max_duration", 90)),
        ("default_duration=default", ("default_duration", None)),
        ("quota_seconds_per_day=10m", ("quota_seconds_per_day", 600)),
        ("quota_seconds_per_day=-1", ("quota_seconds_per_day", UNLIMITED)),
        ("operator_quota_seconds_per_day=unlimited", ("operator_quota_seconds_per_day", UNLIMITED)),
        ("max_active_jobs=3", ("max_active_jobs", 3)),
        ("operator_max_active_jobs=none", ("operator_max_active_jobs", None)),
        ("blocked_words=foo,bar", ("blocked_words", ("foo", "bar"))),
        ("allowed_channels=", ("allowed_channels", ())),
        ("role_quotas=dj:300", ("role_quotas", {"dj": 300})),
        ("others_may_press=yes", ("others_may_press", True)),
        ("allow_nsfw=on", ("allow_nsfw", True)),
        ("allow_nsfw=0", ("allow_nsfw", False)),
        ("allow_nsfw=", ("allow_nsfw", False)),  # both switches are off by default
        ("monthly_budget_usd=2.5", ("monthly_budget_usd", 2.5)),
        (" monthly_budget_usd = none ", ("monthly_budget_usd", None)),
        ("own_audio=on", ("own_audio", True)),
        ("own_audio=off", ("own_audio", False)),  # off, not the default
        ("own_audio=no", ("own_audio", False)),
        ("own_audio=default", ("own_audio", None)),
        ("own_audio=", ("own_audio", None)),
    ],
)
def test_settings_by_name(item: str, parsed: tuple[str, object]) -> None:
    assert grammar.parse_setting(item) == parsed


def test_what_isnt_a_setting() -> None:
    with pytest.raises(BadValue, match=r"^Expected name=value, got “max_duration”\.$"):
        grammar.parse_setting("max_duration")
    with pytest.raises(BadValue, match=r"^unknown chat setting “colour”; known: allow_nsfw, "):
        grammar.parse_setting("colour=blue")
    with pytest.raises(BadValue, match=r"^“maybe” isn't on or off"):
        grammar.parse_setting("allow_nsfw=maybe")
    with pytest.raises(BadValue, match=r"^“ninety” isn't a length"):
        grammar.parse_setting("max_duration=ninety")
    with pytest.raises(BadValue) as refused:
        grammar.parse_setting("own_audio=sometimes")
    assert str(refused.value) == (
        "“sometimes” isn't on, off or default. Say `on`, `off`, or `default` (on in direct "
        "messages, off in groups)."
    )
    assert [grammar.own_audio_word(v) for v in (True, False, None)] == [
        "on",
        "off",
        "default (on in direct messages, off in groups)",
    ]
