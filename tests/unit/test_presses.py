"""PressGuard: the second tap of one button by one person within the window is not a press."""

from __future__ import annotations

from bot.presses import PressGuard


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_double_tap_counts_once_and_the_window_reopens() -> None:
    clock = Clock()
    guard = PressGuard(5.0, clock=clock)
    key = ("telegram", 7, "reroll", 42)
    assert guard.first(key) is True
    clock.now += 0.3
    assert guard.first(key) is False
    clock.now += 5.0
    assert guard.first(key) is True


def test_other_people_and_other_buttons_are_their_own_presses() -> None:
    guard = PressGuard(5.0, clock=Clock())
    assert guard.first(("discord", 1, "reroll", 42))
    assert guard.first(("discord", 2, "reroll", 42))
    assert guard.first(("discord", 1, "same_seed", 42))
    assert guard.first(("discord", 1, "reroll", 43))
    assert not guard.first(("discord", 1, "reroll", 42))


def test_old_presses_are_forgotten() -> None:
    clock = Clock()
    guard = PressGuard(1.0, clock=clock)
    for n in range(1000):
        guard.first(("telegram", n, "reroll", 1))
        clock.now += 0.01
    clock.now += 2.0
    guard.first(("telegram", -1, "reroll", 1))
    assert len(guard._seen) == 1
