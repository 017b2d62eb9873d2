"""The concept registry: one :class:`Concept` per named function of a position.

A concept's name says whose view it takes (see ``DESIGN.md``, "Frames"): ``us_``/``them_`` are
relative to the side to move, ``white_``/``black_`` are absolute, and a few names without a colour
prefix are either symmetric (frame ``both``: the same value from either side, e.g. ``open_files``)
or side-to-move relative by long-standing name (``in_check``, ``material_diff``: frame ``us``).
Stockfish terms (``sf_…``) are absolute; the column word in their name (``white``/``black``/
``total``) says whose view they take (``total`` is White's).

>>> from conceptchess.concepts import CONCEPTS
>>> c = CONCEPTS["material_diff"]
>>> c.type, c.frame, c.family
('scalar', 'us', 'material')
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import chess

from conceptchess.concepts.context import PositionContext
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.names import split_names, unique

ConceptType = Literal["binary", "scalar", "categorical"]
Frame = Literal["us", "them", "white", "black", "both"]

TYPES: tuple[str, ...] = ("binary", "scalar", "categorical")
FRAMES: tuple[str, ...] = ("us", "them", "white", "black", "both")
SOURCES: tuple[str, ...] = ("python-chess", "stockfish")


class UnknownConceptError(ConceptChessError):
    """A concept name that is not in the registry."""


class ConceptUnavailableError(ConceptChessError):
    """A concept whose backend (e.g. the Stockfish binary) is missing on this machine."""


@dataclass(frozen=True)
class Concept:
    """A named function of a position.

    ``function`` takes a :class:`~conceptchess.concepts.context.PositionContext` (python-chess
    concepts) or the parsed Stockfish term table (``source == "stockfish"``) and returns a number:
    0/1 for ``binary``, an integer code into ``categories`` for ``categorical``, any real for
    ``scalar`` (NaN only where the definition says so, e.g. Stockfish terms in check).
    """

    name: str
    definition: str
    type: ConceptType
    frame: Frame
    family: str
    function: Callable[[Any], float | int]
    source: str = "python-chess"
    categories: tuple[str, ...] = ()
    dtype: str = ""

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"{self.name}: type {self.type!r} not in {TYPES}")
        if self.frame not in FRAMES:
            raise ValueError(f"{self.name}: frame {self.frame!r} not in {FRAMES}")
        if self.source not in SOURCES:
            raise ValueError(f"{self.name}: source {self.source!r} not in {SOURCES}")
        if (self.type == "categorical") != bool(self.categories):
            raise ValueError(f"{self.name}: categorical concepts (and only they) list categories")
        if self.frame in ("us", "them", "white", "black") and not self.source == "stockfish":
            prefixed = self.name.startswith(f"{self.frame}_")
            if not prefixed and self.name not in UNPREFIXED_RELATIVE:
                raise ValueError(f"{self.name}: frame {self.frame!r} but the name lacks the {self.frame}_ prefix")
        if not self.dtype:
            object.__setattr__(self, "dtype", _DEFAULT_DTYPE[self.type] if self.source != "stockfish" else "float64")

    def __call__(self, board: chess.Board) -> float | int:
        """The concept's value on one board (convenience; :func:`label` is the fast path).

        >>> from conceptchess.concepts import CONCEPTS
        >>> CONCEPTS["us_knights"](chess.Board())
        2
        """
        if self.source != "python-chess":
            one_board = BACKENDS.get(self.source)
            if one_board is None:
                raise ConceptUnavailableError(f"concept {self.name!r}: no {self.source} backend is loaded")
            return float(self.function(one_board(board)))
        return self.function(PositionContext(board))


_DEFAULT_DTYPE = {"binary": "int8", "categorical": "int8", "scalar": "float32"}

#: Established names that are side-to-move relative without a ``us_`` prefix.
UNPREFIXED_RELATIVE = frozenset({"in_check", "material_diff"})

PASSED_NOTE = " if the side to move passed (a null move)"
IN_CHECK_NOTE = "; when the side to move is in check, only moves that add a checking piece"

#: Every concept, by name, in registration order (families as imported by ``concepts/__init__``).
CONCEPTS: dict[str, Concept] = {}

#: For each non-python-chess source, what its concepts' ``function`` reads of one board (e.g. the Stockfish
#: term table), registered by the module that provides the source, so the registry imports none of them.
BACKENDS: dict[str, Callable[[chess.Board], Any]] = {}


def register(name: str, definition: str, type: ConceptType, frame: Frame, family: str,
             function: Callable[[Any], float | int], **kw: Any) -> Concept:
    """Add a concept to :data:`CONCEPTS` (names are unique)."""
    if name in CONCEPTS:
        raise ValueError(f"concept {name!r} registered twice")
    c = Concept(name, definition, type, frame, family, function, **kw)
    CONCEPTS[name] = c
    return c


def register_pair(stem: str, definition: str, type: ConceptType, family: str,
                  function: Callable[[Any, chess.Color], float | int], **kw: Any) -> None:
    """Register ``us_<stem>`` and ``them_<stem>`` from one function of (context, colour).

    ``definition`` may use ``{side}``/``{other}``, filled with "the side to move"/"the opponent"
    and the reverse, and ``{passed}``/``{in_check_note}``, which only the ``them_`` definition
    spells out (the opponent's moves are those after a null move).
    """
    for frame, side, other in (("us", "the side to move", "the opponent"), ("them", "the opponent", "the side to move")):
        notes = {"passed": PASSED_NOTE, "in_check_note": IN_CHECK_NOTE} if frame == "them" else {"passed": "", "in_check_note": ""}
        text = definition.format(side=side, other=other, **notes)
        text = text[0].upper() + text[1:]
        if frame == "us":
            register(f"us_{stem}", text, type, "us", family, lambda ctx, f=function: f(ctx, ctx.us), **kw)
        else:
            register(f"them_{stem}", text, type, "them", family, lambda ctx, f=function: f(ctx, ctx.them), **kw)


def check_names(names: Iterable[str]) -> None:
    """Refuse the names that are no concept, all of them in one line, each with the closest known names.

    >>> check_names(["in_chek", "us_mobility", "matrial_diff"])
    Traceback (most recent call last):
    ...
    conceptchess.concepts.registry.UnknownConceptError: unknown concepts 'in_chek' (did you mean in_check?), 'matrial_diff' (did you mean material_diff or material_phase or us_material?) (see `conceptchess concepts list`)
    """
    unknown = [n for n in unique(names) if n not in CONCEPTS]
    if not unknown:
        return
    said = []
    for n in unknown:
        close = difflib.get_close_matches(n, CONCEPTS, n=3)
        said.append(f"{n!r}" + (f" (did you mean {' or '.join(close)}?)" if close else ""))
    raise UnknownConceptError(f"unknown concept{'s' if len(unknown) > 1 else ''} {', '.join(said)} (see `conceptchess concepts list`)")


@dataclass
class Selection:
    """Concept names split by backend, in the order asked for."""

    names: list[str] = field(default_factory=list)
    python_chess: list[Concept] = field(default_factory=list)
    stockfish: list[Concept] = field(default_factory=list)


def select(names: str | Iterable[str] | None = None, *, stockfish: bool | None = None) -> Selection:
    """Resolve concept names, a list or a comma list, each taken once (``None``: every python-chess concept).

    ``stockfish=True`` adds every Stockfish concept not already named, ``False`` refuses them, and
    ``None`` takes those named.

    >>> select(["in_check", "material_diff"]).names, select("in_check, in_check").names
    (['in_check', 'material_diff'], ['in_check'])
    """
    if names is None:
        chosen = [c for c in CONCEPTS.values() if c.source == "python-chess" or (stockfish and c.source == "stockfish")]
    else:
        wanted = unique(split_names(names))
        check_names(wanted)
        if not wanted:
            raise UnknownConceptError("no concept names given")
        chosen = [CONCEPTS[n] for n in wanted]
        if stockfish:
            chosen += [c for c in CONCEPTS.values() if c.source == "stockfish" and c.name not in wanted]
    sel = Selection([c.name for c in chosen])
    for c in chosen:
        (sel.stockfish if c.source == "stockfish" else sel.python_chess).append(c)
    if sel.stockfish and stockfish is False:
        raise ArgumentError(f"concept {sel.stockfish[0].name!r} needs Stockfish, but {{stockfish}} was given",
                            stockfish="stockfish=False")
    return sel
