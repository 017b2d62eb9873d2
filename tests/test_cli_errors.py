"""Every refusal of the command line is one line ``error: …`` on stderr and exit status 2: typer's own
usage errors (an unknown option or command, a missing argument, a bad value) as well as the library's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conceptchess.paths import ROOT
from tests.helpers import cli


def assert_usage_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == "", result.stdout
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, repr(result.stderr)
    assert not any(c in result.stderr for c in "╭│╰"), result.stderr  # no box
    assert "id=cli" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


@pytest.mark.parametrize("args, says", [
    (["net", "eval", "--bogus"], "error: no such option: --bogus (see `conceptchess net eval --help`)"),
    (["net", "convert", "x.pb.gz"], "error: missing option '-o' / '--output' (see `conceptchess net convert --help`)"),
    (["net", "info"], "error: missing argument 'file' (see `conceptchess net info --help`)"),
    (["positions", "from-pgn", "--bogus", "g.pgn"], "error: no such option: --bogus (see `conceptchess positions from-pgn --help`)"),
    (["positions", "from-pgn", "-o", "ds"], "error: missing argument 'games' (see `conceptchess positions from-pgn --help`)"),
    (["positions", "from-pgn", "g.pgn", "-o", "ds", "--every", "two"], "error: invalid value for '--every'"),
    (["concepts", "list", "--long", "yes"], "error: got unexpected extra argument(s) (yes) (see `conceptchess concepts list --help`)"),
    (["nett"], "error: no such command 'nett'. Did you mean 'net'? (see `conceptchess --help`)"),
    (["--bogus"], "error: no such option: --bogus (see `conceptchess --help`)"),
])
def test_usage_errors_are_one_line(args, says):
    r = cli(*args)
    assert_usage_error(r)
    assert r.stderr.startswith(says), r.stderr


def test_library_refusals_look_the_same(tmp_path):
    assert_usage_error(cli("concepts", "list", "--family", "nope"), "unknown family 'nope'")
    assert_usage_error(cli("positions", "from-pgn", tmp_path / "missing.pgn", "-o", tmp_path / "ds"), "no such PGN file")


def test_help_and_bare_groups_are_no_errors():
    r = cli("net", "--help")
    assert r.exit_code == 0 and "Usage:" in r.stdout and r.stderr == ""
    r = cli("net")  # a bare group prints its help, as typer does
    assert r.exit_code == 2 and "eval" in r.stdout and "error" not in r.stderr


def test_the_console_command_says_usage_errors_in_one_line():
    """What a user runs: a real process, not the in-process runner."""
    p = subprocess.run([sys.executable, "-m", "conceptchess", "net", "eval", "--bogus"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == "error: no such option: --bogus (see `python -m conceptchess net eval --help`)\n"
