"""The README's commands as a user meets them: every line of its Examples block runs and exits 0 on the
shared data, and every command of its command table exists and takes the options the table names.

The examples run in the README's order in one ``$OUT`` folder (later ones read what earlier ones wrote),
in this process through the one CLI runner; ``../shared/data`` stands for the test data folder
(:data:`tests.helpers.DATA`). Without the data they skip; without Stockfish the examples that need it skip.
"""

from __future__ import annotations

import re
import shlex

import pytest

from conceptchess.paths import ROOT
from tests.helpers import DATA, cli, find_stockfish

README = (ROOT / "README.md").read_text(encoding="utf-8")
NEEDS_STOCKFISH = ("puzzles mine", "puzzles verify")


def example_lines() -> list[str]:
    """The ``conceptchess …`` lines of the first ``sh`` block under "### Examples"."""
    block = README.split("\n### Examples\n", 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    return [line for line in block.splitlines() if line.startswith("conceptchess ")]


def table_commands() -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(command words, options named) of each command in the first column of the README's command table;
    ``group a / b / c`` names three commands of one group."""
    table = README.split("\n## Commands\n", 1)[1].strip().split("\n\n", 1)[0]
    out = []
    for row in table.splitlines()[2:]:
        for snippet in re.findall(r"`([^`]+)`", row.split(" | ", 1)[0]):
            words = snippet.removeprefix("conceptchess ").split()
            if "/" in words:
                out += [((words[0], sub), ()) for sub in words[1:] if sub != "/"]
                continue
            path = []
            for w in words:
                if not re.fullmatch(r"[a-z][a-z-]*", w):
                    break
                path.append(w)
            options = tuple(m.group(1) for w in words if (m := re.fullmatch(r"\[?(--?[a-z][a-z-]*)\]?", w)))
            out.append((tuple(path), options))
    return out


def test_the_readme_has_one_example_per_command_family():
    families = {path[0] for path, _ in table_commands()}
    examples = {line.split()[1] for line in example_lines()}
    assert families - {"demo"} <= examples, families - examples
    assert len(table_commands()) >= 20


@pytest.mark.parametrize("path, options", table_commands(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_every_table_command_exists_with_its_options(path, options):
    r = cli(*path, "--help")
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    assert "Usage: conceptchess " + " ".join(path) in text
    for option in options:
        assert re.search(rf"(^|\s){re.escape(option)}(\s|,|$)", text), (path, option)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("readme-examples")


@pytest.mark.parametrize("line", example_lines(), ids=lambda line: " ".join(line.split()[1:3]))
def test_example_runs(line, out):
    if not DATA.exists():
        pytest.skip(f"real test data not available: {DATA} (set CONCEPTCHESS_TEST_DATA or provide ../shared/data)")
    if any(command in line for command in NEEDS_STOCKFISH) and find_stockfish() is None:
        pytest.skip("stockfish binary not found")
    args = shlex.split(line.replace("../shared/data", str(DATA)).replace("$OUT", str(out)))
    r = cli(*args[1:])
    assert r.exit_code == 0, f"{line}\n{r.output}"
