"""HCL v1's parser, rule for rule (``hcl/parser/parser.go``), plus the JSON form.

A recursive-descent parser over :mod:`hcl_lexer`'s tokens that follows hashicorp/hcl v1's
parser and its messages (written from its rules, no code copied):

* a file is a list of items; an item is one or more keys (identifiers or strings) followed by
  ``=`` and a value, or by ``{`` and an object; ``a b = 1`` is "nested object expected";
  items may be separated by commas; a key with no value at the very end of the file is a
  "key 'x' expected start of object ('{') or assignment ('=')" error, but ``x =`` at the very
  end is silently dropped (hcl treats the end-of-file token there as the end of the list);
* values: number, float, bool, string, heredoc, ``{`` object ``}``, ``[`` list ``]``; anything
  else is ``Unknown token: L:C TYPE text``;
* lists hold literals, objects and lists, separated by commas (trailing and leading commas
  allowed; no comma is needed after a nested list);
* errors are ``At L:C: message``; when the scanner reported errors, the last of them wins.

The JSON form (text starting with ``{``) is read by Python's ``json`` and given the same tree.
"""

from __future__ import annotations

import json
from typing import Any

from spire_oidc.config.hcl_ast import Item, Lit, Lst, Node, Obj, Pos, unindent_heredoc, unquote
from spire_oidc.config.hcl_lexer import Scanner, T, Token

__all__ = ["HclSyntaxError", "JsonSyntaxError", "parse_hcl", "parse_json"]


class HclSyntaxError(Exception):
    """hcl's ``PosError``: a message at a 1-based line and column."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"At {line}:{column}: {message}")
        self.line = line
        self.column = column
        self.message = message


class JsonSyntaxError(Exception):
    """A JSON document hcl would refuse; position when known."""

    def __init__(self, message: str, pos: Pos | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


class _Eof(Exception):
    """hcl's ``errEofToken``: the end of the text where an item or value could start."""


def _at(tok: Token, message: str) -> HclSyntaxError:
    return HclSyntaxError(tok.line, tok.column, message)


def _literal(tok: Token) -> Lit:
    pos = (tok.line, tok.column)
    if tok.type is T.STRING:
        value = unquote(tok.text)
        if value is None:
            return Lit(pos, "string", None, "", f"unquote {tok.text} err: invalid syntax")
        return Lit(pos, "string", value, value)
    if tok.type is T.HEREDOC:
        value = unindent_heredoc(tok.text)
        return Lit(pos, "heredoc", value, value)
    if tok.type is T.BOOL:
        return Lit(pos, "bool", tok.text == "true", tok.text)
    kind = "number" if tok.type is T.NUMBER else "float"
    return Lit(pos, kind, tok.text, tok.text)


def _item(keys: list[Token], value: Node) -> Item:
    """An item; a key chain ``a "b" c { }`` nests as a = { b = { c = {} } } (hcl's decoder
    expands a chain one key at a time)."""
    for key in reversed(keys[1:]):
        name, error = _key_text(key)
        value = Obj((key.line, key.column), (Item(name, (key.line, key.column), value, error),))
    name, error = _key_text(keys[0])
    return Item(name, (keys[0].line, keys[0].column), value, error)


def _key_text(key: Token) -> tuple[str, str | None]:
    if key.type is T.IDENT:
        return key.text, None
    value = unquote(key.text)
    if value is None:
        return key.text, f"unquote {key.text} err: invalid syntax"
    return value, None


