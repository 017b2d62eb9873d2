"""Entry point of the ``conceptchess`` command."""

from __future__ import annotations

import typer

from conceptchess import __version__
from conceptchess.cli import activations, concepts, net, positions, probe, puzzles, study, train
from conceptchess.cli.demo import demo

app = typer.Typer(help="conceptchess: probe a chess network for concepts and teach them back as puzzles.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(net.app, name="net")
app.add_typer(positions.app, name="positions")
app.add_typer(concepts.app, name="concepts")
app.add_typer(activations.app, name="activations")
app.add_typer(probe.app, name="probe")
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
