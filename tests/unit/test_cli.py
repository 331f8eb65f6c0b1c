"""Go flag semantics and the README's usage block (in-process, no subprocess)."""

from __future__ import annotations

import io
import re

import pytest

from spire_oidc import cli
from spire_oidc.config.goflag import Flag, FlagError, HelpRequested, defaults_text, parse
from tests.paths import REPO

FLAGS = [
    Flag("config", "configuration file", "oidc-discovery-provider.conf"),
    Flag("expandEnv", "expand environment variables in config file", False, is_bool=True),
    Flag("version", "print version", False, is_bool=True),
]


@pytest.mark.parametrize(
    ("args", "config", "expand", "rest"),
    [
        ([], "oidc-discovery-provider.conf", False, []),
        (["-config", "a.conf"], "a.conf", False, []),
        (["--config=a.conf"], "a.conf", False, []),
        (["-config=a=b"], "a=b", False, []),
        (["-expandEnv", "-config", "c"], "c", True, []),
        (["-expandEnv=false"], "oidc-discovery-provider.conf", False, []),
        (["-expandEnv", "false"], "oidc-discovery-provider.conf", True, ["false"]),
        (["x", "-config", "c"], "oidc-discovery-provider.conf", False, ["x", "-config", "c"]),
        (["--", "-config"], "oidc-discovery-provider.conf", False, ["-config"]),
        (["-", "x"], "oidc-discovery-provider.conf", False, ["-", "x"]),
    ],
)
def test_parse(args: list[str], config: str, expand: bool, rest: list[str]) -> None:
    """Flags parse like Go's flag package: dashes, =, bool flags, stop at the first positional."""
    values, remaining = parse(FLAGS, args)
    assert (values["config"], values["expandEnv"], remaining) == (config, expand, rest)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-bogus"], "flag provided but not defined: -bogus"),
        (["-config"], "flag needs an argument: -config"),
        (["---config"], "bad flag syntax: ---config"),
        (["-=x"], "bad flag syntax: -=x"),
        (["-expandEnv=maybe"], 'invalid boolean value "maybe" for -expandEnv: parse error'),
    ],
)
def test_errors(args: list[str], message: str) -> None:
    """Flag mistakes carry Go's messages."""
    with pytest.raises(FlagError, match=re.escape(message)):
        parse(FLAGS, args)


def test_help() -> None:
    """-h and -help request the usage."""
    for arg in ("-h", "--help"):
        with pytest.raises(HelpRequested):
            parse(FLAGS, [arg])


def test_print_defaults_matches_go() -> None:
    """PrintDefaults output is Go's, byte for byte (spire-behavior.md §1)."""
    assert defaults_text(FLAGS) == (
        "  -config string\n"
        '    \tconfiguration file (default "oidc-discovery-provider.conf")\n'
        "  -expandEnv\n"
        "    \texpand environment variables in config file\n"
        "  -version\n"
        "    \tprint version\n"
    )


def test_readme_usage_block_matches_help(monkeypatch: pytest.MonkeyPatch) -> None:
    """The usage block in README.md is exactly what -h prints."""
    monkeypatch.setattr("sys.argv", ["oidc-discovery-provider"])
    err = io.StringIO()
    assert cli.main(["-h"], out=io.StringIO(), err=err) == 0
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- usage:start -->\n```\n", 1)[1].split("```\n<!-- usage:end -->", 1)[0]
    assert block == err.getvalue()


def test_readme_starts_with_the_two_commands() -> None:
    """README opens with the demo command and the test command, and .ci/run runs the latter."""
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[0] for line in first_block] == ["./scripts/demo.sh", "./scripts/test.sh"]
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text()
