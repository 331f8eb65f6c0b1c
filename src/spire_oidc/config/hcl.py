r"""HCL v1 / JSON text -> typed values, with hashicorp/hcl v1's decoding semantics.

SPIRE decodes its config with ``hcl.Decode`` from hashicorp/hcl v1.0.1-vault-7. We parse with
``pyhcl`` (HCL v1 grammar; JSON when the first non-blank character is ``{``, as hcl does) and
reproduce the decoder on top (grpc-and-config.md §3.4-3.6):

* keys match the schema case-insensitively (Go's ``strings.EqualFold``);
* fields are decoded in the schema's (Go struct) order, and each field from every item with
  that key, in file order: a repeated scalar keeps the last value, a repeated list is
  **concatenated**, a repeated block is **merged** (later values win per field);
* coercions: int fields take numbers or numeric strings (``strconv.ParseInt`` with base 0),
  string fields take numbers as their text, bool fields only real booleans, list fields refuse a
  scalar, block fields refuse anything but objects (JSON arrays of objects are repeated blocks,
  as hcl's JSON parser flattens them);
* error texts are hcl's (``At 4:15: root.set_key_use: unknown type *ast.LiteralType``).

pyhcl keeps the items of every object (we override how it folds them, so duplicates survive),
which is how repeated ``domains`` lists get concatenated like Go. Where pyhcl is more lenient
than hcl v1 we tighten it: unquoted words as values (``log_level = debug``), ``:`` as the
assignment and pyhcl's expression extensions (functions, ternaries, comparisons) are rejected,
and string escapes are hcl's (``\n``, ``\t``, ``\u00e9``, octal, hex; anything else is an
``illegal char escape``), replacing pyhcl's escape rule, which mishandles ``"a\\"``.

Remaining differences, all about text no working SPIRE config contains:

* pyhcl's error wording differs from hcl's; we report ``At line:column:`` with real columns
  (pyhcl reports a character offset) and the last line for "unexpected end of file".
* Arithmetic on numbers (``1 + 2``) is folded instead of rejected; newlines inside quotes are
  accepted. pyhcl's grammar refuses booleans in lists and a number after a string in a list
  (``["a", 1]``), which hcl parses (and SPIRE's only list, ``domains``, never holds).
* ``<<-`` heredocs strip leading tabs only (hcl strips the common indentation); heredocs end
  with a newline, as in hcl.
* A number given to a string field becomes Python's rendering of it (``0x1F`` -> ``"31"``).
* JSON input carries no positions, so JSON type errors have no ``At line:column``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from types import FunctionType
from typing import Any

from hcl.lexer import Lexer as _PyhclLexer
from hcl.parser import HclParser

from spire_oidc.config.domains import go_quote
from spire_oidc.errors import ConfigError

__all__ = [
    "DECODE_PREFIX",
    "Field",
    "Item",
    "Kind",
    "Lit",
    "Lst",
    "Node",
    "Obj",
    "Section",
    "decode",
    "decode_block",
    "decode_strings",
    "line_col",
    "parse_document",
    "parse_go_int",
]

DECODE_PREFIX = "unable to decode configuration: "


# --------------------------------------------------------------------------------------------
# The document tree (what hcl calls the AST), with offsets into the text when known.


@dataclass(frozen=True)
class Node:
    """A value in the document; ``offset`` is where it starts in the text (None for JSON)."""

    offset: int | None


@dataclass(frozen=True)
class Lit(Node):
    """A literal: kind is "string", "heredoc", "number", "float", "bool" or "null"."""

    kind: str
    value: object
    text: str  # the number's text, the string's value


@dataclass(frozen=True)
class Lst(Node):
    """A list value."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Item:
    """One ``key = value`` or ``key { ... }`` in an object."""

    key: str
    key_offset: int | None
    value: Node


@dataclass(frozen=True)
class Obj(Node):
    """An object (a block body or ``{ ... }``); items keep file order and duplicates."""

    items: tuple[Item, ...]


