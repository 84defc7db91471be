"""The jam board's HTML, rendered on the server from :func:`bot.jamboard.view.board_data`:
it reads fine without JavaScript, and board.js keeps it live by fetching it again and
swapping the parts that changed.

Every piece of user text goes through ``_e`` (html.escape, quotes too). No inline script or
style anywhere: the Content-Security-Policy allows only the board's own files. Addresses are
relative (``../jam-static/...``, ``<token>/audio/...``), so the board works behind a proxy
that serves it under a path of its own.

The live swap (board.js) relies on these marks:
- ``data-live`` with an id: replaced whole when it changed (it holds no player);
- ``data-item`` with an id: a take card, appended to its list (the parent's id) when new,
  never replaced, so a playing <audio> keeps playing;
- ``#jam[data-round]``: a new round reloads the page (once nothing plays)."""

from __future__ import annotations

import html
from typing import Any

STYLESHEET = "../jam-static/board.css"
SCRIPT = "../jam-static/board.js"
ICON = "../jam-static/icon.svg"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clock(iso: str) -> str:
    """``2026-12-05T14:32:00Z`` → ``14:32 UTC`` (what a reader without JavaScript sees)."""
    return f"{iso[11:16]} UTC"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _status(data: dict[str, Any], current: dict[str, Any]) -> str:
    state = data["state"]
    parts = [
        f'<span class="state state-{_e(state)}">{_e(data["state_text"])}</span>',
        f'<span class="round-no">Round {data["round"]}</span>',
    ]
    if current["ends_at"]:
        what = "Collecting ends" if current["ends_what"] == "collecting" else "Voting ends"
        parts.append(
            f'<span class="ends">{what} <time id="countdown" datetime="{_e(current["ends_at"])}">'
            f"at {_clock(current['ends_at'])}</time></span>"
        )
    if current["state"] in ("rendering", "voting", "closed") and current["votes_cast"]:
        cast = current["votes_cast"]
        parts.append(f'<span class="cast">{cast} vote{"" if cast == 1 else "s"} cast</span>')
    return f'<p class="status" id="status" data-live>{" · ".join(parts)}</p>'


def _take(number: int, take: dict[str, Any]) -> str:
    key = f"take-{number}-{take['take']}"
    facts = []
    if take["seed"] is not None:
        facts.append(f'<span class="seed">seed {_e(take["seed"])}</span>')
    if take["duration"]:
        facts.append(f'<span class="length">{_duration(take["duration"])}</span>')
    if take["votes"] is not None:
        votes = take["votes"]
        facts.append(f'<span class="votes">{votes} vote{"" if votes == 1 else "s"}</span>')
    badge = '<span class="badge">★ Winner</span>' if take["winner"] else ""
    meta = (
        f'<div class="take-meta" id="{key}-meta" data-live><h3>Take {take["take"]}</h3>{badge}'
        f'<p class="facts">{" · ".join(facts)}</p></div>'
    )
    if take["audio"]:
        player = (
            f'<audio controls preload="none" src="{_e(take["audio"])}"></audio>'
            f'<a class="download" href="{_e(take["audio"])}" '
            f'download="{_e(take["download_name"])}">Download</a>'
        )
    else:
        waiting = {
            "making": "On its way…",
            "failed": "This take failed.",
            "gone": "This take's audio has expired.",
            "made": "",
        }[take["state"]]
        player = f'<p class="waiting">{waiting}</p>'
    classes = "take winner" if take["winner"] else "take"
    return (
        f'<li class="{classes}" id="{key}" data-item>{meta}'
        f'<div class="player" id="{key}-player" data-live>{player}</div></li>'
    )


