"""The one exception base class of conceptchess; the CLI turns it into a one-line message, exit 2."""


class ConceptChessError(Exception):
    """Any error a user can cause with bad input (files, FENs, moves, options)."""


class NetworkFormatError(ConceptChessError):
    """A network file that is not (or not a supported) lc0 network."""


class PositionError(ConceptChessError):
    """A malformed FEN, an illegal move, or a malformed positions file."""
