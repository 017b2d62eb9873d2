"""Why a mined prototype is no puzzle: the trivial-puzzle filters and the reasons a prototype is rejected.

:class:`MineFilters` holds the filters' settings; :func:`board_filter` applies the three that need
only the board and the network's move (before Stockfish). Every prototype that is no puzzle is a
:class:`Rejection` counted under the first of :data:`REJECTION_REASONS` it meets, in the order the
checks meet them; the Stockfish verdicts in between are :mod:`~conceptchess.puzzles.verify`'s categories.

>>> b = chess.Board("6k1/5ppp/8/8/8/7P/5PP1/r5K1 w - - 0 1")
>>> board_filter(b, chess.Move.from_uci("g1h2"), None, None, MineFilters())
('check evasion', 'check evasion: Kh2 with 1 legal move(s) (≤ 3)')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import chess

from conceptchess.puzzles.difficulty import MIN_DIFFICULTY, TRIVIAL_WEAK_PROB
from conceptchess.puzzles.verify import DECIDED_CP, GAME_OVER, MATE_NOT_FORCED, NETWORK_DISAGREES, NOT_UNIQUE, NOT_WINNING, ONE_LEGAL_MOVE

DUPLICATE_POSITION = "duplicate position"
RECAPTURE = "recapture"
CHECK_EVASION = "check evasion"
WEAK_PLAYS_IT = "weak network plays it"
ALREADY_DECIDED = "already decided"
TOO_EASY = "too easy"
DUPLICATE_PUZZLE = "duplicate puzzle"
REJECTION_REASONS = (DUPLICATE_POSITION, GAME_OVER, RECAPTURE, CHECK_EVASION, WEAK_PLAYS_IT, ONE_LEGAL_MOVE, NETWORK_DISAGREES,
                     NOT_UNIQUE, NOT_WINNING, MATE_NOT_FORCED, ALREADY_DECIDED, TOO_EASY, DUPLICATE_PUZZLE)


@dataclass(frozen=True)
class MineFilters:
    """Filters for trivial puzzles, all on by default; ``False``/0 turns one off.

    - ``recaptures``: the network's move takes back on the square where the opponent's last move
      captured (a plain exchange; checked before Stockfish, so it needs the move stack).
    - ``check_evasion_max_legal`` (3): the side to move is in check with at most this many legal moves.
    - ``weak_max_prob`` (0.5): the weak network (``weak_network`` of :func:`~conceptchess.puzzles.mine.mine`,
      by default the series' weakest checkpoint) already plays the first move with at least this
      probability. Without a weak network this filter cannot run (each puzzle's record then has
      ``weak_network: None``).
    - ``min_difficulty`` (0.1): the difficulty estimate (:mod:`~conceptchess.puzzles.difficulty`) is
      below this.
    - ``decided_cp`` (500): the game was decided before the move
      (:func:`~conceptchess.puzzles.verify.already_decided`: won or lost by this many centipawns
      whatever is played, or the solver already this far ahead before the opponent's last move).

    The first three run before Stockfish; the last two on the lines Stockfish accepted.
    """

    recaptures: bool = True
    check_evasion_max_legal: int = 3
    weak_max_prob: float = TRIVIAL_WEAK_PROB
    min_difficulty: float = MIN_DIFFICULTY
    decided_cp: int = DECIDED_CP

    @classmethod
    def off(cls) -> MineFilters:
        """Every filter off (puzzles as the verifier alone accepts them)."""
        return cls(False, 0, 0.0, 0.0, 0)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Rejection:
    """A prototype that is no puzzle: ``category`` is one of :data:`REJECTION_REASONS`, ``reason`` the detail."""

    position: object
    rank: int
    reason: str
    category: str

    def __post_init__(self):
        if self.category not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection category {self.category!r}")


def board_filter(board: chess.Board, move: chess.Move, weak, weak_label: str | None, filters: MineFilters) -> tuple[str, str] | None:
    """(category, reason) of the first board filter the network's ``move`` fails, before Stockfish;
    ``weak``: (probability, rank, legal moves) of the move under the weak network, or None."""
    if filters.recaptures and recaptures(board, move):
        return RECAPTURE, f"recapture: the network plays {board.san(move)}, taking back on {chess.square_name(move.to_square)}"
    legal = board.legal_moves.count()
    if filters.check_evasion_max_legal and board.is_check() and legal <= filters.check_evasion_max_legal:
        return CHECK_EVASION, f"check evasion: {board.san(move)} with {legal} legal move(s) (≤ {filters.check_evasion_max_legal})"
    if filters.weak_max_prob and weak is not None and weak[0] >= filters.weak_max_prob:
        return WEAK_PLAYS_IT, f"weak network plays it: {weak_label} plays {board.san(move)} with p = {weak[0]:.2f} (≥ {filters.weak_max_prob})"
    return None


def recaptures(board: chess.Board, move: chess.Move | None) -> bool:
    """``move`` captures on the square where the opponent's last move (in the board's stack) captured."""
    if move is None or not board.move_stack or not board.is_capture(move):
        return False
    last = board.pop()
    try:
        was_capture = board.is_capture(last)
    finally:
        board.push(last)
    return was_capture and last.to_square == move.to_square
