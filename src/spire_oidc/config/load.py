"""Entry points: a file or a text -> a validated :class:`~spire_oidc.config.model.Config`.

Errors are :class:`~spire_oidc.errors.ConfigError` with SPIRE's wording (spire-behavior.md §2)
first; where SPIRE's text says nothing an operator can act on (a type error names hcl's AST
node), what the key expects follows in parentheses, from the model's field metadata. Warnings
are returned in :attr:`Config.warnings`; this module never prints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from spire_oidc.config.gocompat import go_expand
from spire_oidc.config.hcl import decode, parse_document
from spire_oidc.config.model import Config
from spire_oidc.config.schema import SCHEMA, hint_for
from spire_oidc.config.validate import _Validator
from spire_oidc.errors import ConfigError

__all__ = ["expand_env", "load_config", "parse_config"]

EMPTY_FILE = "the configuration file is empty"


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """Expand ``$VAR`` / ``${VAR}`` like SPIRE's ``-expandEnv`` (Go ``os.Expand``).

    Unset variables become empty, ``$$`` becomes ``$``, ``${VAR:-x}`` looks up the name
    ``VAR:-x``, the shell's special names (``$1``, ``$*``, ``$#`` ...) are single characters,
    ``${}`` and an unterminated ``${`` are dropped, and a ``$`` followed by nothing nameable
    (or at the very end) stays.
    """
    return go_expand(text, lambda name: "$" if name == "$" else environ.get(name, ""))


def load_config(
    path: str, *, expand_env: bool = False, environ: Mapping[str, str] | None = None
) -> Config:
    """Read, optionally env-expand (``-expandEnv``), parse and validate the file at ``path``."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(
            f"unable to load configuration: {_go_os_error(path, exc)}", path=path
        ) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8", errors="replace")
        line = prefix.count("\n") + 1
        column = len(prefix) - (prefix.rfind("\n") + 1) + 1
        raise ConfigError(
            f"unable to decode configuration: At {line}:{column}: illegal UTF-8 encoding",
            path=path,
            line=line,
            column=column,
        ) from exc
    if expand_env:
        text = _expand(text, os.environ if environ is None else environ)
    return parse_config(text, path=path)


_expand = expand_env


def _go_os_error(path: str, exc: OSError) -> str:
    """Go's ``*PathError`` text for a failed ``os.ReadFile`` (``open x: no such file ...``)."""
    reason = (exc.strerror or str(exc)).lower()
    op = "read" if isinstance(exc, IsADirectoryError) else "open"
    return f"{op} {path}: {reason}"


def parse_config(text: str, *, path: str = "") -> Config:
    """Parse and validate configuration ``text`` (HCL v1 or JSON); ``path`` names it in errors.

    Raises :class:`ConfigError` with SPIRE's message for the first failing check.
    """
    try:
        root, is_json = parse_document(text, path or None)
        section, warnings = decode(text, root, SCHEMA, path=path or None, is_json=is_json)
    except RecursionError as exc:
        raise ConfigError(
            "unable to decode configuration: document nested too deeply", path=path or None
        ) from exc
    except ConfigError as exc:
        raise _with_hint(exc) from None
    try:
        return _Validator(text, path, is_json, section, warnings).run()
    except ConfigError as exc:
        if not root.items and exc.key == "domains":
            # SPIRE's first check fails on an empty file; say why (ours).
            raise _amend(exc, EMPTY_FILE) from None
        raise


def _with_hint(exc: ConfigError) -> ConfigError:
    """A decode error with what the key expects appended (SPIRE's text stays first)."""
    hint = hint_for(exc.key) if exc.key else ""
    return _amend(exc, hint) if hint else exc


def _amend(exc: ConfigError, note: str) -> ConfigError:
    amended = ConfigError(
        f"{exc.message} ({note})", path=exc.path, line=exc.line, column=exc.column, key=exc.key
    )
    amended.__cause__ = exc.__cause__
    return amended
