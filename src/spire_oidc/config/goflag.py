"""A small, faithful model of Go's ``flag`` package (ExitOnError), for SPIRE-compatible CLIs.

Single or double dash, ``-flag=value`` or ``-flag value`` (bool flags take no separate value),
parsing stops at the first positional argument or ``--``; ``-h``/``-help`` ask for usage.
"""

from __future__ import annotations

from dataclasses import dataclass

from spire_oidc.errors import ProviderError

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


@dataclass(frozen=True)
class Flag:
    name: str
    usage: str
    default: str | bool
    is_bool: bool = False
    type_name: str = "string"  # shown in usage for non-bool flags, as Go's UnquoteUsage does


class FlagError(ProviderError):
    """A command-line mistake; Go prints the message and the usage, then exits 2."""


class HelpRequested(Exception):
    """``-h`` or ``-help``: Go prints the usage and exits 0."""


def parse(flags: list[Flag], args: list[str]) -> tuple[dict[str, str | bool], list[str]]:
    """Parse ``args``; returns (values by flag name, remaining positional arguments)."""
    by_name = {f.name: f for f in flags}
    values: dict[str, str | bool] = {f.name: f.default for f in flags}
    i = 0
    while i < len(args):
        arg = args[i]
        if len(arg) < 2 or not arg.startswith("-"):
            break
        if arg == "--":
            i += 1
            break
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name.startswith("-") or name.startswith("="):
            raise FlagError(f"bad flag syntax: {arg}")
        value: str | None = None
        if "=" in name:
            name, value = name.split("=", 1)
        flag = by_name.get(name)
        if flag is None:
            if name in ("h", "help"):
                raise HelpRequested()
            raise FlagError(f"flag provided but not defined: -{name}")
        i += 1
        if flag.is_bool:
            if value is None or value in _TRUE:
                values[name] = True
            elif value in _FALSE:
                values[name] = False
            else:
                raise FlagError(f'invalid boolean value "{value}" for -{name}: parse error')
            continue
        if value is None:
            if i >= len(args):
                raise FlagError(f"flag needs an argument: -{name}")
            value = args[i]
            i += 1
        values[name] = value
    return values, args[i:]


def defaults_text(flags: list[Flag]) -> str:
    """Go's ``flag.PrintDefaults`` output (flags sorted by name)."""
    lines: list[str] = []
    for f in sorted(flags, key=lambda f: f.name):
        head = f"  -{f.name}"
        if not f.is_bool:
            head += f" {f.type_name}"
        if len(head) <= 4:  # Go puts one-letter bool flags on the same line
            head += "\t"
        else:
            head += "\n    \t"
        text = head + f.usage.replace("\n", "\n    \t")
        if not f.is_bool and f.default != "":
            text += f' (default "{f.default}")'
        lines.append(text)
    return "\n".join(lines) + "\n"