def _go_type(node: Node, *, in_struct_field: bool) -> str:
    """The Go AST type hcl names in its errors for ``node``."""
    if isinstance(node, Lst):
        return "*ast.ListType"
    if isinstance(node, Obj):
        # hcl turns an object value into an ObjectList before decoding a struct field with it.
        return "*ast.ObjectList" if in_struct_field else "*ast.ObjectType"
    return "*ast.LiteralType"


# --------------------------------------------------------------------------------------------
# Parsing: pyhcl with its object folding replaced, plus positions.


class _Tok(str):
    """An objectkey token (IDENTIFIER or STRING) with its kind and offset."""

    kind: str
    offset: int

    def __new__(cls, value: str, kind: str, offset: int) -> _Tok:
        tok = super().__new__(cls, value)
        tok.kind = kind
        tok.offset = offset
        return tok


class _RawObj(list[Any]):
    """pyhcl's object items, unfolded: a list of (key, value) pairs."""


@dataclass(frozen=True)
class _Assigned:
    """A ``key = value`` right-hand side as the grammar saw it."""

    value: object
    symbol: str  # grammar symbol of the value (STRING, number, object, IDENTIFIER, ...)
    op: str  # EQUAL or COLON
    op_offset: int
    value_offset: int  # the terminal's own offset when it is a token, else -1


@dataclass(frozen=True)
class _Unsupported:
    offset: int


def _same_rule(original: Any, rule: str | None = None) -> Callable[[Any], Any]:
    """Override a pyhcl grammar action or lexer rule keeping its place among the rules.

    ply orders productions (and lexer rules) by the function's first line number; that order
    settles the grammar's reduce/reduce choices, its start symbol and which token regex is tried
    first. So the override takes the original's line number, and its rule text (the docstring)
    unless a new ``rule`` is given.
    """

    def wrap(fn: Any) -> Any:
        assert isinstance(fn, FunctionType)
        fn.__doc__ = original.__doc__ if rule is None else rule
        fn.__code__ = fn.__code__.replace(co_firstlineno=original.__code__.co_firstlineno)
        return fn

    return wrap


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}


def _unescape_hcl(body: str) -> str | None:
    """hcl v1's scanEscape: the character for ``\\<body>``, or None for an illegal escape."""
    if body in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[body]
    if len(body) == 1:
        return None  # unknown escape, or too few digits after \\x, \\u, \\U or \\0-7
    base = 8 if body[0] in "01234567" else 16
    digits = body if base == 8 else body[1:]
    try:
        code = int(digits, base)
    except ValueError:
        return None
    # Go stores a rune that is not a valid scalar value as U+FFFD.
    return "\ufffd" if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF else chr(code)


class _Lexer(_PyhclLexer):  # type: ignore[misc]  # pyhcl is untyped
    """pyhcl's lexer with hcl v1's string escapes (see the module docstring)."""

    @_same_rule(
        _PyhclLexer.t_string_escapedchar,
        r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|[0-7]{3}|[\s\S])",
    )
    def t_string_escapedchar(self, t: Any) -> None:
        decoded = _unescape_hcl(t.value[1:])
        if decoded is None:
            # hcl reports the character after the backslash.
            raise ValueError(f"Line 0, column 0, index {t.lexpos + 1}: illegal char escape")
        lexer = t.lexer
        lexer.string_value += lexer.lexdata[lexer.rel_pos : t.lexpos] + decoded
        lexer.rel_pos = lexer.lexpos


class _Parser(HclParser):  # type: ignore[misc]  # pyhcl is untyped
    start = "top"

    def objectlist_flat(self, lt: list[Any], replace: bool) -> _RawObj:
        return _RawObj(lt)

    @_same_rule(HclParser.p_objectkey_0)
    def p_objectkey_0(self, p: Any) -> None:
        p[0] = _Tok(p[1], p.slice[1].type, p.lexpos(1))

    @_same_rule(HclParser.p_objectitem_0)
    def p_objectitem_0(self, p: Any) -> None:
        symbol = p.slice[3].type
        own = p.lexpos(3) if symbol in ("STRING", "IDENTIFIER", "BOOL") else -1
        p[0] = (p[1], _Assigned(p[3], symbol, p.slice[2].type, p.lexpos(2), own))

    @_same_rule(HclParser.p_objectitem_2)
    def p_objectitem_2(self, p: Any) -> None:
        p[0] = (p[1], _Unsupported(p.lexpos(2)))

    def parse(self, s: str, export_comments: str | None = None) -> Any:
        return self.yacc.parse(s, lexer=_Lexer(), debug=False)


