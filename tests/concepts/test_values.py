"""Every python-chess concept on hand-picked positions, against values worked out by hand.

Each case names the position, the FEN, and the expected values with the reasoning in comments.
``test_every_concept_is_hand_tested`` checks that each registered python-chess concept appears in
at least one case.
"""

from __future__ import annotations

import math

import chess
import pytest

from conceptchess.concepts import CONCEPTS, label

# Start position: every python-chess concept, all known by heart or counted on the board.
START = {
    "us_pawns": 8, "them_pawns": 8, "us_knights": 2, "them_knights": 2, "us_bishops": 2, "them_bishops": 2,
    "us_rooks": 2, "them_rooks": 2, "us_queens": 1, "them_queens": 1,
    "us_material": 39, "them_material": 39,  # 8 + 2·3 + 2·3 + 2·5 + 9
    "us_non_pawn_material": 31, "them_non_pawn_material": 31, "material_diff": 0,
    "us_bishop_pair": 1, "them_bishop_pair": 1, "material_imbalance": 0,
    "game_phase": 0, "material_phase": 1.0, "white_to_move": 1,
    "us_mobility": 20, "them_mobility": 20, "us_pawn_mobility": 16, "them_pawn_mobility": 16,
    "us_knight_mobility": 4, "them_knight_mobility": 4, "us_bishop_mobility": 0, "them_bishop_mobility": 0,
    "us_rook_mobility": 0, "them_rook_mobility": 0, "us_queen_mobility": 0, "them_queen_mobility": 0,
    "us_king_mobility": 0, "them_king_mobility": 0,
    "us_king_zone_attackers": 0, "them_king_zone_attackers": 0,
    "us_king_zone_attacked_squares": 0, "them_king_zone_attacked_squares": 0,
    "us_pawn_shield": 3, "them_pawn_shield": 3,  # d2 e2 f2 / d7 e7 f7
    "us_king_open_files": 0, "them_king_open_files": 0, "us_king_half_open_files": 0, "them_king_half_open_files": 0,
    "us_checks_available": 0, "them_checks_available": 0,
    "us_king_wing": 0, "them_king_wing": 0, "us_king_castled": 0, "them_king_castled": 0, "opposite_side_castled": 0,
    "us_can_castle_kingside": 1, "them_can_castle_kingside": 1, "us_can_castle_queenside": 1, "them_can_castle_queenside": 1,
    "in_check": 0, "us_has_mate_in_1": 0, "them_threatens_mate": 0,
    "us_hanging_pieces": 0, "them_hanging_pieces": 0, "us_attacked_by_lower": 0, "them_attacked_by_lower": 0,
    "us_can_capture_queen": 0, "them_can_capture_queen": 0,
    "us_pinned_pieces": 0, "them_pinned_pieces": 0, "us_forks_available": 0, "them_forks_available": 0,
    "us_discovered_attacks": 0, "them_discovered_attacks": 0,
    "us_discovered_check_available": 0, "them_discovered_check_available": 0,
    "us_passed_pawns": 0, "them_passed_pawns": 0, "us_isolated_pawns": 0, "them_isolated_pawns": 0,
    "us_doubled_pawns": 0, "them_doubled_pawns": 0, "us_backward_pawns": 0, "them_backward_pawns": 0,
    "us_connected_passed_pawns": 0, "them_connected_passed_pawns": 0, "us_protected_pawns": 0, "them_protected_pawns": 0,
    "us_pawn_islands": 1, "them_pawn_islands": 1, "us_most_advanced_passed_pawn": 0, "them_most_advanced_passed_pawn": 0,
    "us_space": 8, "them_space": 8,  # c–f × ranks 2–4 = 12 squares, minus the 4 own pawns on c2–f2
    "us_centre_control": 0, "them_centre_control": 0, "us_centre_pawns": 0, "them_centre_pawns": 0,
    "us_attacked_squares": 22, "them_attacked_squares": 22,  # all 8 of rank 3, all 8 of rank 2 (pieces defend them), b1-g1
    "us_undeveloped_minors": 4, "them_undeveloped_minors": 4, "us_connected_rooks": 0, "them_connected_rooks": 0,
    "open_files": 0, "us_half_open_files": 0, "them_half_open_files": 0,
    "us_rooks_on_open_files": 0, "them_rooks_on_open_files": 0, "us_rooks_on_half_open_files": 0, "them_rooks_on_half_open_files": 0,
    "us_rooks_on_seventh": 0, "them_rooks_on_seventh": 0, "us_outposts": 0, "them_outposts": 0,
}

