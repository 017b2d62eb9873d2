"""Replay many move lists at once into encoder histories and boards, each shared prefix once.

:func:`replay` takes positions as ``(fen or None, [uci, ...])`` and gives each one's
:class:`~conceptchess.lc0.encoder.Histories` row and ``chess.Board`` (without move stack), equal to
what :func:`~conceptchess.lc0.encoder.game_histories` gives with ``check_legal=True``:

- the positions form a tree (a root per start, a node per distinct move prefix), so a game is replayed
  once however many of its positions are asked for and in whatever order they come;
- a move is played on twelve integer bitboards and a 64-square mailbox and checked on the way: a
  piece of the side to move, a move its geometry allows (python-chess's attack tables), and our king
  not attacked afterwards — the whole of chess legality, ~6× cheaper than python-chess's ``is_legal``
  + ``push`` board by board (``benchmarks/history_throughput.py``); a FEN start as python-chess writes
  one is read here too when its validity is simple to judge (:func:`_fen_state`);
- a position this does not cover is *declined* (its board is None, its history rows zero): an illegal
  or malformed move, a malformed or illegal FEN, a null move, castling written king-takes-rook. The
  caller replays those with python-chess, which gives the exact result or the exact error.

>>> r = replay([(None, ["e2e4", "e7e5"]), (None, ["e2e4"]), (None, ["e2e5"])])
>>> r.boards[0].fen(), r.boards[1].fen(), r.boards[2]
('rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 2', 'rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1', None)
"""

from __future__ import annotations

import gc
import re
from collections.abc import Sequence
from dataclasses import dataclass

import chess
import numpy as np

from conceptchess.lc0.encoder import HISTORY, Histories, board_row, fill_row_of, is_standard_start


def _uci_table() -> dict[str, tuple[int, ...]]:
    """UCI string → (from, to, promotion piece index 1–4 or 0, from bit, to bit, from·64 + to) for every
    move text this module plays."""
    table = {}
    for fr in range(64):
        for to in range(64):
            if fr != to:
                table[chess.SQUARE_NAMES[fr] + chess.SQUARE_NAMES[to]] = (fr, to, 0, 1 << fr, 1 << to, fr * 64 + to)
    for f in range(8):
        for fr, to in ((48 + f, 56 + f), (8 + f, f)):  # white's 7th rank to its 8th, black's 2nd to its 1st
            for df in (-1, 0, 1):
                if 0 <= f + df < 8:
                    for p in "nbrq":
                        uci = chess.SQUARE_NAMES[fr] + chess.SQUARE_NAMES[to + df] + p
                        table[uci] = (fr, to + df, chess.PIECE_SYMBOLS.index(p) - 1, 1 << fr, 1 << (to + df), fr * 64 + to + df)
    return table


def _line_tables() -> tuple[list[int], list[int]]:
    """Per (from·64 + to): 1 on a rank or file, 2 on a diagonal, 0 otherwise; and the squares between."""
    line, between = [0] * 4096, [0] * 4096
    for fr in range(64):
        for to in range(64):
            df, dr = to % 8 - fr % 8, to // 8 - fr // 8
            if fr != to and (df == 0 or dr == 0):
                line[fr * 64 + to] = 1
            elif fr != to and abs(df) == abs(dr):
                line[fr * 64 + to] = 2
            between[fr * 64 + to] = chess.between(fr, to)
    return line, between


_UCI = _uci_table()
_LINE, _BETWEEN = _line_tables()
_SLIDES = (0, 0, 2, 1, 3, 0)  # lines each piece type (P N B R Q K) slides along: bit 1 ranks/files, bit 2 diagonals
_KNIGHT, _KING = chess.BB_KNIGHT_ATTACKS, chess.BB_KING_ATTACKS
_PAWN = chess.BB_PAWN_ATTACKS  # [colour][square]: squares a pawn of that colour on square attacks
_RANK_M, _FILE_M, _DIAG_M = chess.BB_RANK_MASKS, chess.BB_FILE_MASKS, chess.BB_DIAG_MASKS
_RANK_A, _FILE_A, _DIAG_A = chess.BB_RANK_ATTACKS, chess.BB_FILE_ATTACKS, chess.BB_DIAG_ATTACKS
_RAYS = [_RANK_A[s][0] | _FILE_A[s][0] | _DIAG_A[s][0] for s in range(64)]  # every square a queen on s sees on an empty board




