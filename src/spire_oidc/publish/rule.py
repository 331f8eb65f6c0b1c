"""The no-rollback rule and the state object it reads (pure, no I/O).

Several replicas may publish to one place; their sources may lag one another by seconds. A
replica whose key set is *older* than the stored one must leave the store alone, or the store
would flap between the old and the new set (and, after a removal, re-advertise a retired key).
Kids are random strings, so age cannot be read from them: the store keeps a small record beside
the documents, :data:`~spire_oidc.publish.render.STATE_KEY`, written with a conditional request
before the documents::

    {"format": 1, "generation": 7,
     "published": {"kid-b": 6, "kid-c": 7},   # each kid served now -> generation it appeared in
     "retired": {"kid-a": 7}}                 # kids removed from the published set -> when

**The rule.** A replica with key set ``S`` may replace the stored set ``P`` only if

1. ``S`` holds no retired kid (a retired kid never comes back: SPIRE's kids are random), and
2. every kid it would remove (``P - S``) is *superseded* in the replica's view: either the
   replica's own source has delivered that kid earlier in this process and no longer does, or
   ``S`` holds a kid that appeared later than it (a kid published in a later generation, or a
   kid the store has never seen at all, which is newer than everything the store recorded).

Otherwise the replica is **behind**: it writes nothing, reports ``behind``, and decides again
on its next key change. Adding kids is always allowed (SPIRE adds a key hours before it signs
with it). A record that is missing (first publication, or a store written by another tool)
allows the write; the write creates it with ``CREATE``, so of two first publishers one wins and
the other decides again against the record the winner wrote. An empty key set can replace a
non-empty one only through clause 2's first branch (the source itself delivered the removal).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from spire_oidc.publish.render import STATE_KEY
from spire_oidc.storage.base import StorageError

FORMAT: Final = 1
MAX_RETIRED: Final = 1024  # the retired record keeps the most recent removals only
MAX_STATE_BYTES: Final = 1 << 20


def _format_error(message: str) -> StorageError:
    """The stored record is not one this version wrote: never overwritten, reported invalid."""
    return StorageError(f"{STATE_KEY}: {message}", reason="invalid")


@dataclass(frozen=True)
class PublishState:
    """The record beside the documents (see the module docstring)."""

    generation: int = 0
    published: Mapping[str, int] = field(default_factory=dict)
    retired: Mapping[str, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        doc = {
            "format": FORMAT,
            "generation": self.generation,
            "published": dict(sorted(self.published.items())),
            "retired": dict(sorted(self.retired.items())),
        }
        return json.dumps(doc, indent=2).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> PublishState:
        if len(data) > MAX_STATE_BYTES:
            raise _format_error("the publish state object is too large")
        try:
            doc = json.loads(data)
        except ValueError as exc:  # UnicodeDecodeError is one
            raise _format_error(f"the publish state object is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise _format_error("the publish state object has an unknown format")
        generation = doc.get("generation")
        if not isinstance(generation, int) or generation < 0:
            raise _format_error("the publish state object has no valid generation")
        return cls(generation, _kid_map(doc.get("published")), _kid_map(doc.get("retired")))

    def successor(self, kids: Iterable[str]) -> PublishState:
        """The record after publishing ``kids`` (one generation later)."""
        gen = self.generation + 1
        new = set(kids)
        published = {k: self.published.get(k, gen) for k in sorted(new)}
        retired = {k: g for k, g in self.retired.items() if k not in new}
        retired.update({k: gen for k in self.published if k not in new})
        if len(retired) > MAX_RETIRED:
            keep = sorted(retired.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_RETIRED]
            retired = dict(keep)
        return PublishState(gen, published, retired)


def _kid_map(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        raise _format_error("the publish state object has no valid kid map")
    out: dict[str, int] = {}
    for kid, gen in value.items():
        if not isinstance(kid, str) or not isinstance(gen, int):
            raise _format_error("the publish state object has an invalid kid entry")
        out[kid] = gen
    return out


@dataclass(frozen=True)
class Verdict:
    """May this replica replace the stored set, and if not, why (for the log)."""

    allowed: bool
    retired_kids: tuple[str, ...] = ()  # kids of ours the store has retired
    newer_kids: tuple[str, ...] = ()  # stored kids we would remove without having seen go


def decide(state: PublishState | None, kids: Iterable[str], seen_removed: set[str]) -> Verdict:
    """Apply the no-rollback rule to our ``kids`` against the stored ``state``.

    ``seen_removed``: kids our own source delivered earlier in this process and no longer does.
    """
    if state is None:
        return Verdict(True)
    ours = set(kids)
    retired = tuple(sorted(k for k in ours if k in state.retired))
    if retired:
        return Verdict(False, retired_kids=retired)
    # The latest generation any of our kids appeared in; a kid the store never saw is newer
    # than everything it recorded.
    newest = max(
        (state.published.get(k, state.generation + 1) for k in ours),
        default=-1,
    )
    blocked = tuple(
        sorted(
            k
            for k, gen in state.published.items()
            if k not in ours and k not in seen_removed and gen >= newest
        )
    )
    return Verdict(not blocked, newer_kids=blocked)