def _takes(round: dict[str, Any]) -> str:
    number = round["number"]
    cards = "".join(_take(number, take) for take in round["takes"])
    if round["state"] == "collecting":
        note = "The takes are made when collecting ends: add tags and lines in the chat."
    elif round["state"] == "rendering" and len(round["takes"]) < round["takes_asked"]:
        note = "The takes are being made…"
    elif not round["takes"]:
        note = "No takes in this round."
    else:
        note = ""
    return (
        f'<ol class="takes" id="takes-{number}">{cards}</ol>'
        f'<p class="note" id="takes-note-{number}" data-live>{_e(note)}</p>'
    )


def _credited(contribution: dict[str, Any]) -> str:
    """One tag or line and who added it."""
    return (
        f'<li><span class="text">{_e(contribution["text"])}</span> '
        f'<span class="by">{_e(contribution["author"])}</span></li>'
    )


def _words(round: dict[str, Any]) -> str:
    number = round["number"]
    tags = [c for c in round["contributions"] if c["part"] == "tag"]
    lines = [c for c in round["contributions"] if c["part"] == "line"]
    tag_items = "".join(_credited(c) for c in tags)
    line_items = "".join(_credited(c) for c in lines)
    lyrics = (
        f'<ol class="lyrics">{line_items}</ol>'
        if lines
        else '<p class="empty">No lines yet (an instrumental, unless someone adds some).</p>'
    )
    base = ""
    if round["builds_on_winner"]:
        how = "extends" if round["extended"] else "builds on"
        base = f'<p class="base">This round {how} the previous round\'s winner.</p>'
    return (
        f'<div class="words" id="words-{number}" data-live>{base}'
        f'<h3>Style</h3><p class="tags">{_e(round["tags"])}</p>'
        + (f'<ul class="tag-list">{tag_items}</ul>' if tags else "")
        + f"<h3>Lyrics</h3>{lyrics}</div>"
    )


def _round(round: dict[str, Any], *, current: bool) -> str:
    number = round["number"]
    heading = (
        f"<h2>Round {number}</h2>"
        if current
        else f'<h2>Round {number} <span class="state">{_e(round["state_text"])}</span></h2>'
    )
    return (
        f'<section class="round{" current" if current else ""}" id="round-{number}">'
        f"{heading}{_takes(round)}{_words(round)}</section>"
    )


def _contributors(data: dict[str, Any]) -> str:
    names = data["contributors"]
    items = "".join(f"<li>{_e(name)}</li>" for name in names)
    body = f'<ul class="people">{items}</ul>' if names else '<p class="empty">No one yet.</p>'
    return (
        f'<section class="contributors" id="contributors" data-live><h2>Contributors</h2>'
        f'{body}<p class="host">Hosted by {_e(data["host"])}</p></section>'
    )


def render_page(data: dict[str, Any], *, json_name: str, etag: str, poll_ms: int = 3000) -> str:
    """The whole page. ``json_name``: the JSON's address relative to the page;
    ``etag``: the JSON's, so board.js knows which version the page shows; ``poll_ms``: how
    often board.js asks."""
    current, *earlier = data["rounds"]
    older = "".join(_round(r, current=False) for r in earlier)
    earlier_part = (
        f'<section class="earlier"><h2 class="earlier-title">Earlier rounds</h2>{older}</section>'
        if earlier
        else ""
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{_e(data['theme'])} · AceJam jam</title>"
        f'<link rel="icon" href="{ICON}" type="image/svg+xml">'
        f'<link rel="stylesheet" href="{STYLESHEET}">'
        f'<script src="{SCRIPT}" defer></script></head>'
        f'<body><main id="jam" data-round="{data["round"]}" data-json="{_e(json_name)}" '
        f'data-etag="{_e(etag)}" data-every="{poll_ms}">'
        '<header class="hero"><p class="kicker">AceJam · community jam</p>'
        f"<h1>{_e(data['theme'])}</h1>{_status(data, current)}</header>"
        f"{_round(current, current=True)}{_contributors(data)}{earlier_part}"
        "<footer><p>Made together in the chat with AceJam. "
        '<span id="live-note">Reload the page for the newest.</span></p></footer>'
        "</main></body></html>\n"
    )
