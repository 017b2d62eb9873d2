"""Entry point of the ``conceptchess`` command.

Every refusal, the library's and typer's alike, is one line ``error: …`` on stderr and exit status 2:
:class:`Shell`, the root group, says typer's usage errors through :func:`~conceptchess.cli.common.fail_usage`
(typer would draw a box under a usage line), whichever command they come from.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from conceptchess import __version__
from conceptchess.cli import activations, concepts, discover, net, positions, probe, puzzles, search, study, train
from conceptchess.cli.common import fail_usage
from conceptchess.cli.demo import demo

# typer's click (vendored in typer since 0.2x, the click package before), reached through typer's public BadParameter
_CLICK = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
UsageError = _CLICK["UsageError"]


class Shell(TyperGroup):
    """The root command group: parses the command line (its own options, then a command's) like any
    typer group, but says a usage error in the project's one line."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as e:
            _say(e)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UsageError as e:
            _say(e)


def _say(error) -> None:
    if type(error).__name__ == "NoArgsIsHelpError":  # a bare group: typer has printed its help (exit 2)
        raise error
    fail_usage(error)


app = typer.Typer(name="conceptchess", cls=Shell,
                  help="conceptchess: probe a chess network for concepts and teach them back as puzzles.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(net.app, name="net")
app.add_typer(positions.app, name="positions")
app.add_typer(search.app, name="search")
app.add_typer(concepts.app, name="concepts")
app.add_typer(activations.app, name="activations")
app.add_typer(probe.app, name="probe")
app.add_typer(discover.app, name="discover")
app.command("train")(train.train)
app.add_typer(puzzles.app, name="puzzles")
app.add_typer(study.app, name="eval")
app.command("demo")(demo)


def _version(value: bool):
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version")):
    """conceptchess command line."""


if __name__ == "__main__":
    app()
