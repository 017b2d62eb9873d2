"""Puzzle themes from board geometry, named as Lichess names them.

:func:`tag` looks at the position, the solution line (UCI, solver first and last) and, when known,
Stockfish's score of the line (the solver's side). Definitions (close to lichess-puzzler's tagger,
simplified where it needs a search; "solver move" = a move of the side solving):

- ``mate``, ``mateIn1`` … ``mateIn5``: the line ends in checkmate after N solver moves;
  ``backRankMate`` (mated king on its first rank, boxed in by its own pieces, checked along that
  rank), ``smotheredMate`` (a knight mates a king whose every neighbour square holds its own pieces).
- ``crushing`` / ``advantage`` / ``equality``: no mate and the score is above +6, above +2, or
  otherwise (needs the score).
- ``oneMove``, ``short`` (2 solver moves), ``long`` (3), ``veryLong`` (4 or more).
- ``opening`` (move 12 or earlier, not an endgame), ``endgame`` (pieces other than kings and pawns
  worth at most 26 points together, N=B=3, R=5, Q=9), else ``middlegame``.
- ``fork``: a solver move puts a non-king piece on a square where it is not lost for nothing and
  attacks two or more enemy non-pawn pieces that are worth more than it or are undefended (a king counts).
- ``pin``: a solver move places a bishop, rook or queen so that an enemy piece stands in front of a
  more valuable enemy piece (or the king) on its line.
- ``skewer``: the same, with the front piece the more valuable one (or the king) and a non-pawn behind it.
- ``discoveredAttack``: a solver move uncovers a line from another of the solver's bishops, rooks or
  queens to an enemy king or non-pawn piece.
- ``doubleCheck``: a solver move gives check with two pieces.
- ``sacrifice``: after a solver move and the reply, the solver is down 2 or more points of material
  compared with the start (no promotion in the line); or the last solver move leaves a piece worth
  2 or more points more than what it took en prise (not a mating move).
- ``hangingPiece``: the first solver move takes an undefended non-pawn piece (lines of 1–2 solver moves).
- ``promotion``, ``underPromotion``, ``enPassant``, ``castling``: a solver move does that.
- ``quietMove``: a solver move that neither captures, nor gives or escapes check, nor attacks an
  enemy piece with the moved piece or by discovery, nor pushes a pawn to the 6th–8th rank, and is
  not a king move.
- ``defensiveMove``: the last solver move is quiet in that sense (with 3+ legal moves to choose
  from), the puzzle is not a mate and its score is +2 or less: a move that saves rather than wins.

>>> tag(chess.Board("7k/6pp/8/8/8/8/8/RR4K1 w - - 0 1"), ["a1a8"])
['backRankMate', 'endgame', 'mate', 'mateIn1', 'oneMove']
"""

from __future__ import annotations

import chess
import chess.engine

VALUES = {chess.PAWN: 1, chess.KNIGHT: 3, chess.BISHOP: 3, chess.ROOK: 5, chess.QUEEN: 9, chess.KING: 100}
THEMES = ("mate", "mateIn1", "mateIn2", "mateIn3", "mateIn4", "mateIn5", "backRankMate", "smotheredMate", "crushing",
          "advantage", "equality", "oneMove", "short", "long", "veryLong", "opening", "middlegame", "endgame", "fork", "pin",
          "skewer", "discoveredAttack", "doubleCheck", "sacrifice", "hangingPiece", "promotion", "underPromotion",
          "enPassant", "castling", "quietMove", "defensiveMove")
_DIRS = {chess.BISHOP: [(1, 1), (1, -1), (-1, 1), (-1, -1)], chess.ROOK: [(1, 0), (-1, 0), (0, 1), (0, -1)]}
_DIRS[chess.QUEEN] = _DIRS[chess.BISHOP] + _DIRS[chess.ROOK]


def material(board: chess.Board, color: chess.Color) -> int:
    """Material of ``color`` minus the other side's (P=1, N=B=3, R=5, Q=9)."""
    s = 0
    for pt in (chess.PAWN, chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN):
        s += VALUES[pt] * (len(board.pieces(pt, color)) - len(board.pieces(pt, not color)))
    return s


def _pieces_value(board: chess.Board) -> int:
    return sum(VALUES[pt] * len(board.pieces(pt, c)) for pt in (chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN)
               for c in chess.COLORS)


