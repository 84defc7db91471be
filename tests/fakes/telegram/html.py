"""Telegram's text rules: a port of tdlib's ``parse_html`` (same tags, entity decoding and
error texts), the whitespace trimming of texts and captions, and the ``bot_command`` entities
Telegram finds in a user's text. Offsets are in UTF-16 code units, as on the wire."""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any

USER_LINK_RE = re.compile(r"tg://user\?id=(\d{1,15})")
# tdlib's match_bot_commands: "/cmd" or "/cmd@bot_name" not glued to a word, "/", "<" or ">".
BOT_COMMAND_RE = re.compile(
    r"(?<![\w/<>])/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{3,32}))?(?![\w/<>@])"
)


class HtmlParseError(ValueError):
    """Telegram's reason for rejecting an HTML text (without the "can't parse" prefix)."""


_HTML_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler",
        "tg-emoji", "span", "pre", "code", "blockquote",
    }
)  # fmt: skip
_SPACE_BYTES = frozenset(b" \t\r\n\v\0")  # tdlib's is_space also stops at the terminating NUL
_HEX = frozenset(string.hexdigits.encode())
_ALNUM = frozenset((string.ascii_letters + string.digits).encode())
_ENTITY_NAMES = {b"lt": ord("<"), b"gt": ord(">"), b"amp": ord("&"), b"quot": ord('"')}
_SIMPLE_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _decode_html_entity(data: bytes, pos: int) -> tuple[int, int] | None:
    """(code point, end position) of the entity at ``data[pos] == "&"``, or None when the
    ``&`` is a literal one (tdlib keeps an unknown ``&name`` as text rather than failing)."""

    def at(k: int) -> int:
        return data[k] if k < len(data) else 0

    end = pos + 1
    code = 0
    if at(end) == ord("#"):
        end += 1
        if at(end) == ord("x"):
            end += 1
            while at(end) in _HEX:
                code = code * 16 + int(chr(at(end)), 16)
                end += 1
        else:
            while ord("0") <= at(end) <= ord("9"):
                code = code * 10 + at(end) - ord("0")
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
    else:
        while chr(at(end)).isascii() and chr(at(end)).isalpha():
            end += 1
        named = _ENTITY_NAMES.get(data[pos + 1 : end])
        if named is None:
            return None
        code = named
    if at(end) == ord(";"):
        end += 1
    return code, end


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Text and entities of ``source`` under ``parse_mode=HTML``, exactly as Telegram parses it.

    Raises HtmlParseError with Telegram's message (byte offsets are into the UTF-8 source).
    """
    data = source.encode("utf-8")

    def at(k: int) -> int:
        return data[k] if k < len(data) else 0

    def is_space(c: int) -> bool:
        return c in _SPACE_BYTES

    out = bytearray()
    utf16 = 0
    entities: list[dict[str, Any]] = []
    # open tags: name, argument, utf16 offset and output position where they began
    stack: list[tuple[str, str, int, int]] = []
    i = 0
    while i < len(data):
        c = data[i]
        if c == ord("&"):
            decoded = _decode_html_entity(data, i)
            if decoded is not None:
                code, i = decoded
                if 0xD800 <= code <= 0xDFFF:
                    raise HtmlParseError(
                        "Text contains invalid Unicode characters after decoding HTML entities,"
                        " check for unmatched surrogate code units"
                    )
                out += chr(code).encode("utf-8")
                utf16 += 1 + (code > 0xFFFF)
                continue
        if c != ord("<"):
            if c & 0xC0 != 0x80:  # first byte of a UTF-8 sequence
                utf16 += 1 + (c >= 0xF0)  # 4-byte sequences are surrogate pairs in UTF-16
            out.append(c)
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != ord("/"):
            while not is_space(at(i)) and at(i) != ord(">"):
                i += 1
            if i >= len(data):
                raise HtmlParseError(f"Unclosed start tag at byte offset {begin}")
            tag = data[begin + 1 : i].decode("utf-8", "replace").lower()
            if tag not in _HTML_TAGS:
                raise HtmlParseError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument, i = _parse_attributes(data, tag, begin, i, at, is_space)
            stack.append((tag, argument, utf16, len(out)))
            i += 1  # the ">"
            continue

        # an end tag
        if not stack:
            raise HtmlParseError(f"Unexpected end tag at byte offset {begin}")
        while not is_space(at(i)) and at(i) != ord(">"):
            i += 1
        end_tag = data[begin + 2 : i].decode("utf-8", "replace").lower()
        while i < len(data) and is_space(at(i)):
            i += 1
        if at(i) != ord(">"):
            raise HtmlParseError(f"Unclosed end tag at byte offset {begin}")
        tag, argument, start, out_pos = stack[-1]
        if end_tag and end_tag != tag:
            raise HtmlParseError(
                f'Unmatched end tag at byte offset {begin}, expected "</{tag}>", '
                f'found "</{end_tag}>"'
            )
        stack.pop()
        if utf16 > start:
            _close_entity(entities, tag, argument, start, utf16 - start, bytes(out[out_pos:]))
        i += 1
    if stack:
        raise HtmlParseError(f"Can't find end tag corresponding to start tag {stack[-1][0]}")
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return out.decode("utf-8"), entities


def _parse_attributes(
    data: bytes,
    tag: str,
    begin: int,
    i: int,
    at: Callable[[int], int],
    is_space: Callable[[int], bool],
) -> tuple[str, int]:
    """Read a start tag's attributes from ``i``; return (entity argument, position of ">")."""
    argument = ""
    while at(i) != ord(">"):
        while i < len(data) and is_space(at(i)):
            i += 1
        if at(i) == ord(">"):
            break
        name_begin = i
        while not is_space(at(i)) and at(i) not in (ord("="), ord(">")):
            i += 1
        name = data[name_begin:i].decode("utf-8", "replace")
        if not name:
            raise HtmlParseError(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
        while i < len(data) and is_space(at(i)):
            i += 1
        if at(i) != ord("="):
            if tag == "blockquote" and name == "expandable":  # the one valueless attribute
                argument = "expandable"
                continue
            raise HtmlParseError(
                "Expected equal sign in declaration of an attribute of the tag "
                f'"{tag}" at byte offset {begin}'
            )
        i += 1
        while i < len(data) and is_space(at(i)):
            i += 1
        if i >= len(data):
            raise HtmlParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        if at(i) not in (ord("'"), ord('"')):
            token_begin = i
            while at(i) in _ALNUM or at(i) in (ord("."), ord("-")):
                i += 1
            value = data[token_begin:i].decode("ascii").lower()
            if not is_space(at(i)) and at(i) != ord(">"):
                raise HtmlParseError(f"Unexpected end of name token at byte offset {token_begin}")
        else:
            quote = at(i)
            i += 1
            buf = bytearray()
            while i < len(data) and at(i) != quote:
                if at(i) == ord("&"):
                    decoded = _decode_html_entity(data, i)
                    if decoded is not None:
                        code, i = decoded
                        buf += chr(code).encode("utf-8", "surrogatepass")
                        continue
                buf.append(at(i))
                i += 1
            if at(i) == quote:
                i += 1
            value = buf.decode("utf-8", "replace")
        if i >= len(data):
            raise HtmlParseError(f"Unclosed start tag at byte offset {begin}")
        if tag == "a" and name == "href":
            argument = value
        elif tag == "code" and name == "class" and value.startswith("language-"):
            argument = value[len("language-") :]
        elif tag == "span" and name == "class" and value.startswith("tg-"):
            argument = value[len("tg-") :]
        elif tag == "tg-emoji" and name == "emoji-id":
            argument = value
    if tag == "span" and argument != "spoiler":
        raise HtmlParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
    return argument, i


def _close_entity(
    entities: list[dict[str, Any]],
    tag: str,
    argument: str,
    offset: int,
    length: int,
    inner: bytes,
) -> None:
    entity: dict[str, Any] = {"offset": offset, "length": length}
    last = entities[-1] if entities else None
    same_span = last is not None and last["offset"] == offset and last["length"] == length
    if tag in _SIMPLE_TAG_TYPES:
        entity["type"] = _SIMPLE_TAG_TYPES[tag]
    elif tag == "tg-emoji":
        if not argument.isdigit() or int(argument) == 0:
            raise HtmlParseError("Invalid custom emoji identifier specified")
        entity.update(type="custom_emoji", custom_emoji_id=argument)
    elif tag == "a":
        url = argument or inner.decode("utf-8", "replace")
        if not url:
            return
        mention = USER_LINK_RE.fullmatch(url)
        if mention is not None:  # a mention by id; routes.messages fills in the user (or drops it)
            entity.update(type="text_mention", user={"id": int(mention.group(1))})
        else:
            entity.update(type="text_link", url=url)
    elif tag == "pre":
        # <pre><code class="language-x">...</code></pre> is one pre entity with a language
        if same_span and last is not None and last["type"] == "code" and last.get("language"):
            last["type"] = "pre"
            return
        entity["type"] = "pre"
    elif tag == "code":
        if same_span and last is not None and last["type"] == "pre" and argument:
            last["language"] = argument
            return
        entity["type"] = "code"
        if argument:
            entity["language"] = argument
    else:  # blockquote
        entity["type"] = "expandable_blockquote" if argument == "expandable" else "blockquote"
    entities.append(entity)


def trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram trims leading/trailing whitespace of texts and captions; entities follow."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    left = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - left, 0)
        end = min(entity["offset"] + entity["length"] - left, total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def command_entities(text: str) -> list[dict[str, Any]]:
    """``bot_command`` entities Telegram finds in a user's text (offsets in UTF-16 units)."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: m.start()]),
            "length": utf16_len(m.group(0)),
        }
        for m in BOT_COMMAND_RE.finditer(text)
    ]
