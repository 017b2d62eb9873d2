"""Shared intermediate results of one position, computed once and reused by every concept.

A :class:`PositionContext` holds the piece masks and the attack map of every piece (eagerly: almost
every concept needs them) and, lazily, each side's legal moves with what they do (checks, mates,
forks, queen captures). The opponent's moves are those it would have if the side to move passed
(a null move); the board is restored afterwards.

>>> ctx = PositionContext(chess.Board())
>>> len(ctx.side(ctx.us).moves), len(ctx.side(ctx.them).moves)
(20, 20)
>>> chess.popcount(ctx.attacks[chess.WHITE])
22
"""

from __future__ import annotations

from dataclasses import dataclass

import chess

from conceptchess.concepts.bitboards import SEVENTH_RANK, VALUES, attacks_from, line_snipers, single_blockers

_BB = chess.BB_SQUARES
_TYPES = (chess.PAWN, chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN, chess.KING)
_DIAGONALS = [chess.BB_DIAG_ATTACKS[sq][0] for sq in chess.SQUARES]
_ORTHOGONALS = [chess.BB_RANK_ATTACKS[sq][0] | chess.BB_FILE_ATTACKS[sq][0] for sq in chess.SQUARES]
_LINES = {chess.BISHOP: _DIAGONALS, chess.ROOK: _ORTHOGONALS, chess.QUEEN: [d | o for d, o in zip(_DIAGONALS, _ORTHOGONALS, strict=True)]}
_SLIDERS = (chess.BISHOP, chess.ROOK, chess.QUEEN)
_PROMOTIONS = (chess.QUEEN, chess.ROOK, chess.BISHOP, chess.KNIGHT)
_WORTH_MORE = [(pt, [et for et in _TYPES if VALUES[et] > VALUES[pt]]) for pt in _TYPES]


@dataclass
class SideMoves:
    """What one side's legal moves do (for the side not to move: after a null move)."""

    moves: list[chess.Move]
    by_type: list[int]  # legal moves per moving piece type, index = chess.PieceType (0 unused)
    checks: int  # moves that give check (after a null move out of check: moves that add a new checking piece)
    has_mate: bool  # some move checkmates
    forks: int  # moves after which the mover attacks >= 2 enemy pieces worth more than it or undefended
    captures_queen: bool  # some move captures an enemy queen
    discovered_check: bool = False  # some move gives a discovered check


