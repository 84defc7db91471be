"""Property tests: whatever a user types, the validator answers with a request or a
sentence — never an exception — and a valid request is within every limit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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
number_like = st.one_of(st.none(), st.integers(), st.text(max_size=20), st.booleans())


@settings(max_examples=300, deadline=None)
@given(
    tags=st.one_of(st.none(), nasty_text),
    lyrics=st.one_of(st.none(), nasty_text),
    duration=number_like,
    seed=number_like,
)
def test_validator_never_raises_and_respects_limits(tags, lyrics, duration, seed) -> None:  # type: ignore[no-untyped-def]
    result = validate_request(tags=tags, lyrics=lyrics, duration=duration, seed=seed, limits=LIMITS)
    if isinstance(result, Invalid):
        assert result.message and len(result.message) < 300
        return
    assert isinstance(result, GenerationRequest)
    assert 1 <= len(result.tags) <= TAGS_MAX and result.tags == result.tags.strip()
    assert len(result.lyrics) <= LYRICS_MAX
    assert all(ch.isprintable() or ch in "\n\t" for ch in result.tags + result.lyrics)
    assert LIMITS.min_duration <= result.duration <= LIMITS.max_duration
    assert result.seed == -1 or 0 <= result.seed <= SEED_MAX
