"""The finished song, made fit for a chat (moved from bot/audio.py; split next by responsibility)."""

from bot.audio.probing import *  # noqa: F403
from bot.audio.probing import _encode_mp3  # noqa: F401