def _attacked(sq: int, occ: int, bb: list[int], t: int, white: bool) -> bool:
    """Whether the pieces ``bb[t : t + 6]`` (P N B R Q K) attack ``sq`` with occupancy ``occ``;
    ``white``: the colour attacked (for the direction of their pawns)."""
    if _KNIGHT[sq] & bb[t + 1] or _KING[sq] & bb[t + 5] or _PAWN[white][sq] & bb[t]:
        return True
    rq, bq = bb[t + 3] | bb[t + 4], bb[t + 2] | bb[t + 4]
    if not _RAYS[sq] & (rq | bq):
        return False
    return bool((_RANK_A[sq][_RANK_M[sq] & occ] | _FILE_A[sq][_FILE_M[sq] & occ]) & rq or _DIAG_A[sq][_DIAG_M[sq] & occ] & bq)


_FEN = re.compile(r"([1-8PNBRQKpnbrqk/]{15,71}) ([wb]) (-|K?Q?k?q?) (-|[a-h][36]) ([0-9]{1,4}) ([0-9]{1,5})", re.ASCII)
_CODE = {c: i for i, c in enumerate("PNBRQKpnbrqk")}
_CASTLE = {"K": (5, chess.E1, 3, chess.H1), "Q": (5, chess.E1, 3, chess.A1), "k": (11, chess.E8, 9, chess.H8), "q": (11, chess.E8, 9, chess.A8)}
_STANDARD = (board_row(chess.Board()), True, chess.BB_CORNERS, None, 0, 1, 0)


def _fen_state(fen: str) -> tuple | None:
    """The state (12 bitboards, white to move, castling rights, en-passant square, clocks) of a FEN as
    python-chess writes one, when its validity is simple to judge and it is valid: one king each, no
    more pawns and pieces than a side can have, none on the back ranks, castling rights with king and
    rook at home, a real en-passant square, nobody in check. None otherwise: then python-chess parses
    and judges it (a fifth of the cost: ``chess.Board(fen).is_valid()`` costs ~60 µs)."""
    m = _FEN.fullmatch(fen)
    if m is None:
        return None
    board_part, turn, castling, ep_part, hmc, fmn = m.groups()
    rows = board_part.split("/")
    if len(rows) != 8 or not castling:
        return None
    bb = [0] * 12
    for r, row in enumerate(rows):
        sq, end, digit = 56 - 8 * r, 64 - 8 * r, False
        for c in row:
            if c <= "8":
                if digit:  # python-chess refuses two digits in a row
                    return None
                sq += ord(c) - 48
                digit = True
            elif sq < end:
                bb[_CODE[c]] |= 1 << sq
                sq += 1
                digit = False
            else:
                return None
        if sq != end:
            return None
    w = bb[0] | bb[1] | bb[2] | bb[3] | bb[4] | bb[5]
    k = bb[6] | bb[7] | bb[8] | bb[9] | bb[10] | bb[11]
    if (bb[5].bit_count() != 1 or bb[11].bit_count() != 1 or w.bit_count() > 16 or k.bit_count() > 16
            or bb[0].bit_count() > 8 or bb[6].bit_count() > 8 or (bb[0] | bb[6]) & chess.BB_BACKRANKS):
        return None
    cr = 0
    if castling != "-":
        for flag in castling:
            king, king_sq, rook, rook_sq = _CASTLE[flag]
            if bb[king] != 1 << king_sq or not bb[rook] >> rook_sq & 1:
                return None
            cr |= 1 << rook_sq
    white = turn == "w"
    ep = None
    if ep_part != "-":
        ep = chess.parse_square(ep_part)
        pushed, origin, pawns = (ep - 8, ep + 8, bb[6]) if white else (ep + 8, ep - 8, bb[0])
        if chess.square_rank(ep) != (5 if white else 2) or not pawns >> pushed & 1 or (w | k) >> ep & 1 or (w | k) >> origin & 1:
            return None
    occ = w | k
    us, them = (0, 6) if white else (6, 0)
    if (_attacked(bb[them + 5].bit_length() - 1, occ, bb, us, not white)
            or _attacked(bb[us + 5].bit_length() - 1, occ, bb, them, white)):
        return None
    return bb, white, cr, ep, int(hmc), max(int(fmn), 1), 0