class _Parser:
    def __init__(self, text: str) -> None:
        self.scanner = Scanner(text)
        self.tok = Token(T.ILLEGAL, 0, 0, "")
        self._buffered = False

    def scan(self) -> Token:
        """The next token that is not a comment (or the one pushed back by ``unscan``)."""
        if self._buffered:
            self._buffered = False
            return self.tok
        self.tok = self.scanner.scan()
        while self.tok.type is T.COMMENT:
            self.tok = self.scanner.scan()
        return self.tok

    def unscan(self) -> None:
        self._buffered = True

    def object_list(self, in_object: bool) -> tuple[list[Item], HclSyntaxError | None]:
        items: list[Item] = []
        while True:
            if in_object:
                tok = self.scan()
                self.unscan()
                if tok.type is T.RBRACE:
                    break
            try:
                item = self.object_item()
            except _Eof:
                break
            except HclSyntaxError as err:
                return items, err
            items.append(item)
            if self.scan().type is not T.COMMA:
                self.unscan()
        return items, None

    def object_item(self) -> Item:
        keys, err = self.object_key()
        if keys and isinstance(err, _Eof):
            err = None
        if keys and err is not None and self.tok.type is T.RBRACE:
            err = None
            # hcl rewrites the current token's type so that objectType does not take the
            # brace as the end of the object.
            self.tok = Token(T.EOF, self.tok.line, self.tok.column, self.tok.text)
        if err is not None:
            raise err
        value: Node
        if self.tok.type is T.ASSIGN:
            value = self.value()
        elif self.tok.type is T.LBRACE:
            value = self.object_type(keys[0])
        else:
            names = " ".join(k.text for k in keys)
            expected = "expected start of object ('{') or assignment ('=')"
            raise _at(self.tok, f"key '{names}' {expected}")
        self.scan()  # hcl looks ahead for a line comment
        self.unscan()
        return _item(keys, value)

    def object_key(self) -> tuple[list[Token], Exception | None]:
        keys: list[Token] = []
        while True:
            tok = self.scan()
            if tok.type is T.EOF:
                return keys, _Eof()
            if tok.type is T.ASSIGN:
                if len(keys) > 1:
                    return [], _at(tok, "nested object expected: LBRACE got: ASSIGN")
                if not keys:
                    return [], _at(tok, "no object keys found!")
                return keys, None
            if tok.type is T.LBRACE:
                if not keys:
                    return keys, _at(tok, "expected: IDENT | STRING got: LBRACE")
                return keys, None
            if tok.type in (T.IDENT, T.STRING):
                keys.append(tok)
            elif tok.type is T.ILLEGAL:
                return keys, _at(tok, "illegal character")
            else:
                message = f"expected: IDENT | STRING | ASSIGN | LBRACE got: {tok.type.name}"
                return keys, _at(tok, message)

    def value(self) -> Node:
        tok = self.scan()
        if tok.type in (T.NUMBER, T.FLOAT, T.BOOL, T.STRING, T.HEREDOC):
            return _literal(tok)
        if tok.type is T.LBRACE:
            return self.object_type(tok)
        if tok.type is T.LBRACK:
            return self.list_type()
        if tok.type is T.EOF:
            raise _Eof
        raise _at(tok, f"Unknown token: {tok}")

    def object_type(self, at: Token) -> Obj:
        """An object after its ``{``; ``at`` gives its position (the key for a block)."""
        items, err = self.object_list(True)
        if err is not None and self.tok.type is not T.RBRACE:
            raise err
        tok = self.scan()
        if tok.type is not T.RBRACE:
            raise _at(tok, f"object expected closing RBRACE got: {tok.type.name}")
        return Obj((at.line, at.column), tuple(items))

    def list_type(self) -> Lst:
        start = self.tok
        items: list[Node] = []
        need_comma = False
        while True:
            tok = self.scan()
            if need_comma and tok.type not in (T.COMMA, T.RBRACK):
                message = f"error parsing list, expected comma or list end, got: {tok.type.name}"
                raise _at(tok, message)
            if tok.type in (T.BOOL, T.NUMBER, T.FLOAT, T.STRING, T.HEREDOC):
                items.append(_literal(tok))
                need_comma = True
            elif tok.type is T.COMMA:
                self.scan()  # hcl looks ahead for a line comment
                self.unscan()
                need_comma = False
            elif tok.type is T.LBRACE:
                try:
                    items.append(self.object_type(tok))
                except HclSyntaxError as err:
                    message = f"error while trying to parse object within list: {err}"
                    raise _at(tok, message) from err
                need_comma = True
            elif tok.type is T.LBRACK:
                try:
                    items.append(self.list_type())
                except HclSyntaxError as err:
                    message = f"error while trying to parse list within list: {err}"
                    raise _at(tok, message) from err
            elif tok.type is T.RBRACK:
                return Lst((start.line, start.column), tuple(items))
            else:
                raise _at(tok, f"unexpected token while parsing list: {tok.type.name}")


def parse_hcl(text: str) -> Obj:
    """Parse HCL v1 ``text`` into its root object; raises :class:`HclSyntaxError` like hcl."""
    parser = _Parser(text.replace("\r\n", "\n"))  # hcl's Parse normalises line endings
    items, err = parser.object_list(False)
    if parser.scanner.error is not None:
        line, column, message = parser.scanner.error
        raise HclSyntaxError(line, column, message)
    if err is not None:
        raise err
    return Obj((1, 1), tuple(items))


# --------------------------------------------------------------------------------------------
# JSON


def _json_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")


def _json_node(value: object) -> Node:
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


def _json_object(pairs: list[tuple[str, object]]) -> Obj:
    items: list[Item] = []
    for key, value in pairs:
        node = _json_node(value)
        # hcl's JSON parser turns a non-empty array of objects into repeated items.
        if isinstance(node, Lst) and node.items and all(isinstance(v, Obj) for v in node.items):
            items.extend(Item(key, None, v) for v in node.items)
        else:
            items.append(Item(key, None, node))
    return Obj(None, tuple(items))


def parse_json(text: str) -> Obj:
    """Parse the JSON form into the same tree (no positions); raises JsonSyntaxError."""
    try:
        root = json.loads(
            text,
            object_pairs_hook=_json_object,
            parse_int=lambda t: Lit(None, "number", t, t),
            parse_float=lambda t: Lit(None, "float", t, t),
            parse_constant=_json_constant,
        )
    except json.JSONDecodeError as exc:
        raise JsonSyntaxError(exc.msg, (exc.lineno, exc.colno)) from exc
    except ValueError as exc:
        raise JsonSyntaxError(str(exc)) from exc
    if not isinstance(root, Obj):  # pragma: no cover - a text starting with "{" is an object
        raise JsonSyntaxError("expected a JSON object")
    return root