def phase(board: chess.Board) -> str:
    if _pieces_value(board) <= 26:
        return "endgame"
    return "opening" if board.fullmove_number <= 12 else "middlegame"


def _defended(board: chess.Board, square: chess.Square) -> bool:
    piece = board.piece_at(square)
    return piece is not None and bool(board.attackers(piece.color, square))


def _en_prise(board: chess.Board, square: chess.Square) -> bool:
    """The piece on ``square`` can be taken for less than it is worth (or for free)."""
    piece = board.piece_at(square)
    if piece is None:
        return False
    attackers = board.attackers(not piece.color, square)
    if not attackers:
        return False
    if not board.attackers(piece.color, square):
        return True
    return min(VALUES[board.piece_type_at(a)] for a in attackers) < VALUES[piece.piece_type]


def _ray(board: chess.Board, start: chess.Square, df: int, dr: int) -> list[chess.Square]:
    """Occupied squares along a direction from ``start`` (excluded), nearest first."""
    out = []
    f, r = chess.square_file(start) + df, chess.square_rank(start) + dr
    while 0 <= f < 8 and 0 <= r < 8:
        sq = chess.square(f, r)
        if board.piece_at(sq) is not None:
            out.append(sq)
        f, r = f + df, r + dr
    return out


def _line_targets(board: chess.Board, square: chess.Square) -> list[tuple[chess.Square, chess.Square]]:
    """For a slider on ``square``: (front, behind) pairs of enemy pieces on its lines, adjacent on the line."""
    piece = board.piece_at(square)
    out = []
    for df, dr in _DIRS.get(piece.piece_type, []):
        occ = _ray(board, square, df, dr)
        if len(occ) >= 2:
            a, b = occ[0], occ[1]
            if board.color_at(a) == board.color_at(b) == (not piece.color):
                out.append((a, b))
    return out


def _solver_moves(board: chess.Board, moves: list[chess.Move]):
    """(board before, move, board after) for each solver move of the line."""
    b = board.copy(stack=False)
    for i, m in enumerate(moves):
        before = b.copy(stack=False)
        b.push(m)
        if i % 2 == 0:
            yield before, m, b.copy(stack=False)


def _is_fork(before: chess.Board, move: chess.Move, after: chess.Board) -> bool:
    mover = after.piece_at(move.to_square)
    if mover is None or mover.piece_type == chess.KING or _en_prise(after, move.to_square):
        return False
    n = 0
    for sq in after.attacks(move.to_square):
        p = after.piece_at(sq)
        if p is None or p.color == mover.color or p.piece_type == chess.PAWN:
            continue
        if VALUES[p.piece_type] > VALUES[mover.piece_type] or not _defended(after, sq):
            n += 1
    return n >= 2


def _pin_or_skewer(after: chess.Board, move: chess.Move) -> tuple[bool, bool]:
    mover = after.piece_at(move.to_square)
    if mover is None or mover.piece_type not in _DIRS:
        return False, False
    pin = skewer = False
    for a, b in _line_targets(after, move.to_square):
        va, vb = VALUES[after.piece_type_at(a)], VALUES[after.piece_type_at(b)]
        if vb > va:
            pin = True
        elif va > vb and after.piece_type_at(b) != chess.PAWN:
            skewer = True
    return pin, skewer


def _is_discovered(before: chess.Board, move: chess.Move, after: chess.Board) -> bool:
    me = before.turn
    for sq in after.pieces(chess.BISHOP, me) | after.pieces(chess.ROOK, me) | after.pieces(chess.QUEEN, me):
        if sq == move.to_square:
            continue
        for target in after.attacks(sq):
            p = after.piece_at(target)
            if p is None or p.color == me or p.piece_type == chess.PAWN:
                continue
            if move.from_square in chess.SquareSet(chess.between(sq, target)) and target not in before.attacks(sq):
                return True
    return False


def _is_quiet(before: chess.Board, move: chess.Move, after: chess.Board) -> bool:
    me = before.turn
    if before.is_capture(move) or after.is_check() or before.is_check() or move.promotion:
        return False
    if before.piece_type_at(move.from_square) == chess.KING:
        return False
    if before.piece_type_at(move.from_square) == chess.PAWN:
        rank = chess.square_rank(move.to_square)
        if (rank if me == chess.WHITE else 7 - rank) >= 5:
            return False
    return not any(after.color_at(sq) == (not me) for sq in after.attacks(move.to_square))