class PositionContext:
    """Per-position intermediate results (see module docstring).

    Computing the opponent's moves pushes a null move (and mate tests push candidate moves) on
    ``board`` itself and pops them again: the board ends as it started, but do not share it between
    threads while a context is in use.
    """

    __slots__ = ("board", "us", "them", "occupied", "occ_co", "pieces", "kings", "types", "piece_attacks", "attack_at",
                 "attacks", "attacks_by", "_sides", "_cache")

    def __init__(self, board: chess.Board) -> None:
        self.board = board
        self.us: chess.Color = board.turn
        self.them: chess.Color = not board.turn
        self.occupied: int = board.occupied
        self.occ_co = board.occupied_co
        occ = self.occupied
        types = [0] * 64
        attack_at = [0] * 64
        pieces: list[list[int]] = [[0] * 7, [0] * 7]
        piece_attacks: list[list[tuple[int, int, int]]] = [[], []]
        attacks = [0, 0]
        attacks_by: list[list[int]] = [[0] * 7, [0] * 7]
        for color in chess.COLORS:
            co = board.occupied_co[color]
            pa, ab = piece_attacks[color], attacks_by[color]
            for pt, bb in ((1, board.pawns), (2, board.knights), (3, board.bishops), (4, board.rooks), (5, board.queens), (6, board.kings)):
                mask = bb & co
                pieces[color][pt] = mask
                union = 0
                for sq in chess.scan_reversed(mask):
                    types[sq] = pt
                    a = attack_at[sq] = attacks_from(pt, color, sq, occ)
                    pa.append((sq, pt, a))
                    union |= a
                ab[pt] = union
            attacks[color] = ab[1] | ab[2] | ab[3] | ab[4] | ab[5] | ab[6]
        self.types = types
        self.attack_at = attack_at
        self.pieces = pieces
        self.kings: list[int] = [chess.msb(pieces[0][chess.KING]), chess.msb(pieces[1][chess.KING])]
        self.piece_attacks = piece_attacks
        self.attacks = attacks
        self.attacks_by = attacks_by
        self._sides: dict[bool, SideMoves] = {}
        self._cache: dict[str, object] = {}

    # -- small helpers used by many families -------------------------------------------------
    def king(self, color: chess.Color) -> chess.Square:
        return self.kings[color]

    def cached(self, key: str, fn):
        """Memoise ``fn()`` under ``key`` for this position (for results shared by several concepts)."""
        try:
            return self._cache[key]
        except KeyError:
            v = self._cache[key] = fn()
            return v

    # -- legal moves -----------------------------------------------------------------------
    def side(self, color: chess.Color) -> SideMoves:
        """Legal moves of ``color`` and what they do; for the side not to move, after a null move."""
        s = self._sides.get(color)
        if s is None:
            board = self.board
            if color == board.turn:
                s = self._side_moves(board, color)
            else:
                board.push(chess.Move.null())
                try:
                    s = self._side_moves(board, color)
                finally:
                    board.pop()
            self._sides[color] = s
        return s

    def _side_moves(self, board: chess.Board, color: chess.Color) -> SideMoves:
        """Legal moves of ``color`` (to move on ``board``) summarised per piece with bitboards.

        python-chess generates the legal moves; they are folded into one destination mask per
        origin square, and checks, forks and queen captures are counted on those masks. Only
        castling and en passant (rare) are pushed to see whether they check; a checking move is
        pushed to look for mate unless :meth:`_king_can_flee` shows the king a safe square first.
        """
        enemy = not color
        ek = self.kings[enemy]
        ek_bb = _BB[ek]
        types = self.types
        occ = self.occupied
        own, their = self.pieces[color], self.pieces[enemy]
        # Squares from which each piece type would attack the enemy king (current occupancy).
        check_sq = [0, chess.BB_PAWN_ATTACKS[enemy][ek]] + [attacks_from(pt, enemy, ek, occ) for pt in (2, 3, 4, 5)] + [0]
        snipers = line_snipers(board, ek, color)
        discoverers = single_blockers(board, ek, snipers) & self.occ_co[color] if snipers else 0
        # Fork targets per mover type: enemy pieces worth more than the mover, or undefended (not the king).
        undefended = self.occ_co[enemy] & ~self.attacks[enemy] & ~their[chess.KING]
        targets = [0] * 7
        for pt, more in _WORTH_MORE:
            t = undefended
            for et in more:
                t |= their[et]
            targets[pt] = t
        # Destinations from which a pawn, knight or king would attack two targets (these attack patterns
        # are symmetric, so look back from each target); sliders are checked per move with the new occupancy.
        fork_to = [0] * 7
        slider_forks = [0] * 7  # for sliders: candidate destinations, checked exactly per move
        for pt in _TYPES:
            if not own[pt] or chess.popcount(targets[pt]) < 2:
                continue
            if pt in _SLIDERS:
                table = _LINES[pt]  # empty-board lines: a cheap superset of the squares that can see two targets
            else:
                table = chess.BB_PAWN_ATTACKS[enemy] if pt == chess.PAWN else chess.BB_KNIGHT_ATTACKS if pt == chess.KNIGHT else chess.BB_KING_ATTACKS
            once = twice = 0
            for t in chess.scan_reversed(targets[pt]):
                a = table[t]
                twice |= once & a
                once |= a
            if pt in _SLIDERS:
                slider_forks[pt] = twice
            else:
                fork_to[pt] = twice

        moves = list(board.generate_legal_moves())
        king_attacked = bool(self.attacks[color] & ek_bb)  # only after a null move out of check
        if king_attacked:
            moves = [m for m in moves if m.to_square != ek]  # capturing the king is not a move
        dests = [0] * 64
        for m in moves:
            dests[m.from_square] |= _BB[m.to_square]

        by_type = [0] * 7
        checking: list[chess.Move] = []
        forks = 0
        all_dests = 0
        discovered = False
        ep = board.ep_square
        promo_rank = SEVENTH_RANK[color]
        for frm in chess.scan_reversed(self.occ_co[color]):
            d = dests[frm]
            if not d:
                continue
            all_dests |= d
            pt = types[frm]
            from_bb = _BB[frm]
            left = occ & ~from_bb
            disc_d = d & ~chess.ray(ek, frm) if discoverers & from_bb else 0
            special = 0  # castling and en passant: push and look
            if pt == chess.KING:
                special = d & (~chess.BB_KING_ATTACKS[frm] | own[chess.ROOK])
            elif pt == chess.PAWN and ep is not None:
                special = d & _BB[ep]
            for to in chess.scan_reversed(special):
                m = chess.Move(frm, to)
                board.push(m)
                checkers = board.checkers_mask()
                board.pop()
                if checkers:
                    checking.append(m)
                    # castling: the rook's check is direct, the king can only discover; en passant can
                    # also uncover a line through the captured pawn
                    discovered = discovered or bool(disc_d & _BB[to] if pt == chess.KING else checkers & ~_BB[to])
                forks += bool(fork_to[pt] & _BB[to])
            by_type[pt] += chess.popcount(special)
            d &= ~special
            if pt == chess.PAWN and from_bb & promo_rank:
                by_type[pt] += 4 * chess.popcount(d)
                for to in chess.scan_reversed(d):
                    to_bb = _BB[to]
                    for promo in _PROMOTIONS:
                        a = attacks_from(promo, color, to, left | to_bb)
                        if a & ek_bb or disc_d & to_bb:
                            checking.append(chess.Move(frm, to, promo))
                            discovered = discovered or bool(disc_d & to_bb)
                        a &= targets[promo]
                        forks += bool(a & (a - 1))
                continue
            by_type[pt] += chess.popcount(d)
            check_d = (d & check_sq[pt]) | disc_d
            if check_d:
                discovered = discovered or bool(disc_d)
                for to in chess.scan_reversed(check_d):
                    checking.append(chess.Move(frm, to))
            if fork_to[pt]:
                forks += chess.popcount(d & fork_to[pt])
            elif slider_forks[pt] & d:
                tg = targets[pt]
                for to in chess.scan_reversed(d & slider_forks[pt]):
                    a = attacks_from(pt, color, to, left | _BB[to]) & tg
                    if a & (a - 1):
                        forks += 1

        # Normally only a checking move can mate. After a null move out of check the enemy king is
        # already attacked, so any move that keeps the check may mate: try them all.
        candidates = moves if king_attacked else checking
        has_mate = False
        for m in candidates:
            if self._king_can_flee(color, m):
                continue
            board.push(m)
            try:
                has_mate = not any(board.generate_legal_moves())
            finally:
                board.pop()
            if has_mate:
                break
        return SideMoves(moves, by_type, len(checking), has_mate, forks, bool(all_dests & their[chess.QUEEN]), discovered)

    def _king_can_flee(self, color: chess.Color, move: chess.Move) -> bool:
        """True if after ``color`` plays ``move`` the enemy king surely has a legal king move (so no mate).

        A cheap, sound filter before pushing a mate candidate: ``color``'s attacks are recomputed
        for the occupancy after the move, seen through the enemy king (so it cannot hide behind
        itself on a checking line). Castling, en passant and promotions are not filtered (False).
        """
        frm, to = move.from_square, move.to_square
        pt = self.types[frm]
        if move.promotion or pt == chess.KING or (pt == chess.PAWN and (to - frm) & 7 and not self.occupied & _BB[to]):
            return False  # castling, king moves, en passant, promotions: let python-chess decide
        enemy = not color
        ek = self.kings[enemy]
        to_bb = _BB[to]
        occ_x = ((self.occupied & ~_BB[frm]) | to_bb) & ~_BB[ek]
        attacked = attacks_from(pt, color, to, occ_x)
        for sq, t, a in self.piece_attacks[color]:
            if sq == frm:
                continue
            attacked |= attacks_from(t, color, sq, occ_x) if t in _SLIDERS else a
        return bool(chess.BB_KING_ATTACKS[ek] & ~(self.occ_co[enemy] & ~to_bb) & ~attacked)