_parser: _Parser | None = None
_parser_lock = threading.Lock()


def _parse_hcl(text: str) -> Any:
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = _Parser()  # builds the LALR tables (~30 ms), once per process
        return _parser.parse(text)


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of ``offset`` in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _end_position(text: str) -> tuple[int, int]:
    stripped = text.rstrip()
    return line_col(stripped, len(stripped))


class _Syntax(Exception):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


class _Builder:
    """pyhcl's output -> Node tree; records the first hcl-v1 syntax violation pyhcl tolerated."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.violation: _Syntax | None = None

    def _flag(self, offset: int, message: str) -> None:
        if self.violation is None or offset < self.violation.offset:
            self.violation = _Syntax(offset, message)

    def _value_start(self, after: int) -> int:
        i = after
        while i < len(self.text) and self.text[i] in " \t\r\n":
            i += 1
        return i

    def _string_start(self, close_quote: int) -> int:
        """Offset of the opening quote of the string whose closing quote is at ``close_quote``."""
        i = close_quote - 1
        while i >= 0:
            if self.text[i] == '"':
                backslashes = 0
                j = i - 1
                while j >= 0 and self.text[j] == "\\":
                    backslashes += 1
                    j -= 1
                if backslashes % 2 == 0:
                    return i
            i -= 1
        return close_quote

    def _ident_error(self, offset: int, word: str) -> None:
        line, col = line_col(self.text, offset)
        self._flag(offset, f"Unknown token: {line}:{col} IDENT {word}")

    def _string(self, value: str, close_offset: int, start: int | None = None) -> Lit:
        """A STRING token: quoted (closing quote at ``close_offset``) or a heredoc."""
        if 0 <= close_offset < len(self.text) and self.text[close_offset] == '"':
            return Lit(self._string_start(close_offset), "string", value, value)
        # hcl keeps the newline before the closing marker; pyhcl drops it.
        where = close_offset if start is None else start
        return Lit(where, "heredoc", value + "\n", value + "\n")

    def obj(self, raw: Any, offset: int | None) -> Obj:
        pairs = raw.items() if isinstance(raw, dict) else raw
        items: list[Item] = []
        for key, value in pairs:
            if not isinstance(key, str):
                self._flag(offset or 0, "unsupported expression as a key")
                continue
            key_offset = key.offset if isinstance(key, _Tok) else offset
            if isinstance(key, _Tok) and key.kind == "STRING":
                key_offset = self._string_start(key.offset)
            items.append(Item(str(key), key_offset, self.value(value, key_offset)))
        return Obj(offset, tuple(items))

    def value(self, raw: Any, offset: int | None) -> Node:
        if isinstance(raw, _Assigned):
            return self._assigned(raw)
        if isinstance(raw, _Unsupported):
            self._flag(raw.offset, "unsupported expression")
            return Lit(raw.offset, "null", None, "")
        if isinstance(raw, _RawObj | dict):
            return self.obj(raw, offset)
        if isinstance(raw, list):
            return Lst(offset, tuple(self.value(v, offset) for v in raw))
        if isinstance(raw, _Tok):
            if raw.kind == "IDENTIFIER":
                self._ident_error(raw.offset, str(raw))
                return Lit(raw.offset, "string", str(raw), str(raw))
            return self._string(str(raw), raw.offset)
        if isinstance(raw, bool):
            return Lit(offset, "bool", raw, "true" if raw else "false")
        if isinstance(raw, int):
            return Lit(offset, "number", raw, str(raw))
        if isinstance(raw, float):
            return Lit(offset, "float", raw, repr(raw))
        # Plain strings only come from pyhcl's expression rules (functions, comparisons, ...).
        self._flag(offset or 0, "unsupported expression")
        return Lit(offset, "string", str(raw), str(raw))

    def _assigned(self, a: _Assigned) -> Node:
        start = self._value_start(a.op_offset + 1)
        if a.op == "COLON":
            self._flag(a.op_offset, "illegal char")
        if a.symbol == "IDENTIFIER":
            self._ident_error(start, str(a.value))
            return Lit(start, "string", str(a.value), str(a.value))
        if a.symbol == "STRING" and isinstance(a.value, str) and not isinstance(a.value, _Tok):
            return self._string(a.value, a.value_offset, start)
        if a.symbol in ("function", "booleanexp", "objectbrackets"):
            self._flag(start, "unsupported expression")
        return self.value(a.value, start)


_PYHCL_POSITION = re.compile(r"^Line \d+, column (\d+)(?:, index (\d+))?: (.*)$", re.DOTALL)


def _tidy(message: str) -> str:
    """Drop the tokens the grammar can never see (comments) from pyhcl's "expected" list."""
    head, sep, expected = message.partition("; expected ")
    if not sep:
        return message
    names = [n for n in expected.split(", ") if n not in ("COMMENT", "MULTICOMMENT")]
    names = ["end of file" if n == "$end" else n for n in names]
    return f"{head}; expected {', '.join(names)}"