def _mate_kind(final: chess.Board, last: chess.Move) -> list[str]:
    out = []
    king = final.king(final.turn)
    home = 0 if final.turn == chess.WHITE else 7
    checkers = final.checkers()
    if king is None:
        return out
    if chess.square_rank(king) == home and all(chess.square_rank(c) == home and final.piece_type_at(c) in (chess.ROOK, chess.QUEEN)
                                               for c in checkers):
        ahead = [sq for sq in chess.SquareSet(chess.BB_KING_ATTACKS[king]) if chess.square_rank(sq) != home]
        if ahead and all(final.color_at(sq) == final.turn for sq in ahead):
            out.append("backRankMate")
    if final.piece_type_at(last.to_square) == chess.KNIGHT and len(checkers) == 1:
        if all(final.color_at(sq) == final.turn for sq in chess.SquareSet(chess.BB_KING_ATTACKS[king])):
            out.append("smotheredMate")
    return out


def tag(board: chess.Board, solution: list[str], score: chess.engine.Score | None = None) -> list[str]:
    """Themes of a puzzle (sorted): ``board`` is the position shown, ``solution`` the UCI line,
    ``score`` Stockfish's score of the line from the solver's side (for crushing/advantage/equality)."""
    b = board.copy(stack=False)
    moves = []
    for u in solution:
        m = b.parse_uci(u)
        moves.append(m)
        b.push(m)
    final = b
    me = board.turn
    n = (len(moves) + 1) // 2
    tags: set[str] = {phase(board), {1: "oneMove", 2: "short", 3: "long"}.get(n, "veryLong")} if moves else {phase(board)}
    mate = final.is_checkmate() and final.turn != me
    if mate:
        tags.add("mate")
        if n <= 5:
            tags.add(f"mateIn{n}")
        tags.update(_mate_kind(final, moves[-1]))
    elif score is not None:
        cp = score.score(mate_score=100_000)
        tags.add("crushing" if cp > 600 else "advantage" if cp > 200 else "equality")
    steps = list(_solver_moves(board, moves))
    promoted = False
    for before, m, after in steps:
        if m.promotion:
            promoted = True
            tags.add("promotion")
            if m.promotion != chess.QUEEN:
                tags.add("underPromotion")
        if before.is_en_passant(m):
            tags.add("enPassant")
        if before.is_castling(m):
            tags.add("castling")
        if len(after.checkers()) >= 2:
            tags.add("doubleCheck")
        if _is_fork(before, m, after):
            tags.add("fork")
        pin, skewer = _pin_or_skewer(after, m)
        if pin:
            tags.add("pin")
        if skewer:
            tags.add("skewer")
        discovered = _is_discovered(before, m, after)
        if discovered:
            tags.add("discoveredAttack")
        if _is_quiet(before, m, after) and not discovered:
            tags.add("quietMove")
    if steps:
        before, m, after = steps[0]
        captured = before.piece_at(m.to_square)
        if captured is not None and captured.piece_type != chess.PAWN and not _defended(before, m.to_square) and n <= 2:
            tags.add("hangingPiece")
        # sacrifice: down 2+ after a reply, or the last move leaves a piece en prise for nothing
        start = material(board, me)
        b = board.copy(stack=False)
        for i, mv in enumerate(moves):
            b.push(mv)
            if i % 2 == 1 and material(b, me) - start <= -2 and not promoted:
                tags.add("sacrifice")
        before, m, after = steps[-1]
        if not mate and len(moves) % 2 == 1:
            moved = after.piece_at(m.to_square)
            taken = before.piece_at(m.to_square)
            gain = VALUES[taken.piece_type] if taken else 0
            if moved and moved.piece_type != chess.KING and _en_prise(after, m.to_square) and VALUES[moved.piece_type] - gain >= 2:
                tags.add("sacrifice")
        if (not mate and before.legal_moves.count() >= 3 and _is_quiet(before, m, after)
                and score is not None and score.score(mate_score=100_000) <= 200):
            tags.add("defensiveMove")
    return sorted(tags)
