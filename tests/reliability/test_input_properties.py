"""Property tests: whatever a user types, the validator answers with a request or a
sentence — never an exception — and a valid request is within every limit."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.telegram.parse import ShowHelp, parse_song
from bot.domain import (
    LYRICS_MAX,
    SEED_MAX,
    TAGS_MAX,
    GenerationRequest,
    Invalid,
    Limits,
    validate_request,
)

LIMITS = Limits(min_duration=5, max_duration=240)
nasty_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=5000),
    st.sampled_from(["@everyone", "<@&123>", "<b>x</b>", "&amp;", "\x00\x07", "[Verse]\n" * 600]),
)
# What people type where a number belongs: signs (ASCII, Unicode minus, doubled), spaces,
# digits of every script (Arabic-Indic, full-width, superscript), a unit, and plain noise.
SIGNS = "+-−‐ \t"
DIGITS = "0123456789٠٣٩０９²"
numberish_text = st.one_of(
    st.text(alphabet=SIGNS + DIGITS + "s", max_size=16),
    st.builds(
        lambda sign, digits, tail: sign + digits + tail,
        st.one_of(st.sampled_from(["", "-", "--", "+", "−", "- ", "+-", "-+"]), st.text(SIGNS)),
        st.one_of(
            st.text(alphabet="0123456789", min_size=1, max_size=14),
            st.text(alphabet=DIGITS, min_size=1, max_size=14),
        ),
        st.sampled_from(["", " ", "s", " s", "  "]),
    ),
)
number_like = st.one_of(
    st.none(), st.integers(), st.text(max_size=20), st.booleans(), numberish_text
)


@settings(max_examples=300, deadline=None)
@given(
    tags=st.one_of(st.none(), nasty_text),
    lyrics=st.one_of(st.none(), nasty_text),
    duration=number_like,
    seed=number_like,
)
@example(tags="tags", lyrics=None, duration="--90", seed=None)
@example(tags="tags", lyrics=None, duration=None, seed="--90")
def test_validator_never_raises_and_respects_limits(tags, lyrics, duration, seed) -> None:  # type: ignore[no-untyped-def]
    result = validate_request(tags=tags, lyrics=lyrics, duration=duration, seed=seed, limits=LIMITS)
    _check(result)


def _check(result: GenerationRequest | Invalid) -> None:
    if isinstance(result, Invalid):
        assert result.message and len(result.message) < 300
        return
    assert isinstance(result, GenerationRequest)
    assert 1 <= len(result.tags) <= TAGS_MAX and result.tags == result.tags.strip()
    assert len(result.lyrics) <= LYRICS_MAX
    assert all(ch.isprintable() or ch in "\n\t" for ch in result.tags + result.lyrics)
    assert LIMITS.min_duration <= result.duration <= LIMITS.max_duration
    assert result.seed == -1 or 0 <= result.seed <= SEED_MAX


def _validate(**fields: object) -> GenerationRequest | Invalid:
    return validate_request(limits=LIMITS, **fields)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    tags=st.one_of(st.text(max_size=30), st.sampled_from(["tags", "lo-fi, chill"])),
    duration=st.one_of(numberish_text, st.text(max_size=10)),
    seed=st.one_of(numberish_text, numberish_text.map("seed: {}".format)),
)
@example(tags="tags", duration="--90", seed="")
@example(tags="tags", duration="", seed="--90")
def test_a_telegram_song_line_is_answered_never_raised(tags: str, duration: str, seed: str) -> None:
    """`/song tags | duration | seed` as typed in a chat: a request or one sentence."""
    result = parse_song(
        f"/song {tags} | {duration} | {seed}", replied_text=None, validate=_validate
    )
    if not isinstance(result, ShowHelp):
        _check(result)