def _decode_error(
    message: str, path: str | None, pos: tuple[int, int] | None = None
) -> ConfigError:
    if pos is None:
        return ConfigError(DECODE_PREFIX + message, path=path)
    line, col = pos
    return ConfigError(
        f"{DECODE_PREFIX}At {line}:{col}: {message}", path=path, line=line, column=col
    )


def _is_json(text: str) -> bool:
    for ch in text:
        if not ch.isspace():
            return ch == "{"
    return False


def parse_document(text: str, path: str | None = None) -> tuple[Obj, bool]:
    """Parse ``text`` (HCL v1, or JSON when it starts with ``{``) into (root object, is_json).

    Raises :class:`ConfigError` (``unable to decode configuration: At L:C: ...``) when hcl v1
    would refuse the text.
    """
    if _is_json(text):
        return _parse_json(text, path), True
    if not text.strip():
        return Obj(0, ()), False
    builder = _Builder(text)
    try:
        raw = _parse_hcl(text)
    except ValueError as exc:
        message = str(exc)
        m = _PYHCL_POSITION.match(message)
        if m:
            found = _Syntax(int(m.group(2) or m.group(1)), _tidy(m.group(3)))
        else:
            found = _Syntax(len(text), _tidy(message[:1].lower() + message[1:]))
        # The tree is unavailable, so earlier tolerated violations cannot be reported; the
        # parser error is the first problem pyhcl found.
        if found.offset >= len(text.rstrip()):
            raise _decode_error(found.message, path, _end_position(text)) from exc
        raise _decode_error(found.message, path, line_col(text, found.offset)) from exc
    except RecursionError as exc:
        raise _decode_error("document nested too deeply", path) from exc
    except Exception as exc:  # pyhcl has crash bugs on some malformed input (e.g. "/" at EOF)
        raise _decode_error(f"malformed configuration ({type(exc).__name__})", path) from exc
    root = builder.obj(raw, 0)
    if builder.violation is not None:
        v = builder.violation
        raise _decode_error(v.message, path, line_col(text, v.offset))
    return root, False


def _json_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")


def _json_node(value: Any) -> Node:
    if isinstance(value, Node):
        return value
    if isinstance(value, bool):
        return Lit(None, "bool", value, "true" if value else "false")
    if isinstance(value, str):
        return Lit(None, "string", value, value)
    if value is None:
        return Lit(None, "null", None, "null")
    if isinstance(value, list):
        return Lst(None, tuple(_json_node(v) for v in value))
    raise TypeError(type(value).__name__)  # pragma: no cover - json.loads yields nothing else