CASES: list[tuple[str, str, dict]] = [
    ("start position", chess.STARTING_FEN, START),
    ("start position at move 20 (middlegame), castling rights K and q only",
     "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w Kq - 0 20",
     {"game_phase": 1, "us_can_castle_kingside": 1, "us_can_castle_queenside": 0,
      "them_can_castle_kingside": 0, "them_can_castle_queenside": 1}),
    # White Ke1 Ne2, Black Ke8 Re7: the knight is pinned to its king by the rook.
    ("absolute pin", "4k3/4r3/8/8/8/8/4N3/4K3 w - - 0 1", {
        "us_pinned_pieces": 1, "them_pinned_pieces": 0,
        "us_knight_mobility": 0,  # pinned
        "us_king_mobility": 4, "us_mobility": 4,  # d1 d2 f1 f2 (e2 own knight); none attacked
        "them_king_mobility": 4,  # d8 f8 d7 f7
        "them_rook_mobility": 12, "them_mobility": 16,  # a7-d7, f7-h7 (7) + e6-e3, xe2 (5)
        "us_hanging_pieces": 0,  # Ne2 attacked by the rook but defended by Ke1
        "us_attacked_by_lower": 0,  # a rook is worth more than a knight
        "them_checks_available": 1, "us_checks_available": 0,  # only Rxe2+
        "them_forks_available": 0,  # Rxe2 hits only the king
        "us_discovered_attacks": 0, "them_discovered_attacks": 0,  # the blocker on e2 is White's, not Black's
        "us_attacked_squares": 11,  # Ke1: d1 d2 e2 f1 f2; Ne2: c1 c3 d4 f4 g1 g3
        "them_attacked_squares": 16,  # Ke8: d8 f8 d7 e7 f7; Re7: a7-d7, f7-h7, e6-e2, e8
        "in_check": 0,
    }),
    # White Ke1 Nb5, Black Ra8 Ke8: Nc7+ forks king and rook.
    ("knight fork available", "r3k3/8/8/1N6/8/8/8/4K3 w - - 0 1", {
        "us_forks_available": 1,  # Nc7 hits a8 and e8; Nd6+ hits only e8
        "them_forks_available": 0,  # Rb8/Ra5 hit only Nb5, Ra1 only Ke1
        "us_checks_available": 2,  # Nc7+ Nd6+
        "us_has_mate_in_1": 0,
        "us_knight_mobility": 6, "us_king_mobility": 5, "us_mobility": 11,
        "them_king_mobility": 5, "them_rook_mobility": 10, "them_mobility": 15,
        "us_hanging_pieces": 0, "them_hanging_pieces": 0,
    }),
    # White Ke1 Rd1, Black Ke8 Qd5: the black queen hangs to the rook.
    ("hanging queen", "4k3/8/8/3q4/8/8/8/3RK3 w - - 0 1", {
        "them_hanging_pieces": 1, "us_hanging_pieces": 0,  # Rd1 attacked by the queen, defended by Ke1
        "us_can_capture_queen": 1, "them_can_capture_queen": 0,
        "them_attacked_by_lower": 1, "us_attacked_by_lower": 0,
        "us_material": 5, "them_material": 9, "material_diff": -4,
        "material_imbalance": 1,  # White has more rooks, Black more queens
        "us_rook_mobility": 7,  # a1 b1 c1 d2 d3 d4 xd5
        "us_king_mobility": 3,  # e2 f1 f2 (d2 attacked by the queen)
        "us_mobility": 10,
        "them_queen_mobility": 27, "them_king_mobility": 5, "them_mobility": 32,
        "them_checks_available": 7,  # Qa5+ Qe5+ Qe6+ Qe4+ Qd2+ Qxd1+ Qh1+
        "us_checks_available": 0, "them_threatens_mate": 0,
        "open_files": 8, "us_rooks_on_open_files": 1, "us_half_open_files": 0,
        "us_pinned_pieces": 0,
    }),
    # White Ra1 Kg1, Black Kg8 f7 g7 h7: Ra8 is mate.
    ("back-rank mate in one", "6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1", {
        "us_has_mate_in_1": 1, "them_threatens_mate": 0, "us_checks_available": 1, "in_check": 0,
    }),
    # White Kg1 f2 g2 h2, Black Kg8 Ra8, White to move: Black threatens Ra1 mate.
    ("opponent threatens back-rank mate", "r5k1/8/8/8/8/8/5PPP/6K1 w - - 0 1", {
        "them_threatens_mate": 1, "us_has_mate_in_1": 0,
        "them_checks_available": 1, "us_checks_available": 0,  # Ra1+
        "us_king_castled": 1, "them_king_castled": 1, "us_king_wing": 1, "them_king_wing": 1, "opposite_side_castled": 0,
        "us_pawn_shield": 3, "them_pawn_shield": 0,
        "us_king_open_files": 0, "us_king_half_open_files": 0,
        "them_king_open_files": 0, "them_king_half_open_files": 3,  # f g h: White pawns only
        "us_mobility": 8,  # Kf1 Kh1 + six pawn moves
        "them_mobility": 17,  # king f8 h8 f7 g7 h7 + rook a7-a1, b8-f8
    }),
    # Black is mated (1.e4 f6 2.? g5 3.Qh5#), Black to move.
    ("checkmated", "rnbqkbnr/ppppp2p/5p2/6pQ/4P3/8/PPPP1PPP/RNB1KBNR b KQkq - 1 3", {
        "in_check": 1, "us_mobility": 0, "us_has_mate_in_1": 0, "white_to_move": 0,
        "them_threatens_mate": 1,  # any White move that keeps the queen's check (e.g. a3) leaves Black mated
        "us_king_zone_attackers": 1,  # the queen attacks e8 and f7
    }),
    # White Kg1 Ra1 Rf1, Black Kc8 Rd8 Rh8; pawns a b c f g h on both sides.
    ("opposite-side castling", "2kr3r/ppp2ppp/8/8/8/8/PPP2PPP/R4RK1 w - - 0 1", {
        "opposite_side_castled": 1, "us_king_castled": 1, "them_king_castled": 1,
        "us_king_wing": 1, "them_king_wing": 2,
        "open_files": 2,  # d, e
        "us_rooks_on_open_files": 0, "them_rooks_on_open_files": 1,  # Rd8
        "us_connected_rooks": 1, "them_connected_rooks": 1,
        "us_pawn_shield": 3, "them_pawn_shield": 2,  # f2 g2 h2 / b7 c7
        "us_king_open_files": 0, "them_king_open_files": 1, "them_king_half_open_files": 0,  # d-file by the black king
        "us_can_castle_kingside": 0, "us_can_castle_queenside": 0, "them_can_castle_kingside": 0, "them_can_castle_queenside": 0,
        "us_undeveloped_minors": 0, "them_undeveloped_minors": 0,
        "us_material": 16, "them_material": 16, "us_non_pawn_material": 10, "material_diff": 0,
        "game_phase": 2,  # four rooks left
        "material_phase": pytest.approx(20 / 62, rel=1e-6),
        "us_isolated_pawns": 0, "us_pawn_islands": 2, "them_pawn_islands": 2, "us_passed_pawns": 0,
        "us_doubled_pawns": 0, "us_backward_pawns": 0, "us_protected_pawns": 0,
        "us_king_zone_attackers": 0, "them_king_zone_attackers": 0,
    }),
    # White a5 b5 d3 e4 g2 g3, Black c5 e5 h7 (kings e1, e8).
    ("pawn structure", "4k3/7p/8/PPp1p3/4P3/3P2P1/6P1/4K3 w - - 0 1", {
        "us_passed_pawns": 2, "them_passed_pawns": 0,  # a5 b5
        "us_connected_passed_pawns": 2, "them_connected_passed_pawns": 0,
        "us_most_advanced_passed_pawn": 5, "them_most_advanced_passed_pawn": 0,
        "us_isolated_pawns": 2, "them_isolated_pawns": 3,  # g2 g3 / c5 e5 h7
        "us_doubled_pawns": 1, "them_doubled_pawns": 0,  # g2 g3
        "us_backward_pawns": 1, "them_backward_pawns": 0,  # d3: no c/e pawn level or behind, d4 hit by c5 and e5
        "us_pawn_islands": 3, "them_pawn_islands": 3,  # ab | de | g  and  c | e | h
        "us_protected_pawns": 1, "them_protected_pawns": 0,  # e4 (by d3)
        "open_files": 1, "us_half_open_files": 2, "them_half_open_files": 4,  # f / c h / a b d g
        "us_space": 8,  # 12 − own pawns d3 e4 − squares hit by Black pawns d4 f4
        "them_space": 7,  # 12 − own pawns c5 e5 − c6 (b5) d5 f5 (e4)
        "us_centre_pawns": 1, "them_centre_pawns": 1,
    }),
    # Nd5 defended by e4 with no black c/e pawn ahead; Nf5 defended by e4 but g7 can still chase it.
    ("outpost", "4k3/p5pp/8/3N1N2/4P3/8/8/4K3 w - - 0 1", {"us_outposts": 1, "them_outposts": 0}),
    # White Rb7 Kg1, Black Ra2 Kg8: rooks on the seventh, kings' neighbourhoods swept.
    ("rooks on the seventh", "6k1/1R6/8/8/8/8/r7/6K1 w - - 0 1", {
        "us_rooks_on_seventh": 1, "them_rooks_on_seventh": 1,
        "us_rooks_on_open_files": 1, "them_rooks_on_open_files": 1,
        "us_king_zone_attackers": 1, "us_king_zone_attacked_squares": 3,  # Ra2 hits f2 g2 h2
        "them_king_zone_attackers": 1, "them_king_zone_attacked_squares": 3,  # Rb7 hits f7 g7 h7
        "us_checks_available": 2, "them_checks_available": 2,  # Rb8+ Rg7+ / Ra1+ Rg2+
        "us_mobility": 16, "them_mobility": 16,  # Kf1 Kh1 + 14 rook moves (a7 c7-h7, b8 b6-b1) / Kf8 Kh8 + 14 (b2-h2, a1 a3-a8)
    }),
    # White Re1 Ne2 Kg1, Black Ke8: every knight move is a discovered check.
    ("discovered check", "4k3/8/8/8/8/8/4N3/4R1K1 w - - 0 1", {
        "us_discovered_attacks": 1, "them_discovered_attacks": 0,
        "us_discovered_check_available": 1, "them_discovered_check_available": 0,
        "us_checks_available": 5,  # Nc1 Nc3 Nd4 Nf4 Ng3, all discovered
        "us_has_mate_in_1": 0,
    }),
    # White Rh5 e5 Ke1, Black d5 Ka5 after ...d7-d5: exd6 e.p. removes both blockers of the h5 rook.
    ("discovered check by en passant", "8/8/8/k2pP2R/8/8/8/4K3 w - d6 0 2", {
        "us_discovered_check_available": 1, "us_checks_available": 1, "us_discovered_attacks": 0,
    }),
    # White e7 Ke1, Black Ka8: e8=Q+ and e8=R+ check along the 8th rank; Ka8 escapes to a7/b7.
    ("promotion with check", "k7/4P3/8/8/8/8/8/4K3 w - - 0 1", {
        "us_checks_available": 2, "us_pawn_mobility": 4, "us_has_mate_in_1": 0, "us_passed_pawns": 1,
        "us_most_advanced_passed_pawn": 7,
    }),
    # White Ba1 Nd4 Ke1, Black Qh8 Ke8: moving the knight uncovers the bishop on the queen.
    ("discovered attack on the queen", "4k2q/8/8/8/3N4/8/8/B3K3 w - - 0 1", {
        "us_discovered_attacks": 1, "them_discovered_attacks": 0, "us_discovered_check_available": 0,
        "us_hanging_pieces": 0,  # Nd4 attacked by the queen, defended by Ba1
        "us_attacked_by_lower": 0, "them_attacked_by_lower": 0,
    }),
    # White Nc4 Be4 Ke1, Black d5 Ke8: the pawn attacks both white pieces.
    ("pawn attacks two pieces", "4k3/8/8/3p4/2N1B3/8/8/4K3 w - - 0 1", {
        "us_attacked_by_lower": 2, "us_hanging_pieces": 2, "them_hanging_pieces": 1,
        "them_attacked_by_lower": 0,
        "us_material": 6, "them_material": 1, "material_diff": 5, "us_bishop_pair": 0, "material_imbalance": 0,
        "us_forks_available": 0, "them_forks_available": 0,
        "us_bishop_mobility": 10, "us_knight_mobility": 8, "us_king_mobility": 5, "us_mobility": 23,
        "them_pawn_mobility": 3, "them_mobility": 8,
    }),
    # 1.e4 e5 2.Nf3 Nc6.
    ("development and centre", "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3", {
        "us_undeveloped_minors": 3, "them_undeveloped_minors": 3,
        "us_centre_control": 3, "them_centre_control": 3,  # Nf3→d4 e5, e4→d5 / Nc6→d4 e5, e5→d4
        "us_centre_pawns": 1, "them_centre_pawns": 1,
        "us_space": 6, "them_space": 6,
        "game_phase": 0,
    }),
    # White Rd1 Ke1, Black d7 Ke8: the d-file is half-open for White.
    ("rook on a half-open file", "4k3/3p4/8/8/8/8/8/3RK3 w - - 0 1", {
        "us_rooks_on_half_open_files": 1, "us_rooks_on_open_files": 0,
        "open_files": 7, "us_half_open_files": 1, "them_half_open_files": 0,
    }),
]


@pytest.mark.parametrize("title,fen,expected", CASES, ids=[c[0] for c in CASES])
def test_hand_computed_values(title: str, fen: str, expected: dict) -> None:
    board = chess.Board(fen)
    cols = label([board], list(expected))
    got = {n: cols[n][0].item() for n in expected}
    assert got == expected
    assert board.fen() == fen, "labelling must leave the board as it was"


def test_every_concept_is_hand_tested() -> None:
    tested = {n for _, _, exp in CASES for n in exp}
    missing = [n for n, c in CONCEPTS.items() if c.source == "python-chess" and n not in tested]
    assert not missing, f"concepts without a hand-computed test: {missing}"


def test_concept_call_matches_label() -> None:
    board = chess.Board("r3k3/8/8/1N6/8/8/8/4K3 w - - 0 1")
    assert CONCEPTS["us_forks_available"](board) == 1
    assert CONCEPTS["material_phase"](board) == pytest.approx(8 / 62)  # rook + knight
    assert not math.isnan(CONCEPTS["material_phase"](board))