def _start_state(fen: str | None) -> tuple | None:
    """The start state of a position (see :func:`_fen_state`), or None where
    :func:`conceptchess.positions.parse_fen` would refuse the FEN."""
    if fen is None:
        return _STANDARD[0][:], *_STANDARD[1:]
    state = _fen_state(fen)
    if state is not None:
        return state
    try:
        board = chess.Board(fen)
    except Exception:  # the caller's python-chess replay raises the exact error
        return None
    if not board.is_valid():
        return None
    return board_row(board), board.turn, board.castling_rights, board.ep_square, board.halfmove_clock, board.fullmove_number, board.promoted


def _board(bb: list[int], white: bool, cr: int, ep: int | None, hmc: int, fmn: int, promoted: int) -> chess.Board:
    """A ``chess.Board`` (no move stack) with this state, assembled as ``chess.Board.copy`` assembles one."""
    b = chess.Board(None)
    b.pawns, b.knights, b.bishops = bb[0] | bb[6], bb[1] | bb[7], bb[2] | bb[8]
    b.rooks, b.queens, b.kings = bb[3] | bb[9], bb[4] | bb[10], bb[5] | bb[11]
    w = bb[0] | bb[1] | bb[2] | bb[3] | bb[4] | bb[5]
    k = bb[6] | bb[7] | bb[8] | bb[9] | bb[10] | bb[11]
    b.occupied_co[chess.WHITE], b.occupied_co[chess.BLACK], b.occupied = w, k, w | k
    b.promoted = promoted
    b.ep_square, b.castling_rights, b.turn = ep, cr, white
    b.fullmove_number, b.halfmove_clock = fmn, hmc
    return b


@dataclass
class Replay:
    """What :func:`replay` gives: one entry per position, in the order they were given."""

    histories: Histories | None  # N rows (None when not asked for); a declined position's rows are zero
    boards: list[chess.Board | None]  # None where declined


class _Tree:
    """Positions as a tree of move prefixes: node ``j`` is its parent's position after move ``ucis[j]``.

    Nodes are numbered as first met in the input, so a parent always comes before its children and
    a child usually right after its parent. A node's first child is kept in a list, further ones in
    a dict (most nodes have at most one: a dict per node would cost more than the replay's moves).
    """

    def __init__(self, positions: Sequence[tuple[str | None, Sequence]]):
        self.parent: list[int] = []
        self.ucis: list = []
        self.roots: dict[int, str | None] = {}  # root node → its FEN (None: the standard start)
        self.at: list[int] = []  # node of each position; -1 where a move is not even hashable
        parent, ucis = self.parent, self.ucis
        first: list[int] = []
        more: dict[tuple, int] = {}
        by_fen: dict[str | None, int] = {}
        last_key, last_moves, last_path = (), [], []  # the previous position: consecutive ones often share a game
        for fen, moves in positions:
            key = fen or None
            node = by_fen.get(key)
            if node is None:
                node = by_fen[key] = len(parent)
                self.roots[node] = key
                parent.append(-1)
                ucis.append(None)
                first.append(-1)
            depth = 0
            path = [node]
            try:
                if key == last_key and last_path:  # start where the previous position's moves agree (compared in C)
                    n, k = len(moves), len(last_moves)
                    if n <= k and moves == last_moves[:n]:
                        node, depth, path = last_path[n], n, last_path
                    elif n > k and moves[:k] == last_moves:
                        node, depth, path = last_path[-1], k, last_path[:]
                for u in moves[depth:] if depth else moves:
                    c = first[node]
                    if c >= 0:
                        if ucis[c] == u:
                            node = c
                            path.append(node)
                            continue
                        c = more.get((node, u), -1)
                        if c >= 0:
                            node = c
                            path.append(node)
                            continue
                        more[(node, u)] = len(parent)
                    else:
                        first[node] = len(parent)
                    parent.append(node)
                    ucis.append(u)
                    first.append(-1)
                    node = len(parent) - 1
                    path.append(node)
            except TypeError:  # an unhashable "move": declined
                node, path = -1, []
            if path is not last_path and len(path) > len(moves):
                last_key, last_moves, last_path = key, moves, path
            self.at.append(node)