def _json_object(pairs: list[tuple[str, Any]]) -> Obj:
    items: list[Item] = []
    for key, value in pairs:
        node = _json_node(value)
        # hcl's JSON parser turns a non-empty array of objects into repeated items.
        if isinstance(node, Lst) and node.items and all(isinstance(v, Obj) for v in node.items):
            items.extend(Item(key, None, v) for v in node.items)
        else:
            items.append(Item(key, None, node))
    return Obj(None, tuple(items))


def _parse_json(text: str, path: str | None) -> Obj:
    try:
        root = json.loads(
            text,
            object_pairs_hook=_json_object,
            parse_int=lambda t: Lit(None, "number", int(t), t),
            parse_float=lambda t: Lit(None, "float", float(t), t),
            parse_constant=_json_constant,
        )
    except json.JSONDecodeError as exc:
        raise _decode_error(exc.msg, path, (exc.lineno, exc.colno)) from exc
    except RecursionError as exc:
        raise _decode_error("document nested too deeply", path) from exc
    except ValueError as exc:
        raise _decode_error(str(exc), path) from exc
    if not isinstance(root, Obj):  # pragma: no cover - a text starting with "{" is an object
        raise _decode_error("expected a JSON object", path)
    return root


# --------------------------------------------------------------------------------------------
# Go's strconv.ParseInt(s, 0, 64).

_INT64_MAX = (1 << 63) - 1


