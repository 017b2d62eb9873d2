"""The one exception base class of conceptchess; the CLI turns it into a one-line message, exit 2.

A library refusal that names some of its caller's arguments is an :class:`ArgumentError`: its message
calls them what the library calls them, and a shell with its own names for them (the CLI's options)
asks for the message in those names.
"""

from __future__ import annotations

from collections.abc import Mapping


class ConceptChessError(Exception):
    """Any error a user can cause with bad input (files, FENs, moves, options)."""


class NetworkFormatError(ConceptChessError):
    """A network file that is not (or not a supported) lc0 network."""


class PositionError(ConceptChessError):
    """A malformed FEN, an illegal move, or a malformed positions file."""


class ArgumentError(ConceptChessError):
    """A refusal that names some of the caller's arguments. ``str(e)`` calls them what the library
    calls them; a shell with its own names for them (the CLI's options) asks :meth:`naming`.

    >>> e = ArgumentError("{seed} orders a blinded session; add {blind}", seed="seed", blind="blind=True")
    >>> str(e), e.naming({"seed": "--seed", "blind": "--blind"})
    ('seed orders a blinded session; add blind=True', '--seed orders a blinded session; add --blind')
    """

    def __init__(self, template: str, prefix: str = "", **arguments: str):
        self.template = template  # str.format placeholders: the arguments' names
        self.prefix = prefix  # where it happened, e.g. "puzzle cc0Fk: "
        self.arguments = arguments  # argument → the library's name for it
        super().__init__(self.naming({}))

    def naming(self, names: Mapping[str, str]) -> str:
        """The message with each argument called ``names[argument]`` (the library's name where ``names`` has none)."""
        return self.prefix + self.template.format(**{a: names.get(a, own) for a, own in self.arguments.items()})

    def within(self, prefix: str) -> ArgumentError:
        """The same refusal, placed: ``prefix`` goes before the message."""
        return ArgumentError(self.template, prefix + self.prefix, **self.arguments)