def replay(positions: Sequence[tuple[str | None, Sequence]], histories: bool = True) -> Replay:
    """Boards (and, with ``histories``, encoder histories) of positions given as (FEN or None, UCI moves).

    Each distinct move prefix is played once; see the module docstring for what is declined.
    """
    collecting = gc.isenabled()
    gc.disable()  # many small acyclic objects: the cyclic collector's passes over them cost ~15 % (measured)
    try:
        return _replay(positions, histories)
    finally:
        if collecting:
            gc.enable()


def _replay(positions: Sequence[tuple[str | None, Sequence]], histories: bool) -> Replay:
    tree = _Tree(positions)
    parent, ucis, roots = tree.parent, tree.ucis, tree.roots
    m = len(parent)
    par = np.array(parent, dtype=np.int64)
    later = np.flatnonzero((par >= 0) & (par != np.arange(m) - 1))
    keep = np.bincount(par[later], minlength=m).tolist()  # children that will need a node's state restored
    flags = bytearray(m)  # per node: 1 a position is there, 2 some position needs its history row, 4 keep its state
    for node in later.tolist():
        flags[parent[node]] = 4
    for node in tree.at:
        if node >= 0:
            flags[node] |= 1
    if histories:
        for node in tree.at:
            k = 0
            while node >= 0 and k < HISTORY:  # the position and its 7 predecessors
                flags[node] |= 2
                node = parent[node]
                k += 1

    row_of = [-1] * m
    table: list[int] = []  # history rows, flat: 12 bitboards, white to move, castling rights (one list: faster to numpy)
    reps: list[int] = []
    hmcs: list[int] = []
    fill_of: dict[int, int] = {}  # root → row of its history fill
    boards_at: dict[int, chess.Board] = {}
    saved: dict[int, tuple] = {}
    seg: list[tuple] = []  # bitboards of the positions since the last irreversible move (repetitions)
    seg_cr: list[int] = []  # and their castling rights
    uci_table, line_t, between_t, slides = _UCI, _LINE, _BETWEEN, _SLIDES
    knight_t, king_t, pawn_t = _KNIGHT, _KING, _PAWN
    rank_m, file_m, diag_m, rank_a, file_a, diag_a, rays = _RANK_M, _FILE_M, _DIAG_M, _RANK_A, _FILE_A, _DIAG_A, _RAYS
    not_rank = (~chess.BB_RANK_8, ~chess.BB_RANK_1)  # castling rights a king move keeps, by colour
    bb: list[int] = []
    box: list[int] = []
    white, cr, ep, hmc, fmn, promoted, occ = True, 0, None, 0, 1, 0, 0
    cur = -2  # the node whose position the state above holds (-2: none)
    for j in range(m):
        p = parent[j]
        if p != cur:
            if p < 0:
                start = _start_state(roots[j])
                if start is None:
                    cur = -2
                    continue
                bb, white, cr, ep, hmc, fmn, promoted = start
                box = [-1] * 64
                occ = 0
                for code, x in enumerate(bb):
                    occ |= x
                    while x:
                        low = x & -x
                        box[low.bit_length() - 1] = code
                        x ^= low
                seg, seg_cr = [], []
                if histories:
                    fill_of[j] = len(reps)
                    table.extend(fill_row_of(bb, ep) if not is_standard_start(bb, white, cr) else [0] * 12)
                    table += (0, 0)
                    reps.append(0)
                    hmcs.append(0)
                    seg.append(tuple(bb))
                    seg_cr.append(cr)
                cur = j
                f = flags[j]
                if f & 2:
                    row_of[j] = len(reps)
                    table.extend(bb)
                    table += (white, cr)
                    reps.append(0)
                    hmcs.append(hmc)
                if f & 1:
                    boards_at[j] = _board(bb, white, cr, ep, hmc, fmn, promoted)
                if f & 4:
                    saved[j] = (bb[:], box[:], white, cr, ep, hmc, fmn, promoted, occ, seg[:], seg_cr[:])
                continue
            if p not in saved:  # its move was declined, so are its descendants
                continue
            bb, box, white, cr, ep, hmc, fmn, promoted, occ, seg, seg_cr = saved[p]
            bb, box, seg, seg_cr = bb[:], box[:], seg[:], seg_cr[:]
            keep[p] -= 1
            if not keep[p]:
                del saved[p]
        cur = -2  # the state is being changed; it holds node j once the move is accepted
        try:
            fr, to, promo, fb, tb, ft = uci_table[ucis[j]]
        except (KeyError, TypeError):  # not a move text this module plays
            continue
        us = 0 if white else 6
        pc = box[fr]
        pt = pc - us
        if not 0 <= pt < 6:  # no piece of the side to move there
            continue
        cap = box[to]
        if cap >= 0 and not 0 <= cap - 6 + us < 5:  # our own piece, or their king
            continue
        t = 6 - us  # their pieces: bb[t : t + 6]
        special = 0  # 1 a double push (sq: the square it passes), 2 en passant (sq: the pawn taken), 3 castling
        if pt == 0:
            d, last, second = (to - fr, to >= 56, 8 <= fr < 16) if white else (fr - to, to < 8, 48 <= fr < 56)
            if (promo != 0) != last:
                continue
            if d == 8:
                if cap >= 0:
                    continue
            elif d == 16:
                sq = (fr + to) >> 1
                if not second or cap >= 0 or box[sq] >= 0:
                    continue
                special = 1
            elif pawn_t[white][fr] & tb:
                if cap < 0:
                    sq = to - 8 if white else to + 8
                    if to != ep or box[sq] != t:
                        continue
                    special = 2
            else:
                continue
        elif promo:
            continue
        elif pt == 1:
            if not knight_t[fr] & tb:
                continue
        elif pt == 5:
            if not king_t[fr] & tb:  # castling, written as the king's two-square move
                home = 4 if white else 60
                if fr != home or cap >= 0:
                    continue
                if to == home + 2:
                    rook_from, rook_to, path, passes = home + 3, home + 1, (1 << (home + 1)) | (1 << (home + 2)), home + 1
                elif to == home - 2:
                    rook_from, rook_to, path, passes = home - 4, home - 1, 0b111 << (home - 3), home - 1
                else:
                    continue
                if not cr & (1 << rook_from) or box[rook_from] != us + 3 or occ & path:
                    continue
                if _attacked(home, occ ^ fb, bb, t, white) or _attacked(passes, occ ^ fb, bb, t, white):
                    continue  # the king may not be in check nor pass an attacked square
                special = 3
        elif not line_t[ft] & slides[pt] or occ & between_t[ft]:
            continue
        # play it, as chess.Board.push does
        hmc = 0 if pt == 0 or cap >= 0 else hmc + 1
        if not white:
            fmn += 1
        if cr:
            cr &= ~(fb | tb)
            if pt == 5:
                cr &= not_rank[white]
        if promoted:
            was_promoted = promoted & fb
            promoted &= ~(fb | tb)
            if was_promoted:
                promoted |= tb
        box[fr] = -1
        occ = (occ ^ fb) | tb
        if cap >= 0:
            bb[cap] ^= tb
        if promo:
            bb[pc] ^= fb
            pt = promo
            pc = us + promo
            bb[pc] ^= tb
            promoted |= tb
        else:
            bb[pc] ^= fb | tb
        box[to] = pc
        ep = None
        if special:
            if special == 1:
                ep = sq
            elif special == 2:
                bb[t] ^= 1 << sq
                box[sq] = -1
                occ ^= 1 << sq
                promoted &= ~(1 << sq)
            else:
                rook_bits = (1 << rook_from) | (1 << rook_to)
                bb[us + 3] ^= rook_bits
                box[rook_from], box[rook_to] = -1, us + 3
                occ ^= rook_bits
                promoted &= ~rook_bits
        # our king may not be attacked now
        k = bb[us + 5].bit_length() - 1
        if knight_t[k] & bb[t + 1] or king_t[k] & bb[t + 5] or pawn_t[white][k] & bb[t]:
            continue
        rq, bq = bb[t + 3] | bb[t + 4], bb[t + 2] | bb[t + 4]
        if rays[k] & (rq | bq) and ((rank_a[k][rank_m[k] & occ] | file_a[k][file_m[k] & occ]) & rq
                                    or diag_a[k][diag_m[k] & occ] & bq):
            continue
        white = not white
        cur = j
        f = flags[j]
        if histories:
            if hmc == 0:
                seg, seg_cr = [], []
            now = tuple(bb)
            seg.append(now)
            seg_cr.append(cr)
            if f & 2:
                row_of[j] = len(reps)
                table.extend(bb)
                table += (white, cr)
                i = len(seg) - 3  # an equal position has the same side to move: an even number of plies ago
                while i >= 0 and not (seg[i] == now and seg_cr[i] == cr):
                    i -= 2
                reps.append(1 if i >= 0 else 0)
                hmcs.append(hmc)
        if f & 1:
            boards_at[j] = _board(bb, white, cr, ep, hmc, fmn, promoted)
        if f & 4:
            saved[j] = (bb[:], box[:], white, cr, ep, hmc, fmn, promoted, occ, seg[:], seg_cr[:])

    boards: list[chess.Board | None] = []
    handed: set[int] = set()
    for node in tree.at:
        if node not in boards_at:
            boards.append(None)
        elif node in handed:  # the same position twice: a board each
            boards.append(boards_at[node].copy(stack=False))
        else:
            handed.add(node)
            boards.append(boards_at[node])
    if not histories:
        return Replay(None, boards)
    return Replay(_histories(tree, row_of, fill_of, table, reps, hmcs), boards)


