"""The jam board's routes on the bot's real listener, as a browser (or a guesser) meets
them: the page and its JSON, the takes' audio with Range, the security headers on every
answer, the same 404 for anything that is not a live jam, and the per-address rate limit."""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

import httpx
import pytest

from bot.jamboard import RateLimit
from bot.jamboard.board import CSP
from bot.jams.model import Jam, JamState
from tests.board import sample
from tests.board.serve import serve_board


class Jams:
    """What ``service.jams.by_token`` answers, as the test sets it."""

    def __init__(self, *jams: Jam) -> None:
        self.by_token = {j.token: j for j in jams if j.token}

    async def find(self, token: str) -> Jam | None:
        return self.by_token.get(token)


def _text(page: str) -> str:
    """What a reader sees: the page without tags, spaces collapsed."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).strip())


async def test_the_page_shows_the_jam_players_first_and_no_counts_while_voting(
    tmp_path: Path,
) -> None:
    jam = sample.jam(tmp_path)
    async with serve_board(Jams(jam).find) as base, httpx.AsyncClient(base_url=base) as http:
        page = await http.get(f"/jam/{sample.TOKEN}")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    markup = page.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in markup
    text = _text(markup)
    assert "rainy city lo-fi" in text
    assert "Voting · Round 1 · Voting ends at 13:30 UTC · 5 votes cast" in text
    assert "2 votes" not in text and "3 votes" not in text  # counts once voting closed
    players = re.findall(r'<audio controls preload="none" src="([^"]+)"></audio>', markup)
    assert players == [f"{sample.TOKEN}/audio/1/1", f"{sample.TOKEN}/audio/1/2"]
    assert markup.index("<audio") < markup.index("Lyrics")  # the players first
    assert "seed 4201" in text and "seed 4202" in text
    assert 'download="rainy-city-lo-fi-round1-take1.mp3"' in markup
    assert "[Verse] neon puddles hum along Ada" in text
    assert "we walk where the streetlights sing Bo" in text
    assert "rainy city lo-fi, dreamy synths, vinyl crackle" in text
    assert "Contributors Ada Cy Bo Hosted by Ada" in text
    assert "user-Ada" not in markup  # names only: platform ids stay off the public page


async def test_a_closed_round_shows_each_takes_votes_and_marks_the_winner(
    tmp_path: Path,
) -> None:
    jam = sample.jam(tmp_path, state=JamState.CLOSED, votes=(2, 3), winner=2)
    async with serve_board(Jams(jam).find) as base, httpx.AsyncClient(base_url=base) as http:
        page = (await http.get(f"/jam/{sample.TOKEN}")).text
        data = (await http.get(f"/jam/{sample.TOKEN}.json")).json()
    markup = page
    assert "Take 1 seed 4201 · 0:04 · 2 votes" in _text(markup)
    assert "Take 2 ★ Winner seed 4202 · 0:04 · 3 votes" in _text(markup)
    assert '<li class="take winner" id="take-1-2" data-item>' in markup
    [current] = data["rounds"]
    assert [(t["take"], t["votes"], t["winner"]) for t in current["takes"]] == [
        (1, 2, False),
        (2, 3, True),
    ]


async def test_user_text_is_escaped_on_the_page_and_kept_as_text_in_the_json(
    tmp_path: Path,
) -> None:
    evil = '<script>alert("theme")</script>'
    line = "<img src=x onerror=alert(1)> & \"quotes\" 'too'"
    jam = sample.jam(tmp_path, theme=evil, lines=((line, '<b onclick="x()">Mallory</b>'),))
    async with serve_board(Jams(jam).find) as base, httpx.AsyncClient(base_url=base) as http:
        markup = (await http.get(f"/jam/{sample.TOKEN}")).text
        data = (await http.get(f"/jam/{sample.TOKEN}.json")).json()
    assert (
        "<script>alert" not in markup and "<img src=x" not in markup and "<b onclick" not in markup
    )
    assert "&lt;script&gt;alert(&quot;theme&quot;)&lt;/script&gt;" in markup
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot; &#x27;too&#x27;" in markup
    assert "<script" not in markup.replace('<script src="../jam-static/board.js" defer>', "")
    assert data["theme"] == evil
    assert data["rounds"][0]["contributions"][2] == {
        "number": 3,
        "part": "line",
        "text": line,
        "author": '<b onclick="x()">Mallory</b>',
    }


@pytest.mark.parametrize(
    "path",
    [
        f"/jam/{sample.TOKEN}",
        f"/jam/{sample.TOKEN}.json",
        f"/jam/{sample.TOKEN}/audio/1/1",
        "/jam-static/board.css",
        "/jam-static/board.js",
        "/jam/not-a-jam",
        "/jam-static/secrets.txt",
    ],
)
async def test_every_answer_carries_the_security_headers(tmp_path: Path, path: str) -> None:
    jam = sample.jam(tmp_path)
    async with serve_board(Jams(jam).find) as base, httpx.AsyncClient(base_url=base) as http:
        answer = await http.get(path)
    assert answer.headers["Content-Security-Policy"] == CSP
    assert CSP.startswith("default-src 'none'; script-src 'self'; style-src 'self';")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"


async def test_unknown_revoked_and_foreign_addresses_all_answer_the_same_404(
    tmp_path: Path,
) -> None:
    live = sample.jam(tmp_path / "live")
    other = dataclasses.replace(sample.jam(tmp_path / "other"), id=8, token="0ther-jam-token")
    revoked = dataclasses.replace(live, id=9, token=None)  # /jam board revoke
    jams = Jams(live, other)
    async with serve_board(jams.find) as base, httpx.AsyncClient(base_url=base) as http:
        plain = await http.get("/no-such-page")
        assert plain.status_code == 404
        (tmp_path / "live" / "r1t2.mp3").unlink()  # the retention sweep took take 2
        for path in (
            "/jam/guessed-token",
            "/jam/guessed-token.json",
            "/jam/guessed-token/audio/1/1",
            "/jam/",  # no listing
            "/jam",
            f"/jam/{sample.TOKEN}/audio/1/3",  # no such take
            f"/jam/{sample.TOKEN}/audio/2/1",  # no such round
            f"/jam/{sample.TOKEN}/audio/1/2",  # its file is gone
            "/jam/%3Cscript%3E",
        ):
            answer = await http.get(path)
            assert (answer.status_code, answer.content) == (404, plain.content), path
        page = (await http.get(f"/jam/{sample.TOKEN}")).text
        assert "This take's audio has expired." in page  # no player for a file gone
        assert page.count("<audio") == 1
        jams.by_token = {revoked.token: revoked} if revoked.token else {}
        for path in (f"/jam/{sample.TOKEN}", f"/jam/{sample.TOKEN}/audio/1/1"):
            answer = await http.get(path)
            assert (answer.status_code, answer.content) == (404, plain.content), path


async def test_a_take_is_served_with_range_requests(tmp_path: Path) -> None:
    jam = sample.jam(tmp_path)
    whole = (tmp_path / "r1t1.mp3").read_bytes()
    async with serve_board(Jams(jam).find) as base, httpx.AsyncClient(base_url=base) as http:
        full = await http.get(f"/jam/{sample.TOKEN}/audio/1/1")
        part = await http.get(f"/jam/{sample.TOKEN}/audio/1/1", headers={"Range": "bytes=100-199"})
        tail = await http.get(f"/jam/{sample.TOKEN}/audio/1/1", headers={"Range": "bytes=-50"})
    assert (full.status_code, full.content) == (200, whole)
    assert full.headers["Content-Type"] == "audio/mpeg"
    assert full.headers["Accept-Ranges"] == "bytes"
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert part.content == whole[100:200]
    assert (tail.status_code, tail.content) == (206, whole[-50:])


async def test_the_json_is_the_same_data_with_an_etag_that_changes_with_the_jam(
    tmp_path: Path,
) -> None:
    jam = sample.jam(tmp_path)
    jams = Jams(jam)
    async with serve_board(jams.find) as base, httpx.AsyncClient(base_url=base) as http:
        first = await http.get(f"/jam/{sample.TOKEN}.json")
        etag = first.headers["ETag"]
        same = await http.get(f"/jam/{sample.TOKEN}.json", headers={"If-None-Match": etag})
        page = (await http.get(f"/jam/{sample.TOKEN}")).text
        current = dataclasses.replace(jam.current, votes_cast=6)
        jams.by_token[sample.TOKEN] = dataclasses.replace(jam, rounds=(current,))
        changed = await http.get(f"/jam/{sample.TOKEN}.json", headers={"If-None-Match": etag})
    assert first.headers["Content-Type"] == "application/json; charset=utf-8"
    data = first.json()
    assert (data["theme"], data["state"], data["round"]) == ("rainy city lo-fi", "voting", 1)
    assert data["contributors"] == ["Ada", "Cy", "Bo"]
    [current_data] = data["rounds"]
    assert current_data["ends_at"] == "2026-12-05T13:30:00Z"
    assert (
        current_data["lyrics"]
        == "[Verse] neon puddles hum along\nwe walk where the streetlights sing"
    )
    assert [t["audio"] for t in current_data["takes"]] == [
        f"{sample.TOKEN}/audio/1/1",  # relative to the JSON's own address
        f"{sample.TOKEN}/audio/1/2",
    ]
    assert [t["votes"] for t in current_data["takes"]] == [None, None]  # counts once closed
    assert f'data-etag="{html.escape(etag)}"' in page  # the version the page shows
    assert (same.status_code, same.content) == (304, b"")
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.json()["rounds"][0]["votes_cast"] == 6


async def test_an_address_past_its_budget_gets_429_with_retry_after(tmp_path: Path) -> None:
    now = [1000.0]
    limit = RateLimit(burst=3, per_second=0.5, clock=lambda: now[0])
    jam = sample.jam(tmp_path)
    async with (
        serve_board(Jams(jam).find, limit=limit) as base,
        httpx.AsyncClient(base_url=base) as http,
    ):
        codes = [(await http.get(f"/jam/{sample.TOKEN}.json")).status_code for _ in range(3)]
        refused = await http.get(f"/jam/{sample.TOKEN}")
        # Behind a proxy on this machine, each client counts on its own.
        other = await http.get(
            f"/jam/{sample.TOKEN}.json", headers={"X-Forwarded-For": "203.0.113.9"}
        )
        now[0] += 2.0  # one request's worth later
        again = await http.get(f"/jam/{sample.TOKEN}.json")
        still = await http.get(f"/jam/{sample.TOKEN}.json")
    assert codes == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    assert refused.headers["Content-Security-Policy"] == CSP
    assert other.status_code == 200
    assert (again.status_code, still.status_code) == (200, 429)


async def test_the_board_files_are_served_with_their_types(tmp_path: Path) -> None:
    async with serve_board(Jams().find) as base, httpx.AsyncClient(base_url=base) as http:
        css = await http.get("/jam-static/board.css")
        js = await http.get("/jam-static/board.js")
        cached = await http.get(
            "/jam-static/board.js", headers={"If-None-Match": js.headers["ETag"]}
        )
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    assert "prefers-color-scheme: dark" in css.text
    assert js.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "If-None-Match" in js.text
    assert cached.status_code == 304


async def test_a_second_round_comes_first_with_the_earlier_round_below(tmp_path: Path) -> None:
    jam = sample.two_rounds(tmp_path)
    async with serve_board(Jams(jam).find) as base, httpx.AsyncClient(base_url=base) as http:
        markup = (await http.get(f"/jam/{sample.TOKEN}")).text
        data = (await http.get(f"/jam/{sample.TOKEN}.json")).json()
    text = _text(markup)
    assert markup.index('id="round-2"') < markup.index("Earlier rounds")
    assert markup.index("Earlier rounds") < markup.index('id="round-1"')
    assert "Voting · Round 2 · Voting ends at 13:55 UTC · 5 votes cast" in text
    assert "This round extends the previous round's winner." in text
    assert "Style rainy city lo-fi, warm bass warm bass Dee" in text
    assert "[Chorus] hold the night, don't let it go Cy" in text
    assert "Round 1 Round closed Take 1 ★ Winner seed 4201 · 0:04 · 4 votes" in text
    assert [r["number"] for r in data["rounds"]] == [2, 1]
    assert [t["votes"] for t in data["rounds"][0]["takes"]] == [None, None, None]
    assert [t["votes"] for t in data["rounds"][1]["takes"]] == [4, 2, 1]
    assert data["contributors"] == ["Ada", "Cy", "Bo", "Dee"]
