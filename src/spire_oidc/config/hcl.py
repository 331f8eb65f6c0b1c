r"""HCL v1 / JSON text -> typed values, with hashicorp/hcl v1's parsing and decoding semantics.

SPIRE decodes its config with ``hcl.Decode`` from hashicorp/hcl v1.0.1-vault-7. The text is
JSON when its first non-blank character is ``{`` (read with Python's ``json``), HCL v1
otherwise, read by our own scanner and parser (:mod:`hcl_lexer`, :mod:`hcl_parser`), which
follow hcl v1's rules, messages and positions (``docs/compatibility.md``, "HCL v1 parity").
This module decodes the tree like hcl's decoder (grpc-and-config.md §3.4-3.6):

* keys match the schema case-insensitively (Go's ``strings.EqualFold``);
* fields are decoded in the schema's (Go struct) order, and each field from every item with
  that key, in file order: a repeated scalar keeps the last value, a repeated list is
  **concatenated**, a repeated block is **merged** (later values win per field);
* coercions: int fields take numbers or numeric strings (``strconv.ParseInt`` with base 0),
  string fields take strings, heredocs and integers as written (not floats), bool fields only
  real booleans, list fields refuse a scalar, block fields refuse anything but objects (JSON
  arrays of objects are repeated blocks, as hcl's JSON parser flattens them);
* error texts are hcl's (``At 4:15: root.set_key_use: unknown type *ast.LiteralType``);
* a string hcl cannot unquote (``"\400"``, a newline inside ``${ }``) makes hcl panic when it
  decodes that value or key; we fail there with the panic's text, positioned.

Remaining differences: JSON input carries no positions (JSON errors have no ``At line:col``
for type errors) and JSON syntax errors are Python's; ``\xHH`` above 0x7F is the code point
(Go stores the raw byte).
"""

from __future__ import annotations

from collections.abc import Iterator

from spire_oidc.config.domains import go_quote
from spire_oidc.config.gocompat import parse_go_int
from spire_oidc.config.hcl_ast import Item, Lit, Lst, Node, Obj, Pos
from spire_oidc.config.hcl_parser import HclSyntaxError, JsonSyntaxError, parse_hcl, parse_json
from spire_oidc.config.hcl_schema import Field, Kind, Section, as_type
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


def _go_type(node: Node, *, in_struct_field: bool) -> str:
    """The Go AST type hcl names in its errors for ``node``."""
    if isinstance(node, Lst):
        return "*ast.ListType"
    if isinstance(node, Obj):
        # hcl turns an object value into an ObjectList before decoding a struct field with it.
        return "*ast.ObjectList" if in_struct_field else "*ast.ObjectType"
    return "*ast.LiteralType"


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of ``offset`` in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _decode_error(message: str, path: str | None, pos: Pos | None = None) -> ConfigError:
    if pos is None:
        return ConfigError(DECODE_PREFIX + message, path=path)
    line, col = pos
    return ConfigError(
        f"{DECODE_PREFIX}At {line}:{col}: {message}", path=path, line=line, column=col
    )


def _go_is_space(ch: str) -> bool:
    """Go's ``unicode.IsSpace`` (Python's ``isspace`` also counts U+001C..U+001F)."""
    return ch in "\t\n\v\f\r \x85\xa0" or (ord(ch) > 0xFF and ch.isspace())


def _is_json(text: str) -> bool:
    """hcl's lexMode: JSON when the first non-space character is ``{``."""
    for ch in text:
        if not _go_is_space(ch):
            return ch == "{"
    return False


def parse_document(text: str, path: str | None = None) -> tuple[Obj, bool]:
    """Parse ``text`` (HCL v1, or JSON when it starts with ``{``) into (root object, is_json).

    Raises :class:`ConfigError` (``unable to decode configuration: At L:C: ...``) when hcl v1
    would refuse the text.
    """
    try:
        if _is_json(text):
            return parse_json(text), True
        return parse_hcl(text), False
    except HclSyntaxError as exc:
        raise _decode_error(exc.message, path, (exc.line, exc.column)) from exc
    except JsonSyntaxError as exc:
        raise _decode_error(exc.message, path, exc.pos) from exc
    except RecursionError as exc:
        raise _decode_error("document nested too deeply", path) from exc


# --------------------------------------------------------------------------------------------
# Go's strconv.ParseInt(s, 0, 64).


# --------------------------------------------------------------------------------------------
# Decoding against a schema.


class _Decoder:
    def __init__(self, text: str, path: str | None, is_json: bool) -> None:
        self.text = text
        self.path = path
        self.is_json = is_json
        self._unknown_keys: list[tuple[tuple[float, float], int, str]] = []  # (pos, seq, text)

    @property
    def warnings(self) -> list[str]:
        """Unknown-key warnings in file order (discovery order for JSON)."""
        return [w for _, _, w in sorted(self._unknown_keys)]

    def _pos(self, pos: Pos | None) -> Pos | None:
        return None if self.is_json else pos

    def _error(self, message: str, node: Node | None, key: str) -> ConfigError:
        pos = self._pos(node.pos) if node is not None else None
        err = _decode_error(message, self.path, pos)
        err.key = key
        return err

    def _plain_error(self, message: str, node: Node, key: str) -> ConfigError:
        """An error hcl returns without a position (strconv errors); we still record it."""
        err = ConfigError(DECODE_PREFIX + message, path=self.path, key=key)
        pos = self._pos(node.pos)
        if pos is not None:
            err.line, err.column = pos
        return err

    def _check_unquoted(self, node: Lit, key: str) -> None:
        """Fail where hcl's Token.Value() panics: a string it cannot unquote."""
        if node.error is not None:
            raise self._error(node.error, node, key)

    def into(self, section: Section, obj: Obj, schema: tuple[Field, ...], go_name: str) -> None:
        """Decode ``obj`` into ``section`` like hcl's decodeStruct (fields in struct order)."""
        known = {f.name for f in schema}
        suggestions = sorted(f.name for f in schema if f.kind is not Kind.RAW)
        for item in obj.items:
            if item.key_error is not None:
                # hcl unquotes every item's key when it filters the object for a field.
                err = _decode_error(item.key_error, self.path, self._pos(item.key_pos))
                err.key = section.key(item.key)
                raise err
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
        pos = self._pos(item.key_pos)
        if pos is not None:
            where = f" (line {pos[0]})"
        leaf = dotted.rsplit(".", 1)[-1]
        close = get_close_matches(leaf.casefold(), known, n=1, cutoff=0.75)
        hint = ""
        if close:
            parent = dotted[: -len(leaf)]
            hint = f"; did you mean {go_quote(parent + close[0])}?"
        where_sort = (float("inf"), 0.0) if item.key_pos is None else item.key_pos
        warning = f"unknown key {go_quote(dotted)}{where} is ignored{hint}"
        self._unknown_keys.append((where_sort, len(self._unknown_keys), warning))

    def _field(self, section: Section, f: Field, item: Item, go_name: str) -> None:
        node = item.value
        key = section.key(f.name)
        pos = self._pos(node.pos)
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
            existing = as_type(list, section.values.setdefault(f.name, []), key)
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
        if isinstance(node, Lit) and node.kind in ("string", "heredoc", "number"):
            self._check_unquoted(node, key)
            return node.text
        found = _go_type(node, in_struct_field=in_struct_field)
        raise self._error(f"{go_name}: unknown type for string {found}", node, key)

    def _int(self, node: Node, go_name: str, key: str) -> int:
        if isinstance(node, Lit) and node.kind in ("number", "string"):
            self._check_unquoted(node, key)
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