def _histories(tree: _Tree, row_of: list[int], fill_of: dict[int, int], table: list[int],
               reps: list[int], hmcs: list[int]) -> Histories:
    """Gather each position's 8 history steps from the rows played; zeros where declined."""
    parent = tree.parent
    windows = []
    good = []
    for node in tree.at:
        if node < 0 or row_of[node] < 0:
            windows.append((0,) * HISTORY)
            good.append(False)
            continue
        w = []
        for _ in range(HISTORY):  # back through the parents; before the root, its fill row
            if node >= 0:
                w.append(row_of[node])
                if parent[node] < 0:
                    fill, node = fill_of[node], -1
                else:
                    node = parent[node]
            else:
                w.append(fill)
        windows.append(w)
        good.append(True)
    window = np.array(windows, dtype=np.int64).reshape(-1, HISTORY)
    ok = np.array(good, dtype=bool)
    tab = np.array(table or [0] * 14, dtype=np.uint64).reshape(-1, 14)
    boards = tab[window, :12]
    rep = np.array(reps or [0], dtype=np.uint8)[window]
    now = window[:, 0]
    cr = tab[now, 13]
    castling = np.stack([(cr >> np.uint64(s)) & np.uint64(1) for s in (chess.A1, chess.H1, chess.A8, chess.H8)], axis=1).astype(bool)
    black = tab[now, 12] == 0
    rule50 = np.array(hmcs or [0], dtype=np.float32)[now]
    boards[~ok], rep[~ok], castling[~ok] = 0, 0, False
    black[~ok], rule50[~ok] = False, 0
    return Histories(boards, rep, black, castling, rule50)
