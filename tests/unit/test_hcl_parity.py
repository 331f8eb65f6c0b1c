"""HCL v1 parity: each scanner/parser rule of hashicorp/hcl v1 with a text it accepts and one it
rejects, with hcl v1's message and position (docs/compatibility.md, "HCL v1 parity").

The ids are the rule ids of the table in docs/compatibility.md.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spire_oidc.config.hcl import DECODE_PREFIX, Field, Kind, Lst, Obj, decode, parse_document
from spire_oidc.errors import ConfigError

SCHEMA = (Field("x", Kind.STRING), Field("n", Kind.INT), Field("l", Kind.STRING_LIST))


def _decode(text: str) -> dict[str, object]:
    root, is_json = parse_document(text, "t.conf")
    section, _ = decode(text, root, SCHEMA, path="t.conf", is_json=is_json)
    return section.values


# (rule id, text, the decoded values of x, n and l that the text gives)
ACCEPTED: list[tuple[str, str, dict[str, object]]] = [
    ("S1-newline", 'x = "a b"\n', {"x": "a b"}),
    ("S2-marker-newline", 'other = "${a\n}"\n', {}),
    ("S3-simple-escapes", r'x = "\a\b\f\n\r\t\v\\\""', {"x": '\a\b\f\n\r\t\v\\"'}),
    ("S4-octal", r'x = "\101\060"', {"x": "A0"}),
    ("S5-hex", r'x = "\x41"', {"x": "A"}),
    ("S6-u4", r'x = "\u00e9"', {"x": "é"}),
    ("S7-u8", r'x = "\U0001F62C"', {"x": "😬"}),
    ("S8-marker", 'x = "${a "b" {c}}"', {"x": '${a "b" {c}}'}),
    ("S9-marker-raw", r'x = "${a\n}\n"', {"x": "${a\\n}\n"}),
    ("S10-eof", 'x = "abc"', {"x": "abc"}),
    ("U1-unquote-unused", 'other = "\\400"\nx = "v"', {"x": "v"}),
    ("E1-comment-not-scanned", 'x = "v" # "\\q', {"x": "v"}),
    ("H1-heredoc", "x = <<EOF\nhi\nEOF\n", {"x": "hi\n"}),
    ("H2-anchor", "x = <<E_1é\nhi\nE_1é\n", {"x": "hi\n"}),
    ("H3-one-char-anchor", "x = <<A\nhi\nA\n", {"x": "hi\n"}),
    ("H4-two-less", "x = <<EOF\nEOF\n", {"x": ""}),
    ("H5-indented-anchor", "x = <<EOF\nhi\n  EOF\n", {"x": "hi\n  "}),
    ("H6-unindent", "x = <<-EOF\n    a\n      b\n    EOF\n", {"x": "a\n  b\n"}),
    ("H6-unindent-ragged", "x = <<-EOF\na\n  EOF\n", {"x": "a\n"}),
    ("H7-dash-anchor-length", "x = <<-EOF\na\n EOF\n", {"x": "a\n"}),
    ("H8-crlf", "x = <<EOF\r\nhi\r\nEOF\r\n", {"x": "hi\n"}),
    ("N1-hex", "x = 0x1F\nn = 0x1F\n", {"x": "0x1F", "n": 31}),
    ("N2-octal", "x = 017\nn = 017\n", {"x": "017", "n": 15}),
    ("N3-float", "other = [1.5, 1e3, .5, -1.5, 0.5e-3]\n", {}),
    ("N4-sign", "x = -5\nn = -5\n", {"x": "-5", "n": -5}),
    ("N5-decimal-after-zero", "other = 09\n", {}),
    ("C1-comments", '# a\n// b\n/* c\n d */ x = /* e */ "v" # f\n', {"x": "v"}),
    ("C2-comment-stars", '/** x = 1 **/ x = "v"', {"x": "v"}),
    ("C3-double-slash", 'x = "v" // c\n', {"x": "v"}),
    ("I1-ident-chars", 'a-b.c_d1 = 1\nx = "v"', {"x": "v"}),
    ("I2-ident-start", '_a = 1\né = 1\nx = "v"', {"x": "v"}),
    ("I3-quoted-key", '"x" = "v"', {"x": "v"}),
    ("I4-bool-word", 'other = true\nx = "v"', {"x": "v"}),
    ("L1-trailing-comma", 'l = ["a", "b",]', {"l": ["a", "b"]}),
    ("L1-extra-commas", 'l = [,"a",, "b"]', {"l": ["a", "b"]}),
    ("L3-literals", 'l = ["a", 1, <<EOF\nh\nEOF\n]', {"l": ["a", "1", "h\n"]}),
    ("L4-nested", "other = [[1] [2], {a = 1}, true]", {}),
    ("L5-empty", "l = []", {"l": []}),
    ("O1-block", 'b { x = "v" }\nc = { x = "v" }\n', {}),
    ("O2-commas", 'a = 1, x = "v",', {"x": "v"}),
    ("O3-labels", 'a "b" c { d = 1 }\nx = "v"', {"x": "v"}),
    ("O4-assign-at-eof", 'x = "v"\nother =', {"x": "v"}),
    ("O5-closed", 'a { }\nx = "a" n = 2', {"x": "a", "n": 2}),
    ("O6-swallowed-value", 'a { b = } }\nx = "v"', {"x": "v"}),
    ("O7-assign", 'x = "v"', {"x": "v"}),
    ("O8-empty", "", {}),
    ("O8-only-comment", "# nothing\n", {}),
    ("O10-nested-block", 'a { b {} }\nx = "v"', {"x": "v"}),
    ("J1-json-detection", ' \n\t{"x": "v"}', {"x": "v"}),
    ("W1-whitespace", 'x\t=\r"v"\r\n', {"x": "v"}),
]

# (rule id, text, hcl v1's message after "unable to decode configuration: ")
REJECTED: list[tuple[str, str, str]] = [
    ("S1-newline", 'x = "a\nb"\n', "At 2:3: literal not terminated"),
    ("S2-marker-newline", 'x = "${a\n}"\n', 'At 1:5: unquote "${a\n}" err: invalid syntax'),
    ("S3-simple-escapes", r'x = "\q"', "At 1:7: illegal char escape"),
    ("S4-octal", r'x = "\18"', "At 1:8: illegal char escape"),
    ("S5-hex", r'x = "\x4"', "At 1:9: illegal char escape"),
    ("S6-u4", r'x = "\u00e"', "At 1:11: illegal char escape"),
    ("S7-u8", r'x = "\U0001F62"', "At 1:15: illegal char escape"),
    ("S8-marker", 'x = "${a"\n', "At 2:1: literal not terminated"),
    ("S9-marker-raw", r'x = "${a\q}"', "At 1:10: illegal char escape"),
    ("S10-eof", 'x = "abc', "At 1:9: literal not terminated"),
    ("U1-unquote-octal", r'x = "\400"', r'At 1:5: unquote "\400" err: invalid syntax'),
    ("U1-unquote-rune", r'x = "\U00110000"', r'At 1:5: unquote "\U00110000" err: invalid syntax'),
    ("U1-unquote-key", '"\\400" = 1', r'At 1:1: unquote "\400" err: invalid syntax'),
    ("E1-last-error-wins", r'x = "\q\w"', "At 1:9: illegal char escape"),
    ("H1-heredoc", "x = <<EOF\nhi\nEOF", "At 3:4: heredoc not terminated"),
    ("H2-anchor", "x = <<EOF x\nhi\nEOF\n", "At 1:10: invalid characters in heredoc anchor"),
    ("H3-zero-anchor", "x = <<\nhi\n", "At 1:7: zero-length heredoc anchor"),
    ("H4-two-less", "x = <EOF\n", "At 1:6: heredoc expected second '<', didn't see it"),
    ("H5-anchor-line", "x = <<EOF\nhi\nEOF x\n", "At 4:1: heredoc not terminated"),
    ("H6-dash-no-anchor", "x = <<-\nhi\n", "At 3:1: heredoc not terminated"),
    ("H7-dash-anchor-length", "x = <<-EOF\na\nEOF\n", "At 4:1: heredoc not terminated"),
    ("H8-lone-cr", "x = <<EOF\rhi\nEOF\n", "At 1:10: invalid characters in heredoc anchor"),
    ("N1-hex", "x = 0x\n", "At 1:7: illegal hexadecimal number"),
    ("N2-octal", "x = 019\n", "At 1:8: illegal octal number"),
    ("N3-float", "x = 1.5\n", "At 1:5: root.x: unknown type for string *ast.LiteralType"),
    ("N4-plus", "x = +5\n", "At 1:5: Unknown token: 1:5 ADD +"),
    ("N4-minus-alone", "x = - 5\n", "At 1:5: Unknown token: 1:5 SUB -"),
    ("N5-decimal-after-zero", "n = 09\n", 'strconv.ParseInt: parsing "09": invalid syntax'),
    ("C1-comments", "x = 1 /* open\n", "At 2:1: comment not terminated"),
    ("C2-comment-stars", '/*/ x = "v"', "At 1:12: comment not terminated"),
    ("C3-single-slash", "x = 1 / 2\n", "At 1:7: expected '/' for comment"),
    ("I1-ident-chars", "a@b = 1\n", "At 1:2: illegal char"),
    (
        "I2-ident-start",
        "1a = 1\n",
        "At 1:1: expected: IDENT | STRING | ASSIGN | LBRACE got: NUMBER",
    ),
    ("I3-single-quotes", "'x' = 1\n", "At 1:1: illegal char"),
    ("I4-bare-value", "x = debug\n", "At 1:5: Unknown token: 1:5 IDENT debug"),
    (
        "L1-missing-comma",
        'l = ["a" "b"]',
        "At 1:10: error parsing list, expected comma or list end, got: STRING",
    ),
    ("L3-ident", "l = [a]", "At 1:6: unexpected token while parsing list: IDENT"),
    (
        "L4-object-needs-comma",
        "l = [{a = 1} {b = 2}]",
        "At 1:14: error parsing list, expected comma or list end, got: LBRACE",
    ),
    (
        "L4-object-error",
        "l = [{a = }]",
        "At 1:6: error while trying to parse object within list: "
        "At 1:12: object expected closing RBRACE got: RBRACK",
    ),
    (
        "L5-unclosed",
        'l = ["a"\n',
        "At 2:1: error parsing list, expected comma or list end, got: EOF",
    ),
    ("L5-unclosed-comma", 'l = ["a",\n', "At 2:1: unexpected token while parsing list: EOF"),
    ("O1-double-assign", "a = = { }", "At 1:5: Unknown token: 1:5 ASSIGN ="),
    ("O2-commas", "a = 1,, b = 2", "At 1:7: expected: IDENT | STRING | ASSIGN | LBRACE got: COMMA"),
    ("O3-labels", "a b = 1", "At 1:5: nested object expected: LBRACE got: ASSIGN"),
    (
        "O4-key-at-eof",
        "BAD",
        "At 1:5: key 'BAD' expected start of object ('{') or assignment ('=')",
    ),
    ("O4-value-in-block", "a { b = }", "At 1:10: object expected closing RBRACE got: EOF"),
    ("O5-unclosed", "a {\n  b = 1\n", "At 3:2: object expected closing RBRACE got: EOF"),
    (
        "O6-extra-brace",
        "a = 1\n}\n",
        "At 2:1: expected: IDENT | STRING | ASSIGN | LBRACE got: RBRACE",
    ),
    ("O7-colon", 'x: "v"', "At 1:2: illegal char"),
    ("O8-no-key-brace", "a = 1\n{ }", "At 2:1: expected: IDENT | STRING got: LBRACE"),
    ("O8-no-key-assign", "= 1", "At 1:1: no object keys found!"),
    (
        "O10-key-in-block",
        "a {\n  b }",
        "At 2:5: key 'b' expected start of object ('{') or assignment ('=')",
    ),
    ("J1-not-go-space", '\x1c{"x": "v"}', "At 1:1: illegal char"),
    ("W1-null", "x = 1\x00\n", "At 1:6: unexpected null character (0x00)"),
]


@pytest.mark.parametrize(("rule", "text", "values"), ACCEPTED, ids=[r[0] for r in ACCEPTED])
def test_hcl_v1_accepts(rule: str, text: str, values: dict[str, object]) -> None:
    """hcl v1 accepts this text; we decode it to the same values."""
    decoded = _decode(text)
    assert {k: decoded[k] for k in values} == values


@pytest.mark.parametrize(("rule", "text", "message"), REJECTED, ids=[r[0] for r in REJECTED])
def test_hcl_v1_rejects(rule: str, text: str, message: str) -> None:
    """hcl v1 rejects this text; we fail with its message and position."""
    with pytest.raises(ConfigError) as info:
        _decode(text)
    assert str(info.value) == DECODE_PREFIX + message
    assert info.value.path == "t.conf"


def test_every_rule_has_both_cases() -> None:
    """Each rule id (its prefix before the first dash) has an accepted and a rejected case."""
    accepted = {r[0].split("-")[0] for r in ACCEPTED}
    rejected = {r[0].split("-")[0] for r in REJECTED}
    missing = sorted((accepted | rejected) - (accepted & rejected))
    assert missing == []


def test_labelled_blocks_nest() -> None:
    """``a "b" c { }`` nests as a -> b -> c, as hcl's key chains are expanded by the decoder."""
    root, _ = parse_document('a "b" c { d = 1 }')
    (a,) = root.items
    assert a.key == "a" and isinstance(a.value, Obj)
    (b,) = a.value.items
    assert b.key == "b" and isinstance(b.value, Obj)
    (c,) = b.value.items
    assert c.key == "c" and isinstance(c.value, Obj) and c.value.items[0].key == "d"


def test_list_elements_carry_their_own_positions() -> None:
    """List elements are positioned where they are written (hcl reports element errors there)."""
    root, _ = parse_document('l = [\n  "a",\n  [1]\n]')
    value = root.items[0].value
    assert isinstance(value, Lst)
    assert [e.pos for e in value.items] == [(2, 3), (3, 3)]


_ALPHABET = 'ab1 0x.e-+_=\n\r\t{}[],"\\$<#/*:@\x00é'


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_ALPHABET, max_size=40))
def test_any_text_gives_a_tree_or_a_config_error(text: str) -> None:
    """Whatever the text, the HCL layer answers with a tree or a ConfigError, never a crash."""
    with contextlib.suppress(ConfigError):
        _decode(text)
