"""What /song suggests while a member types a key or a vocal language. Suggestions only: what
is typed goes through as typed, and the core says what it can't use."""

from __future__ import annotations

from discord import app_commands

from bot.controls import TIME_SIGNATURES, VOCAL_LANGUAGES, canonical_key

CHOICES_MAX = 25  # Discord shows at most 25 suggestions
# The keys most songs are in first (the circle of fifths from C, then the minors from A).
COMMON_KEYS = tuple(
    f"{note} {mode}"
    for mode, notes in (
        ("major", ("C", "G", "D", "A", "E", "B", "F#", "F", "Bb", "Eb", "Ab", "Db")),
        ("minor", ("A", "E", "B", "F#", "C#", "G#", "D", "G", "C", "F", "Bb", "Eb")),
    )
    for note in notes
)
# ACE-Step's vocal languages by name, so "portu" finds pt.
LANGUAGE_NAMES = {
    "ar": "Arabic", "az": "Azerbaijani", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan",
    "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "fa": "Persian", "fi": "Finnish", "fr": "French", "he": "Hebrew",
    "hi": "Hindi", "hr": "Croatian", "ht": "Haitian Creole", "hu": "Hungarian",
    "id": "Indonesian", "is": "Icelandic", "it": "Italian", "ja": "Japanese", "ko": "Korean",
    "la": "Latin", "lt": "Lithuanian", "ms": "Malay", "ne": "Nepali", "nl": "Dutch",
    "no": "Norwegian", "pa": "Punjabi", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian",
    "ru": "Russian", "sa": "Sanskrit", "sk": "Slovak", "sr": "Serbian", "sv": "Swedish",
    "sw": "Swahili", "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog",
    "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "yue": "Cantonese",
    "zh": "Chinese",
}  # fmt: skip
# The time signature each beat count is usually written as.
TIME_NAMES = {2: "2/4", 3: "3/4 (waltz)", 4: "4/4", 6: "6/8"}
TIME_CHOICES = [
    app_commands.Choice(name=TIME_NAMES.get(beats, str(beats)), value=beats)
    for beats in TIME_SIGNATURES
]


def key_choices(typed: str) -> list[app_commands.Choice[str]]:
    """Keys that start like what is typed; a key typed in full ("f#m") first, as the core
    will read it."""
    text = typed.strip().casefold()
    found = [key for key in COMMON_KEYS if key.casefold().startswith(text)]
    exact = canonical_key(typed) if text else None
    if exact is not None:
        found = [exact, *(key for key in found if key != exact)]
    return [app_commands.Choice(name=key, value=key) for key in found[:CHOICES_MAX]]


def language_choices(typed: str) -> list[app_commands.Choice[str]]:
    """Languages whose code or name starts like what is typed (codes first)."""
    text = typed.strip().casefold()
    by_code = [code for code in VOCAL_LANGUAGES if code.startswith(text)]
    by_name = [
        code
        for code in VOCAL_LANGUAGES
        if code not in by_code and LANGUAGE_NAMES.get(code, "").casefold().startswith(text)
    ]
    return [
        app_commands.Choice(name=f"{LANGUAGE_NAMES.get(code, code)} ({code})", value=code)
        for code in [*by_code, *by_name][:CHOICES_MAX]
    ]


def language_code(typed: str) -> str:
    """A language typed by name and not picked from the suggestions ("Portuguese") as its
    code; anything else as typed, for the core to read or refuse."""
    text = typed.strip().casefold()
    found = [code for code, name in LANGUAGE_NAMES.items() if name.casefold() == text]
    return found[0] if found else typed
