"""lc0's INPUT_CLASSICAL_112_PLANE encoder, vectorised from bitboards.

Planes (side-to-move frame: ranks flipped and colours swapped when black is to move):
``13·i + 0..5`` our P N B R Q K and ``13·i + 6..11`` theirs at history step i (0 = now, 7 = seven
plies ago), ``13·i + 12`` all ones if that position occurred before; 104–107 castling rights (us
O-O-O, us O-O, them O-O-O, them O-O); 108 ones if black is to move; 109 the rule-50 ply count; 110
zeros; 111 ones.

Missing history steps follow lc0's default ("fen_only"): a game that began at the standard start
position leaves them empty; a game set up from any other FEN fills them with copies of its first
position, with a just-made double pawn push taken back.

The work is split in two: :func:`game_histories` replays a game once, turning every ply into 12
bitboards, and :func:`encode` turns a batch of 8-step bitboard histories into planes with numpy only.

>>> planes = encode_boards([chess.Board()])                 # doctest: +SKIP
>>> planes.shape                                            # doctest: +SKIP
(1, 112, 8, 8)
"""

from __future__ import annotations

from dataclasses import dataclass

import chess
import numpy as np

HISTORY = 8
_SWAP = np.array([6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5])


@dataclass
class Histories:
    """Bitboard histories of N positions (absolute colours: white P N B R Q K, black P N B R Q K)."""

    boards: np.ndarray  # (N, 8, 12) uint64; step 0 is the position itself; all-zero rows are absent steps
    reps: np.ndarray  # (N, 8) uint8: 1 where that step's position had occurred before
    black: np.ndarray  # (N,) bool: black to move
    castling: np.ndarray  # (N, 4) bool: white O-O-O, white O-O, black O-O-O, black O-O
    rule50: np.ndarray  # (N,) float32

    def __len__(self) -> int:
        return len(self.black)

    def __getitem__(self, idx) -> "Histories":
        return Histories(self.boards[idx], self.reps[idx], self.black[idx], self.castling[idx], self.rule50[idx])

    @staticmethod
    def concat(parts: list["Histories"]) -> "Histories":
        if not parts:
            return Histories(np.zeros((0, HISTORY, 12), np.uint64), np.zeros((0, HISTORY), np.uint8),
                             np.zeros(0, bool), np.zeros((0, 4), bool), np.zeros(0, np.float32))
        return Histories(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("boards", "reps", "black", "castling", "rule50")))


def board_row(board: chess.Board) -> list[int]:
    """The 12 piece bitboards of a board (white P N B R Q K, black P N B R Q K)."""
    b, w = board.occupied_co  # indexed by colour: BLACK = 0, WHITE = 1
    p, n, bi, r, q, k = board.pawns, board.knights, board.bishops, board.rooks, board.queens, board.kings
    return [p & w, n & w, bi & w, r & w, q & w, k & w, p & b, n & b, bi & b, r & b, q & b, k & b]


_START_ROW = board_row(chess.Board())


def _castling_row(board: chess.Board) -> tuple[bool, bool, bool, bool]:
    cr = board.castling_rights
    return (bool(cr & chess.BB_A1), bool(cr & chess.BB_H1), bool(cr & chess.BB_A8), bool(cr & chess.BB_H8))


def _fill_row(board: chess.Board) -> list[int]:
    """Position 0 as lc0 repeats it into missing history: a double pawn push just made is taken back."""
    return fill_row_of(board_row(board), board.ep_square)


def fill_row_of(row: list[int], ep: int | None) -> list[int]:
    """:func:`_fill_row` of the 12 bitboards ``row`` with en-passant square ``ep`` (python-chess's)."""
    row = list(row)
    if ep is not None:
        if chess.square_rank(ep) == 2 and row[0] >> (ep + 8) & 1:  # white pushed to rank 4
            row[0] = row[0] & ~(1 << (ep + 8)) | (1 << (ep - 8))
        elif chess.square_rank(ep) == 5 and row[6] >> (ep - 8) & 1:  # black pushed to rank 5
            row[6] = row[6] & ~(1 << (ep - 8)) | (1 << (ep + 8))
    return row


def starts_at_standard_position(board: chess.Board) -> bool:
    """lc0's test for leaving missing history empty: the standard start position, white to move."""
    return is_standard_start(board_row(board), board.turn, board.castling_rights)


def is_standard_start(row: list[int], white: bool, castling_rights: int) -> bool:
    """:func:`starts_at_standard_position` of 12 bitboards, side to move and python-chess castling rights."""
    return white and castling_rights == chess.BB_CORNERS and list(row) == _START_ROW


class IllegalMoveInHistory(ValueError):
    """A move of a replayed history is illegal; ``ply`` is its 1-based index."""

    def __init__(self, ply: int, move: chess.Move, board: chess.Board):
        super().__init__(f"move {ply} {move.uci()!r} is illegal in {board.fen()}")
        self.ply, self.move = ply, move


