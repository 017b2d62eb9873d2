"""Human chess concepts: named, typed, framed functions of a position, labelled in bulk.

Families (McGrath et al. 2022's list): material, phase, mobility, king safety, threats, tactics,
pawns, space, development, files, outposts — computed with python-chess bitboards — and the
Stockfish 15.1 classical evaluation terms (needs the ``stockfish`` binary).

>>> import chess
>>> from conceptchess.concepts import CONCEPTS, label
>>> CONCEPTS["in_check"].type, CONCEPTS["us_mobility"](chess.Board())
('binary', 20)
>>> label([chess.Board()], ["us_mobility", "them_mobility"])["them_mobility"].tolist()
[20]
"""

# ruff: noqa: I001
from __future__ import annotations

# Family modules register their concepts on import; this order is the order of `concepts list`.
from conceptchess.concepts import (  # noqa: F401
    material,
    phase,
    mobility,
    king_safety,
    threats,
    tactics,
    pawns,
    space,
    development,
    open_files,
    outposts,
    stockfish,
)
from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.labeling import label
from conceptchess.concepts.registry import CONCEPTS, Concept, ConceptUnavailableError, UnknownConceptError, select


def is_available(concept: Concept) -> bool:
    """Whether ``concept`` can be computed here (Stockfish concepts need the binary)."""
    return concept.source != "stockfish" or stockfish.available()


__all__ = ["CONCEPTS", "Concept", "ConceptUnavailableError", "PositionContext", "UnknownConceptError", "is_available", "label", "select"]
