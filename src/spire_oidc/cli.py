"""The command line: SPIRE's flags (``-config``, ``-expandEnv``, ``-version``) with Go's flag
semantics and exit codes, plus our subcommands (``validate``, ``demo``, ``publish``, ``doctor``),
recognised only as the first argument.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from spire_oidc import __version__
from spire_oidc.config.goflag import Flag, FlagError, HelpRequested, defaults_text, parse
from spire_oidc.errors import ConfigError, ProviderError

SPIRE_FLAGS = [
    Flag("config", "configuration file", "oidc-discovery-provider.conf"),
    Flag("expandEnv", "expand environment variables in config file", False, is_bool=True),
    Flag("version", "print version", False, is_bool=True),
]
VALIDATE_FLAGS = [
    Flag("config", "configuration file", "oidc-discovery-provider.conf"),
    Flag("expandEnv", "expand environment variables in config file", False, is_bool=True),
    Flag("json", "print the effective configuration as JSON", False, is_bool=True),
]
DEMO_FLAGS = [
    Flag("dir", "directory for the demo key, bundle and config", "./demo"),
    Flag("addr", "listen address written into a new demo config", "127.0.0.1:8080"),
    Flag("mint", "print a JWT-SVID signed by the demo key instead of serving", False, is_bool=True),
    Flag("audience", "audience (aud) of the minted JWT-SVID", "demo"),
    Flag("subject", "SPIFFE ID (sub) of the minted JWT-SVID", "spiffe://example.org/demo/workload"),
    Flag("ttl", "lifetime of the minted JWT-SVID, in seconds", "300"),
]
PUBLISH_FLAGS = [
    Flag("config", "configuration file", "oidc-discovery-provider.conf"),
    Flag("expandEnv", "expand environment variables in config file", False, is_bool=True),
    Flag("timeout", "how long to wait for the source's first key set", "30s"),
]
COMMANDS_TEXT = """\
Commands (only as the first argument):
  validate [-config file] [-expandEnv] [-json]
      check a configuration file (binds nothing, contacts nothing) and exit
  demo [-dir dir] [-addr host:port] [-mint -audience aud]
      serve a generated demo key on 127.0.0.1:8080, or mint a JWT-SVID signed by it
  publish [-config file] [-expandEnv] [-timeout 30s]
      fetch the keys once, publish them to the configured publish url, verify, and exit
  doctor ISSUER_URL [-ca file] [-token file] [-audience aud] [-profile name] [-json]
      check a deployment against what each relying party requires (exit 0/1/2: pass/warn/fail)
