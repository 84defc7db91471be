"""#16's pure rules (bot/jams/model.py): contributions combine in order (the theme first,
removed ones and other rounds' left out), the room left is the limit less what is used,
a later round extends with the nearest tags or builds a new song from every round, the
winner (most votes, ties to the earlier take, no votes: the earliest made), what is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.domain import JobId, JobState
from bot.jams.model import (
    Contribution,
    Due,
    Jam,
    JamState,
    JamTake,
    Part,
    Round,
    Words,
    combine,
    due,
    room,
    winner,
    words_for,
)

AT = datetime(2026, 12, 5, tzinfo=UTC)
words = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)
contribution = st.tuples(st.integers(1, 3), st.sampled_from(list(Part)), words, st.booleans())


def _contributions(raw: list[tuple[int, Part, str, bool]]) -> tuple[Contribution, ...]:
    return tuple(
        Contribution(n, rnd, part, text, f"u{n % 4}", None, removed, AT)
        for n, (rnd, part, text, removed) in enumerate(raw, start=1)
    )


def _jam(contributions: tuple[Contribution, ...], rounds: tuple[Round, ...] = ()) -> Jam:
    return Jam(
        id=1,
        platform="telegram",
        chat_id="c",
        origin_id="c",
        scope_id="c",
        host_id="h",
        host_name=None,
        theme="theme",
        takes=2,
        collect_minutes=10,
        vote_minutes=10,
        state=rounds[-1].state if rounds else JamState.COLLECTING,
        round=len(rounds) or 1,
        token=None,
        context={},
        created_at=AT,
        contributions=contributions,
        rounds=rounds,
    )


@given(st.lists(contribution, max_size=25), st.integers(1, 3))
def test_a_rounds_words_are_its_standing_contributions_in_order(raw, round_) -> None:  # type: ignore[no-untyped-def]
    made = _contributions(raw)
    tags, lyrics = combine("theme", made, round_)
    standing = [c for c in made if c.round == round_ and not c.removed]
    assert tags == ", ".join(["theme", *(c.text for c in standing if c.part == Part.TAG)])
    assert lyrics == "\n".join(c.text for c in standing if c.part == Part.LINE)


@given(st.lists(contribution, max_size=25), st.integers(10, 600), st.integers(10, 600))
def test_the_room_left_is_the_limit_less_the_words(raw, max_tags, max_lyrics) -> None:  # type: ignore[no-untyped-def]
    made = words_for(_jam(_contributions(raw)), 1, extended=False)
    left = room(made, max_tags=max_tags, max_lyrics=max_lyrics)
    assert left.tags_left == max_tags - len(made.tags)
    assert left.lyrics_left == max_lyrics - len(made.lyrics)
    assert left.fits == (len(made.tags) <= max_tags and len(made.lyrics) <= max_lyrics)


@given(st.lists(contribution, max_size=25))
def test_a_later_round_builds_on_the_earlier_ones(raw) -> None:  # type: ignore[no-untyped-def]
    jam = _jam(_contributions(raw))
    whole = words_for(jam, 3, extended=False)
    pieces = [words_for(jam, n, extended=True) for n in (1, 2, 3)]
    assert whole.lyrics == "\n".join(p.lyrics for p in pieces if p.lyrics)
    assert whole.tags.startswith("theme")
    extended = words_for(jam, 3, extended=True)
    with_tags = [n for n in (3, 2, 1) if jam.tags_of(n)]
    expected = combine("theme", jam.contributions, with_tags[0])[0] if with_tags else "theme"
    assert extended == Words(expected, combine("theme", jam.contributions, 3)[1])


def _take(n: int, votes: int, state: JobState = JobState.DELIVERED) -> JamTake:
    return JamTake(1, n, JobId(n), state, None, None, None, None, votes)


def _round(*takes: JamTake, state: JamState = JamState.VOTING, **times: datetime) -> Round:
    return Round(1, state, times.get("collect"), times.get("vote"), None, None, False, takes)


def test_the_winner_has_most_votes_ties_go_to_the_earlier_take() -> None:
    assert winner(_round(_take(1, 1), _take(2, 3), _take(3, 3))) == 2
    assert winner(_round(_take(1, 0, JobState.FAILED), _take(2, 0), _take(3, 0))) == 2
    assert winner(_round(_take(1, 5, JobState.FAILED))) is None
    assert winner(_round()) is None


def test_what_is_due() -> None:
    soon, late = AT + timedelta(minutes=5), AT + timedelta(minutes=10)
    collecting = _jam((), (_round(state=JamState.COLLECTING, collect=soon),))
    assert due(collecting, AT) is None and due(collecting, soon) == Due.RENDER
    missing = _jam((), (_round(_take(1, 0, JobState.QUEUED), state=JamState.RENDERING),))
    assert due(missing, AT) == Due.SUBMIT  # 1 of 2 takes queued
    busy = _jam((), (_round(_take(1, 0), _take(2, 0, JobState.RUNNING), state=JamState.RENDERING),))
    assert due(busy, late) is None
    made = _jam((), (_round(_take(1, 0), _take(2, 0, JobState.FAILED), state=JamState.RENDERING),))
    assert due(made, AT) == Due.OPEN_VOTING
    failed = _jam(
        (),
        (
            _round(
                _take(1, 0, JobState.FAILED),
                _take(2, 0, JobState.CANCELLED),
                state=JamState.RENDERING,
            ),
        ),
    )
    assert due(failed, AT) == Due.RENDER_FAILED
    voting = _jam((), (_round(_take(1, 0), _take(2, 0), vote=soon),))
    assert due(voting, AT) is None and due(voting, late) == Due.CLOSE
