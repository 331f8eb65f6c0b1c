"""Field metadata: how each configuration key is written, what it defaults to, whose it is.

The configuration dataclasses (:mod:`spire_oidc.config.model`) declare their keys with
:func:`key`, which stores a :class:`KeySpec` in the dataclass field's metadata. Everything that
needs to know the keys reads them from there (:mod:`spire_oidc.config.schema`): the decoder's
schema, the type hints appended to decode errors, ``validate -json``'s effective configuration,
and the documentation contract test. A new key is one field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any

from spire_oidc.config.hcl import Kind

__all__ = ["KeySpec", "Origin", "key", "spec_of"]


class Origin(Enum):
    """Whose key it is: SPIRE's provider knows it, or only this provider does."""

    SPIRE = "SPIRE"
    OURS = "ours"


@dataclass(frozen=True)
class KeySpec:
    """One configuration key, as the file spells it.

    ``name`` may be dotted (``eab.key_id``): the field then lives in a nested block of that name.
    ``block`` is the dataclass a block decodes into; ``alternatives`` lists (block name,
    dataclass) pairs when one field holds one of several blocks (the key source).
    """

    kind: Kind
    origin: Origin
    doc: str
    name: str = ""  # "" = the dataclass field's name
    example: str = ""  # a value as written in the file, for hints
    choices: tuple[str, ...] = ()  # the accepted values, for hints
    duration: bool = False  # a Go duration string, held as float seconds
    secret: bool = False  # redacted in the effective configuration
    effective: bool = True  # shown in the effective configuration
    block: type | None = None
    alternatives: tuple[tuple[str, type], ...] = ()

    def hint(self, dotted: str) -> str:
        """What the key expects, in the words an operator would write it."""
        leaf = dotted.rsplit(".", 1)[-1]
        example = self.example or "…"
        if self.choices:
            return f"one of: {', '.join(self.choices)}"
        if self.kind is Kind.STRING_LIST:
            return f"expected a list of strings, e.g. {leaf} = [{example}]"
        if self.kind is Kind.BOOL:
            return "expected true or false"
        if self.kind is Kind.INT:
            return f"expected a whole number, e.g. {leaf} = {self.example or '1'}"
        if self.kind is Kind.BLOCK:
            return f"expected a block, e.g. {leaf} {{ … }}"
        if self.duration:
            return f'expected a duration such as "{self.example or "10s"}"'
        return f'expected a string, e.g. {leaf} = "{example}"'


def key(
    default: Any = dataclasses.MISSING,
    *,
    kind: Kind,
    origin: Origin,
    doc: str,
    name: str = "",
    example: str = "",
    choices: tuple[str, ...] = (),
    duration: bool = False,
    secret: bool = False,
    effective: bool = True,
    block: type | None = None,
    alternatives: tuple[tuple[str, type], ...] = (),
    factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field that is a configuration key (``default`` as in ``dataclasses.field``)."""
    spec = KeySpec(
        kind=kind,
        origin=origin,
        doc=doc,
        name=name,
        example=example,
        choices=choices,
        duration=duration,
        secret=secret,
        effective=effective,
        block=block,
        alternatives=alternatives,
    )
    return dataclasses.field(
        default=default, default_factory=factory, repr=not secret, metadata={"hcl": spec}
    )


def spec_of(f: dataclasses.Field[Any]) -> KeySpec | None:
    """The key a dataclass field declares, or None for a derived field (host, port, path...)."""
    spec = f.metadata.get("hcl")
    return spec if isinstance(spec, KeySpec) else None
