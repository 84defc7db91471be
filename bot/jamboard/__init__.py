"""The jam board: a public web page per jam on the bot's listener (docs/jamboard.md)."""

from bot.jamboard.board import JamBoard
from bot.jamboard.limits import RateLimit

__all__ = ["JamBoard", "RateLimit"]