def game_histories(start: chess.Board, moves: list[chess.Move], plies: list[int] | None = None,
                   keep_boards: bool = False, check_legal: bool = False) -> tuple[Histories, list[chess.Board]]:
    """Replay ``moves`` from ``start`` and give the history of the positions at the requested plies.

    ``plies`` (default: every position, 0 … len(moves)) indexes positions: ply t is the position
    after t moves. With ``keep_boards`` the matching ``chess.Board`` copies (without move stack) come
    back too. With ``check_legal`` each move is checked before it is played
    (:class:`IllegalMoveInHistory`); otherwise the caller guarantees legality.
    """
    board = start.copy(stack=False)
    n = len(moves) + 1
    rows: list[list[int]] = [_fill_row(board)] * (HISTORY - 1) if not starts_at_standard_position(board) else [[0] * 12] * (HISTORY - 1)
    reps = [0] * (HISTORY - 1)
    black, castling, rule50 = [], [], []
    wanted = range(n) if plies is None else sorted(set(plies))
    want = set(wanted) if keep_boards else ()
    boards: dict[int, chess.Board] = {}
    seen: dict[tuple, int] = {}
    for t in range(n):
        if t:
            m = moves[t - 1]
            if check_legal and not board.is_legal(m):
                try:  # also accept king-takes-rook castling (e1h1) and other notations parse_uci knows
                    m = board.parse_uci(m.uci())
                except ValueError:
                    raise IllegalMoveInHistory(t, m, board) from None
            board.push(m)
        row = board_row(board)
        hmc = board.halfmove_clock
        if hmc == 0:
            seen.clear()
        key = (*row, board.turn, board.castling_rights)
        count = seen.get(key, 0)
        seen[key] = count + 1
        rows.append(row)
        reps.append(1 if count else 0)
        black.append(not board.turn)
        castling.append(_castling_row(board))
        rule50.append(hmc)
        if t in want:
            boards[t] = board.copy(stack=False)
    idx = np.fromiter(wanted, dtype=np.int64)
    window = idx[:, None] + (HISTORY - 1) - np.arange(HISTORY)[None, :]
    rows_a = np.array(rows, dtype=np.uint64)
    reps_a = np.array(reps, dtype=np.uint8)
    hist = Histories(rows_a[window], reps_a[window], np.array(black, bool)[idx], np.array(castling, bool).reshape(-1, 4)[idx],
                     np.array(rule50, np.float32)[idx])
    return hist, [boards[t] for t in idx.tolist()] if keep_boards else []


def board_histories(boards: list[chess.Board]) -> Histories:
    """Histories of ``chess.Board`` objects from their move stacks (replayed from each root)."""
    parts = []
    for b in boards:
        root = b.root()
        h, _ = game_histories(root, list(b.move_stack), plies=[len(b.move_stack)])
        parts.append(h)
    return Histories.concat(parts)


_US_THEM = np.array([2, 3, 0, 1])  # castling columns seen from black: its own rights first
# Seen from black, the 96 bytes of a history step (12 little-endian bitboards) are permuted: the
# colours swap (_SWAP) and each board's bytes reverse, which mirrors its ranks.
_FLIP = (_SWAP[:, None] * 8 + np.arange(7, -1, -1)[None, :]).reshape(-1)


def encode(h: Histories) -> np.ndarray:
    """Planes [N, 112, 8, 8] float32 for a batch of histories (numpy only, no per-square loops)."""
    n = len(h)
    black = h.black
    raw = np.ascontiguousarray(h.boards).view(np.uint8).reshape(n, HISTORY, 96)
    if n == 1:  # batch 1: the auxiliary planes from Python scalars, fewer numpy calls
        b = bool(black[0])
        cast = h.castling[0].tolist()
        if b:
            raw = raw.take(_FLIP, axis=2)
            cast = cast[2:] + cast[:2]
        aux1 = np.array([*cast, b, h.rule50[0], 0.0, 1.0], np.float32)[:, None]
    else:
        cast = h.castling
        if black.all():
            raw = raw.take(_FLIP, axis=2)
            cast = cast[:, _US_THEM]
        elif black.any():
            raw = raw.copy()
            raw[black] = raw[black].take(_FLIP, axis=2)
            cast = np.where(black[:, None], cast[:, _US_THEM], cast)
    bits = np.unpackbits(raw, axis=2, bitorder="little")
    out = np.empty((n, 112, 64), dtype=np.float32)
    hist = out[:, :104].reshape(n, HISTORY, 13, 64)
    hist[:, :, :12] = bits.reshape(n, HISTORY, 12, 64)
    hist[:, :, 12] = h.reps[:, :, None]
    if n == 1:
        out[0, 104:] = aux1
    else:
        aux = out[:, 104:]
        aux[:, :4] = cast[:, :, None]  # us O-O-O, us O-O, them O-O-O, them O-O
        aux[:, 4] = black[:, None]
        aux[:, 5] = h.rule50[:, None]
        aux[:, 6] = 0.0
        aux[:, 7] = 1.0
    return out.reshape(n, 112, 8, 8)


def encode_boards(boards: list[chess.Board]) -> np.ndarray:
    """Planes for ``chess.Board`` objects, using each board's move stack as history."""
    return encode(board_histories(boards))
