"""Legal moves of a batch of positions as lc0 policy indices, vectorised from bitboards.

python-chess lists the legal moves of one board at a time in Python (~56 µs per middlegame
position here, ~77 µs with the policy indices). The engine needs them for every position it
evaluates, in the thread that feeds ONNX Runtime, so this module computes them for a whole batch
with a few dozen numpy operations, in lc0's side-to-move frame:

1. every move each of our pieces could make on an empty board (a table per piece type and square,
   in policy-index space), kept where the path is clear and the target square fits the piece
   (pawns push onto empty squares and capture onto their pieces or the en-passant square);
2. a move is legal when our king is not attacked after it. That test runs only on moves that can
   expose the king: king moves, moves of a piece on a line with our king, en-passant captures, and
   every move of a side in check;
3. castling (lc0's king-takes-rook index) when the rights, an empty path and unattacked king squares
   allow it, by python-chess's rules.

Positions outside what the tables cover (no king or two kings on a side, pawns on the first or last
rank, an en-passant square without the pawn that just moved, Chess960 boards) are listed by
python-chess instead, so the result always equals python-chess's legal moves (tested on real games
and random play).

>>> [(moves, idx)] = legal_moves_batch([chess.Board()])
>>> len(moves), sorted(m.uci() for m in moves)[:3]
(20, ['a2a3', 'a2a4', 'b1a3'])
"""

from __future__ import annotations

import chess
import numpy as np

from conceptchess.lc0.encoder import _SWAP, _US_THEM, _castling_row, board_row
from conceptchess.lc0.policy_map import _KNIGHT_JUMPS, _QUEEN_DIRS, POLICY_INDEX, legal_move_indices

_ONE = np.uint64(1)
_SQ_BB = np.array([1 << s for s in range(64)], dtype=np.uint64)
NORMAL, PUSH, CAPTURE = 0, 1, 2  # what a move's target square must hold: not ours / empty / theirs or en passant
P, N, B, R, Q, K = range(6)


def _sq(f: int, r: int) -> int | None:
    return r * 8 + f if 0 <= f < 8 and 0 <= r < 8 else None


def _build_geometry():
    knight = np.zeros(64, np.uint64)
    king = np.zeros(64, np.uint64)
    pawn = np.zeros(64, np.uint64)  # squares a pawn of the side to move on s attacks
    between = np.zeros((64, 64), np.uint64)  # squares strictly between two squares on a queen line
    rays_r = np.zeros(64, np.uint64)
    rays_b = np.zeros(64, np.uint64)
    aligned = np.zeros((64, 64), bool)  # on one queen line
    for s in range(64):
        f, r = s % 8, s // 8
        for df, dr in _KNIGHT_JUMPS:
            if (t := _sq(f + df, r + dr)) is not None:
                knight[s] |= _SQ_BB[t]
        for d, (df, dr) in enumerate(_QUEEN_DIRS):
            if (t := _sq(f + df, r + dr)) is not None:
                king[s] |= _SQ_BB[t]
            path = np.uint64(0)
            for k in range(1, 8):
                if (t := _sq(f + df * k, r + dr * k)) is None:
                    break
                between[s, t] = path
                aligned[s, t] = True
                if d % 2 == 0:
                    rays_r[s] |= _SQ_BB[t]
                else:
                    rays_b[s] |= _SQ_BB[t]
                path |= _SQ_BB[t]
        for df in (-1, 1):
            if (t := _sq(f + df, r + 1)) is not None:
                pawn[s] |= _SQ_BB[t]
    return knight, king, pawn, between, rays_r, rays_b, aligned


_KNIGHT_ATT, _KING_ATT, _PAWN_ATT, _BETWEEN, _RAYS_R, _RAYS_B, _ALIGNED = _build_geometry()


