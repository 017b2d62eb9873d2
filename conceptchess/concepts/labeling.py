"""Label many positions with many concepts at once: ``label(boards, names) -> {name: array}``.

Each position's shared intermediate results (attack maps, legal moves, …) are computed once in a
:class:`~conceptchess.concepts.context.PositionContext` and reused by every python-chess concept;
Stockfish concepts come from one long-lived Stockfish process for the whole call.

>>> import chess
>>> cols = label([chess.Board(), chess.Board("4k3/8/8/8/8/8/8/R3K3 b - - 0 1")], ["material_diff", "in_check"])
>>> cols["material_diff"].tolist(), cols["in_check"].dtype.name
([0, -5], 'int8')
"""

from __future__ import annotations

from collections.abc import Sequence

import chess
import numpy as np

from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.registry import Selection, select
from conceptchess.concepts.stockfish import StockfishEval
from conceptchess.errors import PositionError
from conceptchess.progress import Progress


def check_board(board: chess.Board, where: str = "") -> None:
    """Cheap validity checks concepts rely on: one king each, the side not to move not in check."""
    prefix = f"{where}: " if where else ""
    for color in chess.COLORS:
        if (board.kings & board.occupied_co[color]).bit_count() != 1:
            raise PositionError(f"{prefix}{chess.COLOR_NAMES[color]} must have exactly one king ({board.fen()})")
    if board.was_into_check():
        raise PositionError(f"{prefix}the side not to move is in check ({board.fen()})")


def label(boards: Sequence[chess.Board], names: list[str] | None = None, *, stockfish: bool | None = None,
          engine=None, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Concept values of every board: ``{name: array of len(boards)}`` in the order of ``names``.

    ``names=None`` means every python-chess concept, plus the Stockfish ones when ``stockfish`` is
    true. ``engine`` is an open :class:`~conceptchess.concepts.stockfish.StockfishEval` to reuse
    (otherwise one is started and closed here when Stockfish concepts are asked for).
    ``progress(done, len(boards))`` is called as the python-chess concepts of positions are done. Boards are
    left as they were.
    """
    sel = select(names, stockfish=stockfish)
    return label_selection(boards, sel, engine=engine, progress=progress)


def label_selection(boards: Sequence[chess.Board], sel: Selection, *, engine=None,
                    progress: Progress | None = None) -> dict[str, np.ndarray]:
    """:func:`label` for an already resolved :class:`~conceptchess.concepts.registry.Selection`."""
    n = len(boards)
    out: dict[str, np.ndarray] = {}
    if sel.python_chess:
        fns = [c.function for c in sel.python_chess]
        rows: list[list[float]] = []
        step = 256
        for i, board in enumerate(boards):
            check_board(board, f"position {i}")
            ctx = PositionContext(board)
            rows.append([f(ctx) for f in fns])
            if progress is not None and (i + 1) % step == 0:
                progress(i + 1, n)
        if progress is not None and n % step:
            progress(n, n)
        table = np.array(rows, dtype=np.float64).reshape(n, len(fns))
        for j, c in enumerate(sel.python_chess):
            out[c.name] = table[:, j].astype(c.dtype)
    if sel.stockfish:
        own = engine is None
        sf = StockfishEval() if own else engine
        try:
            terms = sf.terms_many(boards)
        finally:
            if own:
                sf.close()
        for c in sel.stockfish:
            out[c.name] = np.array([c.function(t) for t in terms], dtype=c.dtype)
    return {name: out[name] for name in sel.names}
