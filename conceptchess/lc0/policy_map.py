"""lc0's 1858-entry policy vector, both ways, and the 80×8×8 convolution-policy gather map.

lc0 numbers the moves of the side to move, seen from its own side of the board (ranks flipped when
black is to move). Index order: for each from-square a1, b1, …, h8 (square = 8·rank + file), every
queen-line and knight destination in ascending square order (1792 moves); then the 66 promotions to
queen, rook and bishop (``a7a8q``, ``a7a8r``, ``a7a8b``, ``a7b8q``, …). A knight promotion uses the
plain move (``a7a8``) and castling is king-takes-rook (``e1h1``).

>>> POLICY_MOVES[0], POLICY_MOVES[-1], len(POLICY_MOVES)
('a1b1', 'h7h8b', 1858)
>>> POLICY_INDEX['e2e4']
322
"""

from __future__ import annotations

import numpy as np

FILES = "abcdefgh"
_QUEEN_DIRS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))  # N NE E SE S SW W NW
_KNIGHT_JUMPS = ((1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1), (-2, 1), (-1, 2))
_PROMO_DIRS = (-1, 0, 1)  # NW, N, NE as file steps
_CONV_PROMOS = "rbq"  # order of the 3 promotion planes per direction in lc0's conv policy
_LIST_PROMOS = "qrb"  # order of promotions in the 1858 list


def _name(sq: int) -> str:
    return FILES[sq % 8] + str(sq // 8 + 1)


def _on_board(f: int, r: int) -> bool:
    return 0 <= f < 8 and 0 <= r < 8


def _build_moves() -> list[str]:
    moves: list[str] = []
    for sq in range(64):
        f, r = sq % 8, sq // 8
        dests = set()
        for df, dr in _QUEEN_DIRS:
            for k in range(1, 8):
                if _on_board(f + df * k, r + dr * k):
                    dests.add((r + dr * k) * 8 + f + df * k)
        for df, dr in _KNIGHT_JUMPS:
            if _on_board(f + df, r + dr):
                dests.add((r + dr) * 8 + f + df)
        moves += [_name(sq) + _name(d) for d in sorted(dests)]
    for f in range(8):
        for df in _PROMO_DIRS:
            if _on_board(f + df, 7):
                moves += [f"{FILES[f]}7{FILES[f + df]}8{p}" for p in _LIST_PROMOS]
    return moves


POLICY_MOVES: tuple[str, ...] = tuple(_build_moves())
POLICY_INDEX: dict[str, int] = {m: i for i, m in enumerate(POLICY_MOVES)}
N_POLICY = len(POLICY_MOVES)
assert N_POLICY == 1858


def _build_conv_map() -> np.ndarray:
    """For each of the 1858 moves, its flat index in the [80, 8, 8] convolution policy output."""
    table = np.full(N_POLICY, -1, dtype=np.int64)
    plane = 0
    for df, dr in _QUEEN_DIRS:
        for k in range(1, 8):
            for sq in range(64):
                f, r = sq % 8, sq // 8
                if _on_board(f + df * k, r + dr * k):
                    table[POLICY_INDEX[_name(sq) + _name((r + dr * k) * 8 + f + df * k)]] = plane * 64 + sq
            plane += 1
    for df, dr in _KNIGHT_JUMPS:
        for sq in range(64):
            f, r = sq % 8, sq // 8
            if _on_board(f + df, r + dr):
                table[POLICY_INDEX[_name(sq) + _name((r + dr) * 8 + f + df)]] = plane * 64 + sq
        plane += 1
    for df in _PROMO_DIRS:
        for p in _CONV_PROMOS:
            for f in range(8):
                if _on_board(f + df, 7):
                    table[POLICY_INDEX[f"{FILES[f]}7{FILES[f + df]}8{p}"]] = plane * 64 + 6 * 8 + f
            plane += 1
    assert (table >= 0).all() and len(set(table.tolist())) == N_POLICY
    return table


CONV_POLICY_MAP: np.ndarray = _build_conv_map()

# (from, to) in the side-to-move frame → policy index (-1 where no such move); promotions separately.
_FROM_TO = np.full((64, 64), -1, dtype=np.int32)
_PROMO = np.full((64, 64, 7), -1, dtype=np.int32)  # [from, to, chess piece type]
for _i, _m in enumerate(POLICY_MOVES):
    _fr = FILES.index(_m[0]) + 8 * (int(_m[1]) - 1)
    _to = FILES.index(_m[2]) + 8 * (int(_m[3]) - 1)
    if len(_m) == 4:
        _FROM_TO[_fr, _to] = _i
    else:
        _PROMO[_fr, _to, "..nbrq".index(_m[4])] = _i  # chess piece types: N=2 B=3 R=4 Q=5
_PROMO[:, :, 2] = _FROM_TO  # knight promotion is the plain move


def move_to_index(move, turn_white: bool, castling_king: bool = False) -> int:
    """The lc0 policy index of a ``chess.Move`` played by the side to move.

    ``castling_king`` says the move is a castling king move written king-two-squares (``e1g1``);
    it is re-written as king-takes-rook (``e1h1``) as lc0 does.
    """
    fr, to = move.from_square, move.to_square
    if castling_king:
        to = (to & 56) | (7 if to % 8 > fr % 8 else 0)
    if not turn_white:
        fr, to = fr ^ 56, to ^ 56
    idx = _PROMO[fr, to, move.promotion] if move.promotion else _FROM_TO[fr, to]
    if idx < 0:
        raise ValueError(f"move {move.uci()} has no lc0 policy index")
    return int(idx)


def legal_move_indices(board) -> tuple[list, np.ndarray]:
    """Legal moves of a ``chess.Board`` and their lc0 policy indices (same order)."""
    moves = list(board.legal_moves)
    white = board.turn
    idx = np.empty(len(moves), dtype=np.int64)
    kings = board.kings
    for j, m in enumerate(moves):
        fr, to = m.from_square, m.to_square
        if (kings >> fr) & 1 and abs((to & 7) - (fr & 7)) == 2:
            to = (to & 56) | (7 if to > fr else 0)
        if not white:
            fr, to = fr ^ 56, to ^ 56
        idx[j] = _PROMO[fr, to, m.promotion] if m.promotion else _FROM_TO[fr, to]
    return moves, idx
