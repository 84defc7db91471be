"""The ▶ Keep buttons fit the platforms' layouts for every number of takes MAX_TAKES allows
(Discord: five buttons a row, five rows; Telegram: rows kept short enough to read)."""

from __future__ import annotations

import pytest

from adapters.discord.takes import takes_view
from adapters.telegram.keyboards import takes_keyboard


@pytest.mark.parametrize("takes", [2, 4, 5, 8])
async def test_discord_takes_view_fits_a_message(takes: int) -> None:
    view = takes_view(7, range(1, takes + 1), kept=2)

    rows = view.to_components()  # discord.py refuses a layout Discord would
    keeps = [b for row in rows for b in row["components"] if "keep" in b["custom_id"]]
    assert [b["label"] for b in keeps][:2] == ["Keep 1", "Kept 2"]
    assert len(keeps) == takes and len(rows) <= 5
    assert all(len(row["components"]) <= 5 for row in rows)
    assert "reroll" in rows[-1]["components"][0]["custom_id"]  # 🎲 / 🔁 in a row of their own


@pytest.mark.parametrize(("takes", "keep_rows"), [(2, 1), (4, 1), (5, 2), (8, 2)])
def test_telegram_takes_keyboard_rows(takes: int, keep_rows: int) -> None:
    markup = takes_keyboard(7, range(1, takes + 1), kept=None)

    rows = markup.inline_keyboard
    assert len(rows) == keep_rows + 1 and all(len(row) <= 4 for row in rows)
    assert [b.callback_data for b in rows[0]][:2] == ["kp:7:1", "kp:7:2"]
    assert [b.text for b in rows[-1]] == ["🎲 New take", "🔁 Same seed"]
