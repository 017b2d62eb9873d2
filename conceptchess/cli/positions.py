"""`conceptchess positions …`."""

from __future__ import annotations

import typer

app = typer.Typer(help="positions commands", no_args_is_help=True)
