"""HCL v1's scanner, rule for rule: text -> tokens with hcl's line:column positions.

SPIRE reads its config with hashicorp/hcl v1 (``hcl/scanner/scanner.go``). This module follows
that scanner's rules, including its quirks, so that our ``validate`` accepts and rejects exactly
what SPIRE does and reports the same position (written from the rules, no code copied):

* positions count characters (Go runes): a token's column is that of its first character; an
  error's is that of the last character read when it was found; each scan at the end of the
  text moves the end-of-file column one further (as hcl's ``next()`` does);
* errors do not stop scanning: the parser asks for more tokens and **the last error wins**
  (``Parser.Parse`` keeps only the last one it was told about);
* whitespace is space, tab, ``\\n`` and ``\\r``; ``#`` and ``//`` comments run to the end of
  the line, ``/* */`` comments do not nest; a lone ``/`` is "expected '/' for comment";
* identifiers start with a letter or ``_`` and go on with letters, digits, ``_``, ``-`` and
  ``.``; ``true`` and ``false`` are BOOL;
* numbers: decimal, ``0x`` hex, leading-``0`` octal, fractions and exponents, an optional
  leading ``-``; ``-`` before a non-digit is SUB, ``+`` is ADD (both rejected by the parser);
* quoted strings may not hold a raw newline except inside a ``${ }`` marker, whose braces are
  counted; escapes are ``\\a \\b \\f \\n \\r \\t \\v \\\\ \\"``, three octal digits, ``\\x``
  + 2, ``\\u`` + 4 and ``\\U`` + 8 hex digits;
* heredocs ``<<ANCHOR`` / ``<<-ANCHOR`` end at a line holding only optional whitespace, the
  anchor and optional ``\\r``, followed by a newline.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum

__all__ = ["EOF", "Scanner", "T", "Token"]

EOF = ""  # what next() and peek() return at the end (hcl's rune(0))


class T(Enum):
    """hcl v1's token types (their names appear in hcl's error messages)."""

    ILLEGAL = 0
    EOF = 1
    COMMENT = 2
    IDENT = 3
    NUMBER = 4
    FLOAT = 5
    BOOL = 6
    STRING = 7
    HEREDOC = 8
    LBRACK = 9
    LBRACE = 10
    COMMA = 11
    PERIOD = 12
    RBRACK = 13
    RBRACE = 14
    ASSIGN = 15
    ADD = 16
    SUB = 17


@dataclass(frozen=True)
class Token:
    """One token: its type, 1-based line and column, and its text as written."""

    type: T
    line: int
    column: int
    text: str

    def __str__(self) -> str:
        # hcl's Token.String(), used by "Unknown token: %+v".
        return f"{self.line}:{self.column} {self.type.name} {self.text}"


_SINGLE = {
    "[": T.LBRACK,
    "]": T.RBRACK,
    "{": T.LBRACE,
    "}": T.RBRACE,
    ",": T.COMMA,
    "=": T.ASSIGN,
    "+": T.ADD,
}


def _is_letter(ch: str) -> bool:
    if ch == EOF:
        return False
    return "a" <= ch <= "z" or "A" <= ch <= "Z" or ch == "_" or (ord(ch) >= 0x80 and ch.isalpha())


def _is_digit(ch: str) -> bool:
    if ch == EOF:
        return False
    return "0" <= ch <= "9" or (ord(ch) >= 0x80 and unicodedata.category(ch) == "Nd")


def _is_decimal(ch: str) -> bool:
    return ch != EOF and "0" <= ch <= "9"


def _is_hex(ch: str) -> bool:
    return ch != EOF and ch in "0123456789abcdefABCDEF"


def _digit_val(ch: str) -> int:
    if _is_hex(ch):
        return int(ch, 16)
    return 16


class Scanner:
    """hcl v1's scanner over ``src`` (already CRLF-normalised, as hcl's ``Parse`` does)."""

    def __init__(self, src: str) -> None:
        self.src = src
        self._i = 0  # offset of the next character
        self._line = 1
        self._col = 0  # column of the last character read (0 right after a newline)
        self._prev = (0, 1, 0)
        self._last_char_len = 0
        self._last_line_len = 0
        self.error: tuple[int, int, str] | None = None  # the last error: line, column, message

    # -- reading characters --------------------------------------------------------------

    def _next(self) -> str:
        if self._i >= len(self.src):
            self._col += 1  # hcl advances the column on every read at the end
            self._last_char_len = 0
            return EOF
        ch = self.src[self._i]
        self._prev = (self._i, self._line, self._col)
        self._col += 1
        self._last_char_len = 1
        self._i += 1
        if ch == "\n":
            self._line += 1
            self._last_line_len = self._col
            self._col = 0
        if ch == "\x00":
            self._err("unexpected null character (0x00)")
            return EOF
        if ch == "\ue123":
            self._err("unicode code point U+E123 reserved for internal use")
            return "\ufffd"
        return ch

    def _unread(self) -> None:
        self._i, self._line, self._col = self._prev

    def _peek(self) -> str:
        if self._i >= len(self.src) or self.src[self._i] == "\x00":
            return EOF
        return self.src[self._i]

    def _err(self, message: str) -> None:
        if self._col > 0:
            line, col = self._line, self._col
        elif self._last_line_len > 0:
            line, col = self._line - 1, self._last_line_len
        else:
            line, col = 1, 1
        self.error = (line, col, message)

    # -- tokens --------------------------------------------------------------------------

    def scan(self) -> Token:
        """The next token (comments included); errors are recorded in ``self.error``."""
        ch = self._next()
        while ch in (" ", "\t", "\n", "\r"):
            ch = self._next()
        start = self._i - self._last_char_len
        if self._col > 0:
            line, col = self._line, self._col
        else:
            line, col = self._line - 1, self._last_line_len
        tok = self._token_type(ch)
        return Token(tok, line, col, self.src[start : self._i])

    def _token_type(self, ch: str) -> T:
        if _is_letter(ch):
            word = self._identifier()
            return T.BOOL if word in ("true", "false") else T.IDENT
        if _is_decimal(ch):
            return self._number(ch)
        if ch == EOF:
            return T.EOF
        if ch == '"':
            self._string()
            return T.STRING
        if ch in ("#", "/"):
            self._comment(ch)
            return T.COMMENT
        if ch == ".":
            if _is_decimal(self._peek()):
                self._exponent(self._mantissa(self._peek()))
                return T.FLOAT
            return T.PERIOD
        if ch == "<":
            self._heredoc()
            return T.HEREDOC
        if ch in _SINGLE:
            return _SINGLE[ch]
        if ch == "-":
            if _is_decimal(self._peek()):
                return self._number(self._next())
            return T.SUB
        self._err("illegal char")
        return T.ILLEGAL

    def _identifier(self) -> str:
        start = self._i - self._last_char_len
        ch = self._next()
        while _is_letter(ch) or _is_digit(ch) or ch in ("-", "."):
            ch = self._next()
        if ch != EOF:
            self._unread()
        return self.src[start : self._i]

    def _comment(self, ch: str) -> None:
        if ch == "#" or (ch == "/" and self._peek() != "*"):
            if ch == "/" and self._peek() != "/":
                self._err("expected '/' for comment")
                return
            ch = self._next()
            while ch not in ("\n", EOF):
                ch = self._next()
            if ch != EOF:
                self._unread()
            return
        if ch == "/":
            self._next()
            ch = self._next()  # the character after "/*"
        while True:
            if ch == EOF:
                self._err("comment not terminated")
                return
            before, ch = ch, self._next()
            if before == "*" and ch == "/":
                return

    def _number(self, ch: str) -> T:
        if ch == "0":
            ch = self._next()
            if ch in ("x", "X"):
                ch = self._next()
                found = False
                while _is_hex(ch):
                    ch = self._next()
                    found = True
                if not found:
                    self._err("illegal hexadecimal number")
                if ch != EOF:
                    self._unread()
                return T.NUMBER
            illegal_octal = False
            while _is_decimal(ch):
                ch = self._next()
                if ch in ("8", "9"):  # hcl checks the digit *after* each digit
                    illegal_octal = True
            if ch in ("e", "E"):
                self._exponent(ch)
                return T.FLOAT
            if ch == ".":
                self._fraction_tail(self._fraction(ch))
                return T.FLOAT
            if illegal_octal:
                self._err("illegal octal number")
            if ch != EOF:
                self._unread()
            return T.NUMBER
        self._mantissa(ch)
        ch = self._next()
        if ch in ("e", "E"):
            self._exponent(ch)
            return T.FLOAT
        if ch == ".":
            self._fraction_tail(self._fraction(ch))
            return T.FLOAT
        if ch != EOF:
            self._unread()
        return T.NUMBER

    def _mantissa(self, ch: str) -> str:
        scanned = False
        while _is_decimal(ch):
            ch = self._next()
            scanned = True
        if scanned and ch != EOF:
            self._unread()
        return ch

    def _fraction(self, ch: str) -> str:
        if ch == ".":
            ch = self._mantissa(self._peek())
        return ch

    def _fraction_tail(self, ch: str) -> None:
        if ch in ("e", "E"):
            self._exponent(self._next())

    def _exponent(self, ch: str) -> str:
        if ch in ("e", "E"):
            ch = self._next()
            if ch in ("-", "+"):
                ch = self._next()
            ch = self._mantissa(ch)
        return ch

    def _heredoc(self) -> None:
        if self._next() != "<":
            self._err("heredoc expected second '<', didn't see it")
            return
        start = self._i
        ch = self._next()
        if ch == "-":
            ch = self._next()
        while _is_letter(ch) or _is_digit(ch):
            ch = self._next()
        if ch == EOF:
            self._err("heredoc not terminated")
            return
        if ch == "\r" and self._peek() == "\n":
            ch = self._next()
        if ch != "\n":
            self._err("invalid characters in heredoc anchor")
            return
        ident = self.src[start : self._i - self._last_char_len]
        if not ident:
            self._err("zero-length heredoc anchor")
            return
        anchor = ident[1:] if ident[0] == "-" else ident
        closing = re.compile(r"[ \t\n\v\f\r]*" + re.escape(anchor) + r"\r*")
        line_start = self._i
        while True:
            ch = self._next()
            if ch == "\n":
                line = self.src[line_start : self._i - 1]
                # hcl compares the line's length with the anchor *including* a "-".
                if len(line) >= len(ident) and closing.fullmatch(line):
                    return
                line_start = self._i
            if ch == EOF:
                self._err("heredoc not terminated")
                return

    def _string(self) -> None:
        braces = 0
        while True:
            ch = self._next()
            if (ch == "\n" and braces == 0) or ch == EOF:
                self._err("literal not terminated")
                return
            if ch == '"' and braces == 0:
                return
            if braces == 0 and ch == "$" and self._peek() == "{":
                braces += 1
                self._next()
            elif braces > 0 and ch == "{":
                braces += 1
            if braces > 0 and ch == "}":
                braces -= 1
            if ch == "\\":
                self._escape()

    def _escape(self) -> None:
        ch = self._next()
        if ch != EOF and ch in 'abfnrtv\\"':
            return
        if ch != EOF and ch in "01234567":
            self._digits(ch, 8, 3)
        elif ch == "x":
            self._digits(self._next(), 16, 2)
        elif ch == "u":
            self._digits(self._next(), 16, 4)
        elif ch == "U":
            self._digits(self._next(), 16, 8)
        else:
            self._err("illegal char escape")

    def _digits(self, ch: str, base: int, n: int) -> None:
        start = n
        while n > 0 and _digit_val(ch) < base:
            ch = self._next()
            if ch == EOF:
                break
            n -= 1
        if n > 0:
            self._err("illegal char escape")
        if n != start and ch != EOF:
            self._unread()