def _underscore_ok(s: str) -> bool:
    saw = "^"
    i = 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i = 2
        saw = "0"
        hexa = s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        if "0" <= c <= "9" or (hexa and "a" <= c.lower() <= "f"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


def parse_go_int(s: str) -> int:
    """``strconv.ParseInt(s, 0, 0)`` on a 64-bit platform; ValueError carries Go's text."""
    syntax = ValueError(f"strconv.ParseInt: parsing {go_quote(s)}: invalid syntax")
    out_of_range = ValueError(f"strconv.ParseInt: parsing {go_quote(s)}: value out of range")
    if not s:
        raise syntax
    body = s
    neg = False
    if body[0] in "+-":
        neg = body[0] == "-"
        body = body[1:]
    if not body:
        raise syntax
    base, digits = 10, body
    if body[0] == "0":
        prefix = body[1:2].lower()
        if len(body) >= 3 and prefix in ("b", "o", "x"):
            base, digits = {"b": 2, "o": 8, "x": 16}[prefix], body[2:]
        else:
            base, digits = 8, body[1:]
    value = 0
    underscores = False
    for c in digits:
        if c == "_":
            underscores = True
            continue
        if "0" <= c <= "9":
            d = ord(c) - 48
        elif "a" <= c.lower() <= "z" and c.isascii():
            d = ord(c.lower()) - 87
        else:
            raise syntax
        if d >= base:
            raise syntax
        value = value * base + d
    if underscores and not _underscore_ok(body):
        raise syntax
    if (not neg and value > _INT64_MAX) or (neg and value > _INT64_MAX + 1):
        raise out_of_range
    return -value if neg else value


# --------------------------------------------------------------------------------------------
# Decoding against a schema.


class Kind(Enum):
    """How a field is decoded (the Go type of the struct field)."""

    STRING = "string"
    INT = "int"
    BOOL = "bool"
    STRING_LIST = "[]string"
    BLOCK = "*struct"
    RAW = "raw"  # not decoded: the nodes are kept (legacy keys, decided on later)


@dataclass(frozen=True)
class Field:
    """One known key of a block."""

    name: str
    kind: Kind
    block: tuple[Field, ...] = ()


@dataclass
class Section:
    """A decoded block: the values of the known keys that were present, and where."""

    name: str  # dotted path, "" for the root
    values: dict[str, object] = field(default_factory=dict)
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    raw: dict[str, list[Node]] = field(default_factory=dict)

    def key(self, name: str) -> str:
        """The dotted key of field ``name`` in this section."""
        return f"{self.name}.{name}" if self.name else name

    def has(self, name: str) -> bool:
        """Whether ``name`` was given (for blocks: the block is present)."""
        return name in self.values or name in self.raw

    def text(self, name: str, default: str = "") -> str:
        """A string field's value."""
        value = self.values.get(name, default)
        assert isinstance(value, str)
        return value

    def integer(self, name: str, default: int = 0) -> int:
        """An int field's value."""
        value = self.values.get(name, default)
        assert isinstance(value, int)
        return value

    def flag(self, name: str) -> bool:
        """A bool field's value (False when absent)."""
        value = self.values.get(name, False)
        assert isinstance(value, bool)
        return value

    def strings(self, name: str) -> list[str]:
        """A list field's value (empty when absent)."""
        value = self.values.get(name, [])
        assert isinstance(value, list)
        return [str(v) for v in value]

    def block(self, name: str) -> Section | None:
        """A block field's section, or None when the block is absent."""
        value = self.values.get(name)
        assert value is None or isinstance(value, Section)
        return value

    def position(self, name: str) -> tuple[int, int] | None:
        """Line and column of the (last) value of ``name``, when known."""
        return self.positions.get(name)


class _Decoder:
    def __init__(self, text: str, path: str | None, is_json: bool) -> None:
        self.text = text
        self.path = path
        self.is_json = is_json
        self._unknown_keys: list[tuple[float, int, str]] = []  # (offset, seq, warning)

    @property
    def warnings(self) -> list[str]:
        """Unknown-key warnings in file order (discovery order for JSON)."""
        return [w for _, _, w in sorted(self._unknown_keys)]

    def _pos(self, offset: int | None) -> tuple[int, int] | None:
        if offset is None or self.is_json:
            return None
        return line_col(self.text, offset)

    def _error(self, message: str, node: Node | None, key: str) -> ConfigError:
        pos = self._pos(node.offset) if node is not None else None
        err = _decode_error(message, self.path, pos)
        err.key = key
        return err

    def _plain_error(self, message: str, node: Node, key: str) -> ConfigError:
        """An error hcl returns without a position (strconv errors); we still record it."""
        err = ConfigError(DECODE_PREFIX + message, path=self.path, key=key)
        pos = self._pos(node.offset)
        if pos is not None:
            err.line, err.column = pos
        return err

    def into(self, section: Section, obj: Obj, schema: tuple[Field, ...], go_name: str) -> None:
        """Decode ``obj`` into ``section`` like hcl's decodeStruct (fields in struct order)."""
        known = {f.name for f in schema}
        suggestions = sorted(f.name for f in schema if f.kind is not Kind.RAW)
        for item in obj.items:
            if item.key.casefold() not in known:
                self._unknown(section.key(item.key), item, suggestions)
        for f in schema:
            for item in obj.items:
                if item.key.casefold() != f.name:
                    continue
                self._field(section, f, item, f"{go_name}.{f.name}")

    def _unknown(self, dotted: str, item: Item, known: list[str]) -> None:
        from difflib import get_close_matches

        where = ""
        pos = self._pos(item.key_offset)
        if pos is not None:
            where = f" (line {pos[0]})"
        leaf = dotted.rsplit(".", 1)[-1]
        close = get_close_matches(leaf.casefold(), known, n=1, cutoff=0.75)
        hint = ""
        if close:
            parent = dotted[: -len(leaf)]
            hint = f"; did you mean {go_quote(parent + close[0])}?"
        offset = float("inf") if item.key_offset is None else item.key_offset
        warning = f"unknown key {go_quote(dotted)}{where} is ignored{hint}"
        self._unknown_keys.append((offset, len(self._unknown_keys), warning))

    def _field(self, section: Section, f: Field, item: Item, go_name: str) -> None:
        node = item.value
        key = section.key(f.name)
        pos = self._pos(node.offset)
        if pos is not None:
            section.positions[f.name] = pos
        if f.kind is Kind.RAW:
            section.raw.setdefault(f.name, []).append(node)
        elif f.kind is Kind.STRING:
            section.values[f.name] = self.string(node, go_name, key, in_struct_field=True)
        elif f.kind is Kind.INT:
            section.values[f.name] = self._int(node, go_name, key)
        elif f.kind is Kind.BOOL:
            if not (isinstance(node, Lit) and node.kind == "bool"):
                found = _go_type(node, in_struct_field=True)
                raise self._error(f"{go_name}: unknown type {found}", node, key)
            section.values[f.name] = bool(node.value)
        elif f.kind is Kind.STRING_LIST:
            existing = section.values.setdefault(f.name, [])
            assert isinstance(existing, list)
            existing.extend(self.string_list(node, go_name, key))
        else:
            if not isinstance(node, Obj):
                found = _go_type(node, in_struct_field=False)
                raise self._error(f"{go_name}: not an object type for struct ({found})", node, key)
            child = section.values.get(f.name)
            if not isinstance(child, Section):
                child = Section(key)
                section.values[f.name] = child
            self.into(child, node, f.block, go_name)

    def string(self, node: Node, go_name: str, key: str, *, in_struct_field: bool) -> str:
        """hcl's decodeString: strings and heredocs as is, numbers as their text."""
        if isinstance(node, Lit) and node.kind in ("string", "heredoc", "number", "float"):
            return node.text
        found = _go_type(node, in_struct_field=in_struct_field)
        raise self._error(f"{go_name}: unknown type for string {found}", node, key)

    def _int(self, node: Node, go_name: str, key: str) -> int:
        if isinstance(node, Lit) and node.kind in ("number", "string"):
            try:
                return parse_go_int(node.text)
            except ValueError as exc:
                raise self._plain_error(str(exc), node, key) from None
        found = _go_type(node, in_struct_field=True)
        raise self._error(f"{go_name}: unknown type {found}", node, key)

    def string_list(self, node: Node, go_name: str, key: str) -> Iterator[str]:
        """hcl's decodeSlice into []string."""
        if isinstance(node, Lst):
            for i, element in enumerate(node.items):
                yield self.string(element, f"{go_name}[{i}]", key, in_struct_field=False)
        elif isinstance(node, Obj):
            # hcl decodes each item of the object as an element; an empty object adds nothing.
            if node.items:
                message = f"{go_name}[0]: unknown type for string *ast.ObjectItem"
                raise self._error(message, node, key)
        else:
            raise self._error(
                f"unknown slice type: {_go_type(node, in_struct_field=True)}", node, key
            )


def decode(
    text: str, root: Obj, schema: tuple[Field, ...], *, path: str | None, is_json: bool
) -> tuple[Section, list[str]]:
    """Decode the document ``root`` (parsed from ``text``) against ``schema``.

    Returns the root section and the unknown-key warnings. Raises :class:`ConfigError` with
    hcl's message (prefixed ``unable to decode configuration: ``), the dotted key and, for
    HCL input, the line and column of the offending value.
    """
    decoder = _Decoder(text, path, is_json)
    section = Section("")
    decoder.into(section, root, schema, "root")
    return section, decoder.warnings


def decode_strings(
    text: str, nodes: list[Node], *, path: str | None, is_json: bool, key: str
) -> list[str]:
    """Decode raw nodes as a string or a list of strings (used for the legacy ``domain``)."""
    decoder = _Decoder(text, path, is_json)
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Lst):
            out.extend(decoder.string_list(node, f"root.{key}", key))
        else:
            out.append(decoder.string(node, f"root.{key}", key, in_struct_field=True))
    return out


def decode_block(
    text: str,
    nodes: list[Node],
    schema: tuple[Field, ...],
    *,
    path: str | None,
    is_json: bool,
    key: str,
) -> tuple[Section, list[str]]:
    """Decode raw nodes as repeated blocks of ``schema`` (used for ``registration_api``)."""
    decoder = _Decoder(text, path, is_json)
    section = Section(key)
    for node in nodes:
        if not isinstance(node, Obj):
            found = _go_type(node, in_struct_field=False)
            raise decoder._error(f"root.{key}: not an object type for struct ({found})", node, key)
        decoder.into(section, node, schema, f"root.{key}")
    return section, decoder.warnings
