"""``validate -json``: the configuration as it takes effect, derived from the model's metadata.

SPIRE's key names in SPIRE's order, every key present with its default applied, legacy keys
folded into their modern form, absent optional blocks ``None``, durations in seconds, the
source under its block name (the other two ``None``), secret keys redacted, Windows-only keys
(ignored here) left out. A key added to the model appears here with no code of its own.
"""

from __future__ import annotations

from spire_oidc.config.model import Config
from spire_oidc.config.schema import fields_of

__all__ = ["effective_config", "effective_values"]

REDACTED = "<redacted>"


def effective_config(cfg: Config) -> dict[str, object]:
    """The effective configuration of ``cfg`` as JSON-ready values."""
    return effective_values(cfg)


def effective_values(obj: object) -> dict[str, object]:
    """The keys of model instance ``obj`` as they take effect (see the module docstring)."""
    out: dict[str, object] = {}
    groups: dict[str, dict[str, object]] = {}  # dotted keys ("eab.key_id") -> their block
    for field_name, name, spec in fields_of(type(obj)):
        if not spec.effective:
            continue
        value = getattr(obj, field_name)
        if spec.alternatives:
            for alt, alt_cls in spec.alternatives:
                out[alt] = effective_values(value) if isinstance(value, alt_cls) else None
            continue
        if spec.block is not None:
            shown: object = None if value is None else effective_values(value)
        elif spec.secret and value not in (None, ""):
            shown = REDACTED
        elif isinstance(value, tuple):
            shown = list(value)
        elif spec.duration and isinstance(value, float):
            shown = int(value) if value.is_integer() else value
        else:
            shown = value
        if "." in name:
            parent, leaf = name.split(".", 1)
            if parent not in groups:
                groups[parent] = {}
                out[parent] = None
            groups[parent][leaf] = shown
        else:
            out[name] = shown
    for parent, values in groups.items():
        # A block of ours written as flat fields shows when any of its keys is set.
        if any(v not in (None, "", False, []) for v in values.values()):
            out[parent] = values
    return out
