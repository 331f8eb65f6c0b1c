"""The schema hcl decodes against (Go struct fields) and the decoded sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from spire_oidc.config.hcl_ast import Node

__all__ = ["Field", "Kind", "Section", "as_type"]

_T = TypeVar("_T")


def as_type(kind: type[_T], value: object, key: str) -> _T:
    """``value`` as ``kind``; a TypeError names the key when the schema and the caller disagree."""
    if not isinstance(value, kind):
        raise TypeError(f"{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


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
        return as_type(str, self.values.get(name, default), self.key(name))

    def integer(self, name: str, default: int = 0) -> int:
        """An int field's value."""
        return as_type(int, self.values.get(name, default), self.key(name))

    def flag(self, name: str) -> bool:
        """A bool field's value (False when absent)."""
        return as_type(bool, self.values.get(name, False), self.key(name))

    def strings(self, name: str) -> list[str]:
        """A list field's value (empty when absent)."""
        return [str(v) for v in as_type(list, self.values.get(name, []), self.key(name))]

    def block(self, name: str) -> Section | None:
        """A block field's section, or None when the block is absent."""
        value = self.values.get(name)
        return None if value is None else as_type(Section, value, self.key(name))

    def position(self, name: str) -> tuple[int, int] | None:
        """Line and column of the (last) value of ``name``, when known."""
        return self.positions.get(name)
