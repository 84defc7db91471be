"""The reliability suite meets users through the Telegram adapter's own test rig: the same
loopback Telegram and WaveSpeed fixtures (imported, so both suites drive one setup)."""

from tests.adapters.telegram.conftest import _ptb_timedelta, tg, ws

__all__ = ["_ptb_timedelta", "tg", "ws"]
