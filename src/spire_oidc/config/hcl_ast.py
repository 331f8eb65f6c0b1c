"""The document tree (hcl v1's AST) and how hcl v1 turns a literal token into its value.

Positions are hcl's 1-based (line, column); JSON input carries none. A string's value is
computed when the tree is built, but an error in it (where hcl's ``Token.Value()`` panics) is
only raised by the decoder when it decodes that value, as SPIRE only fails then.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Item", "Lit", "Lst", "Node", "Obj", "Pos", "unindent_heredoc", "unquote"]

Pos = tuple[int, int]


@dataclass(frozen=True)
class Node:
    """A value in the document; ``pos`` is where hcl says it starts (None for JSON)."""

    pos: Pos | None


@dataclass(frozen=True)
class Lit(Node):
    """A literal: kind is "string", "heredoc", "number", "float", "bool" or "null".

    ``text`` is the decoded string for strings and heredocs and the token's text for numbers
    (hcl hands a number to a string field as written: ``0x1F`` stays ``"0x1F"``). ``error`` is
    set when hcl cannot unquote the string (the message of its panic).
    """

    kind: str
    value: object
    text: str
    error: str | None = None


@dataclass(frozen=True)
class Lst(Node):
    """A list value (``pos`` is its ``[``)."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Item:
    """One ``key = value`` or ``key { ... }`` in an object.

    ``key_error`` is set when hcl cannot unquote a quoted key (it panics when it filters the
    object's items, that is when the object is decoded).
    """

    key: str
    key_pos: Pos | None
    value: Node
    key_error: str | None = None


@dataclass(frozen=True)
class Obj(Node):
    """An object (a block body or ``{ ... }``); items keep file order and duplicates."""

    items: tuple[Item, ...]


_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_HEX_WIDTH = {"x": 2, "u": 4, "U": 8}
_MAX_RUNE = 0x10FFFF


def _rune(code: int) -> str:
    # Go encodes a surrogate or out-of-range rune as U+FFFD.
    return "\ufffd" if 0xD800 <= code <= 0xDFFF or code > _MAX_RUNE else chr(code)


def _unquote_char(s: str, i: int) -> tuple[str, int] | None:
    """hcl's unquoteChar at ``s[i]``: (decoded text, next index) or None (ErrSyntax)."""
    c = s[i]
    if c == '"':
        return None
    if c != "\\":
        return c, i + 1
    if i + 1 >= len(s):
        return None
    c = s[i + 1]
    i += 2
    if c in _SIMPLE:
        return _SIMPLE[c], i
    if c in ("\\", '"'):
        return c, i
    if c in _HEX_WIDTH:
        n = _HEX_WIDTH[c]
        digits = s[i : i + n]
        if len(digits) < n or any(d not in "0123456789abcdefABCDEF" for d in digits):
            return None
        value = int(digits, 16)
        if c != "x" and value > _MAX_RUNE:
            return None
        # \xHH is one byte in Go; as text we keep the code point (no working config has one
        # above 0x7F, which would make Go's string invalid UTF-8).
        return _rune(value), i + n
    if c in "01234567":
        digits = c + s[i : i + 2]
        if len(digits) < 3 or any(d not in "01234567" for d in digits):
            return None
        value = int(digits, 8)
        if value > 255:
            return None
        return chr(value), i + 2
    return None


def unquote(text: str) -> str | None:
    """hcl v1's ``strconv.Unquote`` of a quoted token, or None where it fails (ErrSyntax).

    Escapes are decoded outside ``${ }`` markers and kept as written inside them; a newline
    anywhere, an unbalanced marker or an octal escape above ``\\377`` fails.
    """
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return None
    s = text[1:-1]
    if "\n" in s:
        return None
    out: list[str] = []
    i = 0
    while i < len(s):
        if s.startswith("${", i):
            out.append("${")
            i += 2
            braces = 1
            while i < len(s) and braces > 0:
                r = s[i]
                if r == "\ufffd":  # Go's utf8.RuneError, even when written literally
                    return None
                out.append(r)
                i += 1
                braces += {"{": 1, "}": -1}.get(r, 0)
            if braces != 0:
                return None
            if i >= len(s):
                break
        step = _unquote_char(s, i)
        if step is None:
            return None
        out.append(step[0])
        i = step[1]
    return "".join(out)


def unindent_heredoc(text: str) -> str:
    """hcl v1's ``unindentHeredoc``: a heredoc token's value (its byte arithmetic included).

    ``<<EOF`` keeps the body (up to and including its last newline); ``<<-EOF`` removes the
    closing line's indentation from every line when all lines carry it, and otherwise keeps
    the body with trailing blanks trimmed.
    """
    raw = text.encode()
    idx = raw.find(b"\n")
    if idx < 0:  # a malformed heredoc: the scanner's error fails the parse before any decode
        return ""
    if raw[2:3] != b"-":
        return raw[idx + 1 : len(raw) - idx + 1].decode(errors="replace")
    lines = raw[idx + 1 : len(raw) - idx + 2].split(b"\n")
    prefix = lines[-1]
    if not all(line.startswith(prefix) for line in lines):
        return raw[idx + 1 : len(raw) - idx + 1].decode(errors="replace").rstrip(" \t")
    out = [line[len(prefix) :] for line in lines[:-1]] + [b""]
    return b"\n".join(out).decode(errors="replace")
