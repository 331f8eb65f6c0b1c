"""What the model's field metadata implies: the decoder's schema, every key, type hints.

Nothing here is written by hand per key: :data:`SCHEMA` (the hcl decoder's field list, in Go
declaration order), :data:`REGISTRATION_API` (the legacy block's), :func:`all_keys` (every dotted
key with its :class:`KeySpec`, for the docs contract and the hints) all walk the dataclasses of
:mod:`spire_oidc.config.model`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from spire_oidc.config.hcl import Field, Kind
from spire_oidc.config.model import LEGACY_KEYS, Config, RegistrationAPIConfig
from spire_oidc.config.spec import KeySpec, spec_of

__all__ = ["REGISTRATION_API", "SCHEMA", "all_keys", "fields_of", "hint_for", "schema_for"]


def fields_of(cls: type) -> Iterator[tuple[str, str, KeySpec]]:
    """(dataclass field name, key as written, spec) for each key field of ``cls``, in order."""
    for f in dataclasses.fields(cls):
        spec = spec_of(f)
        if spec is not None:
            yield f.name, spec.name or f.name, spec


def schema_for(cls: type) -> tuple[Field, ...]:
    """The hcl decoder's fields for dataclass ``cls``: its keys in order, dotted ones nested."""
    out: list[Field] = []
    nested: dict[str, list[Field]] = {}  # dotted names ("eab.key_id") -> their block's fields
    for _, name, spec in fields_of(cls):
        if spec.alternatives:
            out.extend(
                Field(alt, Kind.BLOCK, schema_for(alt_cls)) for alt, alt_cls in spec.alternatives
            )
            continue
        sub = schema_for(spec.block) if spec.block is not None and spec.kind is Kind.BLOCK else ()
        item = Field(name.rsplit(".", 1)[-1], spec.kind, sub)
        if "." in name:
            parent = name.split(".", 1)[0]
            if parent not in nested:
                nested[parent] = []
                out.append(Field(parent, Kind.BLOCK))  # placeholder, filled below
            nested[parent].append(item)
        else:
            out.append(item)
    return tuple(
        Field(f.name, f.kind, tuple(nested[f.name])) if f.name in nested and not f.block else f
        for f in out
    )


SCHEMA: tuple[Field, ...] = schema_for(Config) + tuple(
    Field(name, spec.kind) for name, spec in LEGACY_KEYS
)
REGISTRATION_API: tuple[Field, ...] = schema_for(RegistrationAPIConfig)


def _walk(cls: type, prefix: str) -> Iterator[tuple[str, KeySpec]]:
    blocks: set[str] = set()
    for _, name, spec in fields_of(cls):
        if spec.alternatives:
            for alt, alt_cls in spec.alternatives:
                yield prefix + alt, spec
                yield from _walk(alt_cls, f"{prefix}{alt}.")
            continue
        if "." in name:
            parent = name.split(".", 1)[0]
            if parent not in blocks:
                blocks.add(parent)
                yield prefix + parent, dataclasses.replace(spec, kind=Kind.BLOCK, doc="")
        yield prefix + name, spec
        if spec.block is not None:
            yield from _walk(spec.block, f"{prefix}{name}.")


def all_keys() -> dict[str, KeySpec]:
    """Every key the parser knows, dotted (``acme.eab.key_id``), legacy blocks' keys included."""
    out = dict(_walk(Config, ""))
    for name, spec in LEGACY_KEYS:
        out[name] = spec
        if spec.block is not None:
            out.update(_walk(spec.block, name + "."))
    return out


_KEYS = all_keys()


def hint_for(dotted: str) -> str:
    """The hint for key ``dotted`` (case-insensitive, as hcl matches keys), or ""."""
    spec = _KEYS.get(dotted.lower())
    if spec is None or spec.kind is Kind.RAW:
        return ""
    return spec.hint(dotted.lower())