"""


def _prog() -> str:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "oidc-discovery-provider"
    if argv0.endswith("__main__.py"):
        return "oidc-discovery-provider"
    return argv0


def usage(flags: list[Flag], prog: str, *, commands: bool = False) -> str:
    text = f"Usage of {prog}:\n" + defaults_text(flags)
    if commands:
        text += COMMANDS_TEXT
    return text


def _parse_or_exit(
    flags: list[Flag], args: list[str], prog: str, err: TextIO, *, commands: bool = False
) -> tuple[dict[str, str | bool], list[str]] | int:
    try:
        return parse(flags, args)
    except HelpRequested:
        err.write(usage(flags, prog, commands=commands))
        return 0
    except FlagError as exc:
        err.write(f"{exc}\n" + usage(flags, prog, commands=commands))
        return 2


def _parse_subcommand(
    name: str, flags: list[Flag], args: list[str], err: TextIO
) -> dict[str, str | bool] | int:
    """Flags of a subcommand that takes no positional argument; an int is the exit code."""
    prog = f"{_prog()} {name}"
    parsed = _parse_or_exit(flags, args, prog, err)
    if isinstance(parsed, int):
        return parsed
    values, rest = parsed
    if rest:
        err.write(f"Error: unexpected arguments: [{' '.join(rest)}]\n")
        err.write(usage(flags, prog))
        return 1
    return values


def cmd_validate(args: list[str], out: TextIO, err: TextIO) -> int:
    values = _parse_subcommand("validate", VALIDATE_FLAGS, args, err)
    if isinstance(values, int):
        return values
    from spire_oidc.config.effective import effective_config
    from spire_oidc.config.load import load_config

    try:
        cfg = load_config(
            str(values["config"]), expand_env=bool(values["expandEnv"]), environ=os.environ
        )
    except ConfigError as exc:
        err.write(exc.describe() + "\n")
        return 1
    for warning in cfg.warnings:
        err.write(f"warning: {warning}\n")
    if values["json"]:
        out.write(json.dumps(effective_config(cfg), indent=2) + "\n")
    else:
        out.write("configuration is valid\n")
    return 0


def _flag_given(flags: list[Flag], args: list[str], name: str) -> bool:
    """Whether ``-name`` was set on the command line, by Go's flag rules: ``-f v`` and ``-f=v``
    for value flags, and parsing stops at the first non-flag argument or at ``--``."""
    values = {f.name for f in flags if not f.is_bool}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            return False
        flag, eq, _ = arg.lstrip("-").partition("=")
        if flag == name:
            return True
        i += 2 if flag in values and not eq else 1
    return False


def cmd_demo(args: list[str], out: TextIO, err: TextIO) -> int:
    values = _parse_subcommand("demo", DEMO_FLAGS, args, err)
    if isinstance(values, int):
        return values
    from spire_oidc import demo

    directory = str(values["dir"])
    if values["mint"]:
        files = demo.demo_files(directory)
        if not files.key.exists():
            err.write(f"no demo key in {files.directory}: run `{_prog()} demo` first\n")
            return 1
        try:
            ttl = int(str(values["ttl"]))
        except ValueError:
            err.write(f'invalid value "{values["ttl"]}" for flag -ttl: not a number of seconds\n')
            return 2
        out.write(
            demo.mint(
                files, audience=str(values["audience"]), subject=str(values["subject"]), ttl=ttl
            )
            + "\n"
        )
        return 0
    addr = str(values["addr"])
    files, created = demo.ensure_demo(directory, addr=addr)
    if not created and _flag_given(DEMO_FLAGS, args, "addr"):
        try:
            previous = demo.set_demo_addr(files, addr)
        except demo.DemoError as exc:
            err.write(f"{exc}\n")
            return 1
        if previous is not None:
            out.write(f"Changed the demo's listen address from {previous} to {addr}.\n")
    try:
        issuer = demo.demo_issuer(files)
    except ConfigError as exc:
        err.write(exc.describe() + "\n")
        return 1
    out.write(
        ("Created" if created else "Using")
        + f" the demo in {files.directory} (key, SPIFFE bundle, config).\n"
        f"  discovery: {issuer}/.well-known/openid-configuration\n"
        f"  keys:      {issuer}/keys\n"
        f"Mint a JWT-SVID signed by the demo key (in another terminal):\n"
        f"  {_prog()} demo -dir {directory} -mint -audience AUD\n"
        f"Stop with Ctrl-C.\n"
    )
    out.flush()
    return serve(str(files.config), expand=False, err=err)


def cmd_publish(args: list[str], out: TextIO, err: TextIO) -> int:
    """One publication (cron, CI, first set-up): 0 when the store holds our keys, else 1."""
    values = _parse_subcommand("publish", PUBLISH_FLAGS, args, err)
    if isinstance(values, int):
        return values
    from spire_oidc.config.gocompat import parse_duration
    from spire_oidc.config.load import load_config
    from spire_oidc.logs import setup_logging

    try:
        within = parse_duration(str(values["timeout"])) / 1e9
    except ProviderError as exc:
        err.write(f'invalid value "{values["timeout"]}" for flag -timeout: {exc}\n')
        return 2
    try:
        cfg = load_config(
            str(values["config"]), expand_env=bool(values["expandEnv"]), environ=os.environ
        )
    except ConfigError as exc:
        err.write(exc.describe() + "\n")
        return 1
    if cfg.publish is None:
        err.write(f"{values['config']}: no publish section: nothing to publish to\n")
        return 1
    try:
        setup_logging(level=cfg.log_level, fmt=cfg.log_format, path=cfg.log_path)
    except OSError as exc:
        err.write(f"open {exc.filename or cfg.log_path}: {(exc.strerror or str(exc)).lower()}\n")
        return 1
    from spire_oidc.publishing import run_publish_once

    code, line = run_publish_once(cfg, first_fetch_within=within)
    (out if code == 0 else err).write(line + "\n")
    return code


def serve(config_path: str, *, expand: bool, err: TextIO) -> int:
    """Load, set up logging, run until a signal; errors print one line and exit 1."""
    from spire_oidc.config.load import load_config
    from spire_oidc.logs import setup_logging

    try:
        cfg = load_config(config_path, expand_env=expand, environ=os.environ)
    except ConfigError as exc:
        err.write(exc.describe() + "\n")
        return 1
    try:
        setup_logging(level=cfg.log_level, fmt=cfg.log_format, path=cfg.log_path)
    except OSError as exc:
        err.write(f"open {exc.filename or cfg.log_path}: {(exc.strerror or str(exc)).lower()}\n")
        return 1
    from spire_oidc.daemon import run_blocking

    try:
        return run_blocking(cfg)
    except ProviderError as exc:
        err.write(exc.describe() + "\n")
        return 1
    except KeyboardInterrupt:
        return 0


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    code = _main(argv, out, err)
    if argv is None and "obstore" in sys.modules:  # the process entry point, after object storage
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """Exit without interpreter finalisation, once logs and output are flushed.

    obstore runs a Tokio runtime whose worker threads are never shut down: when one of them is
    still busy as ``Py_Finalize`` tears the interpreter down, it panics and the process dies of
    SIGABRT (exit 134) although everything it did succeeded (observed here about one run in
    three after a failed request; the same defect is known in other PyO3 + Tokio clients).
    Nothing is left to do at this point but what ``atexit`` would run: flush and close the log
    handlers and the standard streams, then leave with the real exit code.
    """
    import contextlib
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or broken: nothing to save
            stream.flush()
    os._exit(code)


def _main(argv: Sequence[str] | None, out: TextIO | None, err: TextIO | None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "validate":
        return cmd_validate(args[1:], out, err)
    if args and args[0] == "demo":
        return cmd_demo(args[1:], out, err)
    if args and args[0] == "publish":
        return cmd_publish(args[1:], out, err)
    if args and args[0] == "doctor":
        from spire_oidc.doctor.command import run as cmd_doctor

        return cmd_doctor(args[1:], out, err, prog=_prog())
    prog = _prog()
    parsed = _parse_or_exit(SPIRE_FLAGS, args, prog, err, commands=True)
    if isinstance(parsed, int):
        return parsed
    values, rest = parsed
    if values["version"]:
        out.write(f"{__version__}\n")
        return 0
    if rest:
        err.write(f"Error: unexpected arguments: [{' '.join(rest)}]\n")
        err.write(usage(SPIRE_FLAGS, prog, commands=True))
        return 1
    return serve(str(values["config"]), expand=bool(values["expandEnv"]), err=err)
