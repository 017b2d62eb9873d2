"""`conceptchess concepts …`."""

from __future__ import annotations

import typer

app = typer.Typer(help="concepts commands", no_args_is_help=True)