def _piece_moves(piece: int, s: int) -> list[tuple[str, int, int]]:
    """(uci in the side-to-move frame, target square, kind) of every move ``piece`` on ``s`` might make."""
    f, r = s % 8, s // 8
    out = []
    if piece == P:
        if r in (0, 7):
            return out
        promos = "nqrb" if r == 6 else ""
        for df, kind in ((0, PUSH), (-1, CAPTURE), (1, CAPTURE)):
            if (t := _sq(f + df, r + 1)) is not None:
                uci = chess.SQUARE_NAMES[s] + chess.SQUARE_NAMES[t]
                out += [(uci + p, t, kind) for p in promos] if promos else [(uci, t, kind)]
        if r == 1:
            out.append((chess.SQUARE_NAMES[s] + chess.SQUARE_NAMES[s + 16], s + 16, PUSH))
        return out
    if piece == N:
        steps = [(df, dr, 1) for df, dr in _KNIGHT_JUMPS]
    else:
        dirs = {B: _QUEEN_DIRS[1::2], R: _QUEEN_DIRS[0::2], Q: _QUEEN_DIRS, K: _QUEEN_DIRS}[piece]
        steps = [(df, dr, 1 if piece == K else 7) for df, dr in dirs]
    for df, dr, reach in steps:
        for k in range(1, reach + 1):
            if (t := _sq(f + df * k, r + dr * k)) is None:
                break
            out.append((chess.SQUARE_NAMES[s] + chess.SQUARE_NAMES[t], t, NORMAL))
    return out


def _build_slots():
    """Candidate moves of every (piece, square), stored one after another (``_START`` gives where
    each pair's run begins, ``_COUNT`` its length), plus two castling slots at the end."""
    table = [_piece_moves(p, s) for p in range(6) for s in range(64)]
    count = np.array([len(m) for m in table], np.int64)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    n_slots = int(count.sum()) + 2
    idx = np.full(n_slots, -1, np.int32)
    frm = np.zeros(n_slots, np.int64)
    to = np.zeros(n_slots, np.int64)
    kind = np.zeros(n_slots, np.int8)
    path = np.zeros(n_slots, np.uint64)
    moves = np.empty((2, n_slots), dtype=object)  # chess.Move for white to move, and for black
    for key, cands in enumerate(table):
        piece, s = divmod(key, 64)
        for j, (uci, t, k) in enumerate(cands, start=start[key]):
            idx[j] = POLICY_INDEX[uci if len(uci) == 5 and uci[4] != "n" else uci[:4]]  # a knight promotion is the plain move
            frm[j], to[j], kind[j] = s, t, k
            path[j] = _BETWEEN[s, t] if piece != N else 0
            promo = chess.PIECE_SYMBOLS.index(uci[4]) if len(uci) == 5 else None
            moves[0, j] = chess.Move(s, t, promo)
            moves[1, j] = chess.Move(s ^ 56, t ^ 56, promo)
    for j, (rook, king_to) in zip((n_slots - 2, n_slots - 1), ((chess.H1, chess.G1), (chess.A1, chess.C1))):
        idx[j] = POLICY_INDEX["e1" + chess.SQUARE_NAMES[rook]]  # lc0 writes castling as king takes rook
        frm[j], to[j] = chess.E1, rook
        moves[0, j] = chess.Move(chess.E1, king_to)
        moves[1, j] = chess.Move(chess.E1 ^ 56, king_to ^ 56)
    return start, count, idx, frm, to, kind, path, moves


_START, _COUNT, _IDX, _FROM, _TO, _KIND, _PATH, _MOVES = _build_slots()
_SLOT_OO, _SLOT_OOO = len(_IDX) - 2, len(_IDX) - 1
_RANKS_1_8 = np.uint64(0xFF000000000000FF)


def _bits(x: np.ndarray) -> np.ndarray:
    """Unpack uint64 bitboards [..., 64] (bit s = square s)."""
    x = np.ascontiguousarray(x, dtype=np.uint64)
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 8), axis=-1, bitorder="little")


