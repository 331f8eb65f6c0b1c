"""The ``doctor`` command line: ``doctor ISSUER_URL [-ca FILE] [-token FILE] [-audience AUD]
[-profile NAME ...] [-json] [-timeout SECONDS] [-ca-ttl DURATION]``.

Flags look like the rest of the CLI (Go style: one or two dashes, ``-flag=value`` or
``-flag value``), but may come before or after the issuer, and ``-profile`` may be repeated or
given a comma-separated list.
"""

from __future__ import annotations

import math
import ssl
from typing import TextIO

from spire_oidc.config.gocompat import DurationError, parse_duration
from spire_oidc.config.goflag import Flag, FlagError, HelpRequested, defaults_text
from spire_oidc.doctor.checks import run_checks
from spire_oidc.doctor.fetch import trust_context
from spire_oidc.doctor.observe import observe
from spire_oidc.doctor.parties import BY_NAME, PARTIES, Party
from spire_oidc.doctor.report import EXIT_USAGE, exit_code, render_json, render_text

PROFILE_NAMES = ", ".join(p.name for p in PARTIES)
FLAGS = [
    Flag("ca", "PEM file of CA certificates to trust instead of this machine's roots", ""),
    Flag("token", "file holding a JWT-SVID to verify against the served keys", ""),
    Flag("audience", "audience the JWT-SVID must carry (with -token)", ""),
    Flag(
        "profile",
        f"relying party to check (repeatable or comma-separated; default all):\n{PROFILE_NAMES}",
        "",
    ),
    Flag("json", "print the findings as JSON", False, is_bool=True),
    Flag("timeout", "seconds to wait for each fetch", "10"),
    Flag(
        "ca-ttl",
        "the SPIRE server's ca_ttl (Go duration), which sets the key rotation window\n"
        "the cache.propagation check measures caching against",
        "24h",
    ),
]
SYNOPSIS = "doctor ISSUER_URL [flags]"
EXIT_TEXT = "exit status: 0 all pass, 1 worst is a warning, 2 a failure, 3 usage or input error\n"


def usage(prog: str) -> str:
    return f"Usage of {prog} doctor:\n  {prog} {SYNOPSIS}\n" + defaults_text(FLAGS) + EXIT_TEXT


def parse_args(args: list[str]) -> tuple[dict[str, str | bool], list[str], list[str]]:
    """(flag values, profiles, positional arguments); flags and positionals may interleave."""
    by_name = {f.name: f for f in FLAGS}
    values: dict[str, str | bool] = {f.name: f.default for f in FLAGS}
    profiles: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional += args[i:]
            break
        if len(arg) < 2 or not arg.startswith("-"):
            positional.append(arg)
            continue
        name = arg[2:] if arg.startswith("--") else arg[1:]
        value: str | None = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in ("h", "help"):
            raise HelpRequested()
        flag = by_name.get(name)
        if flag is None:
            raise FlagError(f"flag provided but not defined: -{name}")
        if flag.is_bool:
            if value not in (None, "true", "1", "false", "0"):
                raise FlagError(f'invalid boolean value "{value}" for -{name}: parse error')
            values[name] = value in (None, "true", "1")
            continue
        if value is None:
            if i >= len(args):
                raise FlagError(f"flag needs an argument: -{name}")
            value = args[i]
            i += 1
        if name == "profile":
            profiles += [p.strip() for p in value.split(",") if p.strip()]
        values[name] = value
    return values, profiles, positional


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise FlagError(f"cannot read the {what} file {path}: {exc}") from exc


def run(args: list[str], out: TextIO, err: TextIO, *, prog: str) -> int:
    try:
        values, profile_names, positional = parse_args(args)
    except HelpRequested:
        err.write(usage(prog))
        return 0
    except FlagError as exc:
        err.write(f"{exc}\n" + usage(prog))
        return EXIT_USAGE
    if len(positional) != 1:
        what = "an issuer URL is required" if not positional else "only one issuer URL"
        err.write(f"Error: {what}\n" + usage(prog))
        return EXIT_USAGE
    unknown = [n for n in profile_names if n not in BY_NAME]
    if unknown:
        err.write(f"Error: unknown profile {', '.join(unknown)} (known: {PROFILE_NAMES})\n")
        return EXIT_USAGE
    try:
        timeout = float(str(values["timeout"]))
    except ValueError:
        timeout = math.nan
    if not (timeout > 0 and math.isfinite(timeout)):
        err.write(f'Error: invalid value "{values["timeout"]}" for -timeout: seconds > 0\n')
        return EXIT_USAGE
    try:
        ca_ttl = parse_duration(str(values["ca-ttl"])) / 1e9
    except DurationError as exc:
        ca_ttl = -1.0
        reason = str(exc)
    else:
        reason = "a duration > 0, e.g. 24h or 720h"
    if ca_ttl <= 0:
        err.write(f'Error: invalid value "{values["ca-ttl"]}" for -ca-ttl: {reason}\n')
        return EXIT_USAGE
    issuer = positional[0]
    if not issuer.startswith(("https://", "http://")):
        err.write(f"Error: {issuer!r} is not an http(s) URL\n")
        return EXIT_USAGE
    try:
        token = _read(str(values["token"]), "token") if values["token"] else None
        ca = str(values["ca"])
        if ca:
            trust_context(ca)
    except (ssl.SSLError, OSError) as exc:
        err.write(f"Error: cannot use the CA file {values['ca']}: {exc}\n")
        return EXIT_USAGE
    except FlagError as exc:
        err.write(f"Error: {exc}\n")
        return EXIT_USAGE
    parties: list[Party] = (
        [BY_NAME[n] for n in dict.fromkeys(profile_names)] if profile_names else list(PARTIES)
    )
    obs = observe(
        issuer,
        ca_file=ca,
        token_text=token,
        audience=str(values["audience"]),
        timeout=timeout,
    )
    findings = run_checks(obs, parties, ca_ttl=ca_ttl)
    render = render_json if values["json"] else render_text
    out.write(render(obs, parties, findings))
    return exit_code(findings)
