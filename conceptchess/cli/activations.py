"""`conceptchess activations …`."""

from __future__ import annotations

import typer

app = typer.Typer(help="activations commands", no_args_is_help=True)