def attacked(sq: np.ndarray, occ: np.ndarray, their: np.ndarray) -> np.ndarray:
    """Whether square ``sq[i]`` is attacked by the pieces ``their[i]`` (P N B R Q K bitboards of the side
    not to move, side-to-move frame) with occupancy ``occ[i]``."""
    hit = (_KNIGHT_ATT[sq] & their[:, N]) | (_KING_ATT[sq] & their[:, K]) | (_PAWN_ATT[sq] & their[:, P])
    rq = their[:, R] | their[:, Q]
    bq = their[:, B] | their[:, Q]
    sliders = (_RAYS_R[sq] & rq) | (_RAYS_B[sq] & bq)
    out = hit != 0
    cand = np.flatnonzero(sliders)
    if len(cand):
        f = np.flatnonzero(_bits(sliders[cand]))
        i, s = cand[f // 64], f % 64
        free = (_BETWEEN[sq[i], s] & occ[i]) == 0
        out[i[free]] = True
    return out


def legal_move_slots(pieces: np.ndarray, black: np.ndarray, castling: np.ndarray, ep: np.ndarray):
    """The legal moves of N positions, as rows of (position, policy index, slot), sorted.

    ``pieces``: (N, 12) uint64 bitboards, absolute colours (white P N B R Q K, black P N B R Q K);
    ``black``: (N,) side to move; ``castling``: (N, 4) white O-O-O, white O-O, black O-O-O, black O-O
    rights; ``ep``: (N,) python-chess en-passant square or -1. Returns ``(pos, index, slot, ok)``:
    ``slot`` picks the ``chess.Move`` from :data:`_MOVES`; ``ok`` (N,) is False for positions the
    tables do not cover (their rows are absent; see the module docstring).
    """
    n = len(black)
    black = np.asarray(black, bool)
    bb = np.array(pieces, dtype=np.uint64)
    if black.any():
        bb[black] = bb[black][:, _SWAP].byteswap()  # mirror the ranks, swap the colours
    cast = np.where(black[:, None], np.asarray(castling, bool)[:, _US_THEM], castling)
    ep = np.asarray(ep, np.int64)
    ep = np.where(ep >= 0, ep ^ np.where(black, 56, 0), -1)
    our, their = bb[:, :6], bb[:, 6:]
    our_all = np.bitwise_or.reduce(our, axis=1)
    their_all = np.bitwise_or.reduce(their, axis=1)
    occ = our_all | their_all

    f = np.flatnonzero(_bits(our))  # our pieces: position, piece type, square
    p, t, s = f // 384, f // 64 % 6, f % 64
    is_king = t == K
    kings = np.bincount(p[is_king], minlength=n)
    ksq = np.zeros(n, np.int64)
    ksq[p[is_king]] = s[is_king]
    has_ep = ep >= 0
    ep_sq = np.where(has_ep, ep, 0)
    ep_bb = np.where(has_ep, _SQ_BB[ep_sq], np.uint64(0))
    ep_rank6 = has_ep & (ep_sq >= 40) & (ep_sq < 48)
    ep_pawn = np.where(ep_rank6, _SQ_BB[np.maximum(ep_sq - 8, 0)], np.uint64(0))  # the pawn that just moved
    single_king = (their[:, K] != 0) & ((their[:, K] & (their[:, K] - _ONE)) == 0)
    ok = ((kings == 1) & single_king & (((our[:, P] | their[:, P]) & _RANKS_1_8) == 0)
          & (~has_ep | (ep_rank6 & ((their[:, P] & ep_pawn) != 0) & ((occ & ep_bb) == 0))))

    # 1. candidate moves of every piece, kept where path and target fit
    keep = ok[p]
    p, t, s = p[keep], t[keep], s[keep]
    key = t * 64 + s
    count = _COUNT[key]
    run_start = np.cumsum(count) - count
    slot = np.repeat(_START[key] - run_start, count) + np.arange(run_start[-1] + count[-1] if len(count) else 0)
    pc = np.repeat(p, count)
    tc = np.repeat(t, count)
    to_bb = _SQ_BB[_TO[slot]]
    kind = _KIND[slot]
    o = occ[pc]
    target = np.where(kind == NORMAL, (our_all[pc] & to_bb) == 0,
                      np.where(kind == PUSH, (o & to_bb) == 0, ((their_all[pc] | ep_bb[pc]) & to_bb) != 0))
    fit = target & ((o & _PATH[slot]) == 0)
    slot, pc, tc, to_bb, o = slot[fit], pc[fit], tc[fit], to_bb[fit], o[fit]

    # 2. king safety, tested where a move can expose the king
    in_check = attacked(ksq, occ, their)
    frm = _FROM[slot]
    is_ep = (tc == P) & ((to_bb & ep_bb[pc]) != 0)
    test = np.flatnonzero(in_check[pc] | (tc == K) | _ALIGNED[ksq[pc], frm] | is_ep)
    if len(test):
        q = pc[test]
        gone = _SQ_BB[frm[test]] | np.where(is_ep[test], ep_pawn[q], np.uint64(0))
        occ2 = (o[test] & ~gone) | to_bb[test]
        their2 = their[q] & ~(to_bb[test] | gone)[:, None]
        king2 = np.where(tc[test] == K, _TO[slot[test]], ksq[q])
        legal = np.ones(len(slot), bool)
        legal[test] = ~attacked(king2, occ2, their2)
        slot, pc = slot[legal], pc[legal]

    # 3. castling: king on e1, rook in its corner, empty path, king squares not attacked
    e1 = _SQ_BB[chess.E1]
    rows = [slot], [pc]
    for col, slot_c, rook, rook_to, king_to, empty in ((1, _SLOT_OO, chess.H1, chess.F1, chess.G1, 0x60),
                                                       (0, _SLOT_OOO, chess.A1, chess.D1, chess.C1, 0x0E)):
        can = np.flatnonzero(ok & cast[:, col] & (ksq == chess.E1) & ((our[:, R] & _SQ_BB[rook]) != 0)
                             & ((occ & np.uint64(empty)) == 0) & ~in_check)
        if len(can):
            m = len(can)
            sq = np.repeat(np.array([rook_to, king_to]), m)
            occ3 = np.concatenate([occ[can] ^ e1, occ[can] ^ e1 ^ _SQ_BB[rook] ^ _SQ_BB[rook_to]])
            hit = attacked(sq, occ3, np.concatenate([their[can], their[can]]))
            can = can[~(hit[:m] | hit[m:])]
            rows[0].append(np.full(len(can), slot_c))
            rows[1].append(can)
    slot, pc = np.concatenate(rows[0]), np.concatenate(rows[1])
    index = _IDX[slot].astype(np.int64)
    order = np.argsort(pc * 2048 + index, kind="stable")
    return pc[order], index[order], slot[order], ok


def legal_moves_batch(boards: list[chess.Board]) -> list[tuple[list[chess.Move], np.ndarray]]:
    """For each board, its legal moves and their lc0 policy indices (moves in policy-index order)."""
    if not boards:
        return []
    pieces = np.array([board_row(b) for b in boards], dtype=np.uint64)
    castling = np.array([_castling_row(b) for b in boards], dtype=bool).reshape(-1, 4)
    black = np.array([not b.turn for b in boards], dtype=bool)
    ep = np.array([-1 if b.ep_square is None else b.ep_square for b in boards], dtype=np.int64)
    pos, index, slot, ok = legal_move_slots(pieces, black, castling, ep)
    moves = _MOVES[black[pos].astype(np.int64), slot].tolist()
    ends = np.cumsum(np.bincount(pos, minlength=len(boards))).tolist()
    out, start = [], 0
    for i, (b, end) in enumerate(zip(boards, ends)):
        out.append((moves[start:end], index[start:end]) if ok[i] and not b.chess960 else _sorted(*legal_move_indices(b)))
        start = end
    return out


def _sorted(moves: list[chess.Move], index: np.ndarray) -> tuple[list[chess.Move], np.ndarray]:
    order = np.argsort(index, kind="stable")
    return [moves[i] for i in order.tolist()], index[order]
