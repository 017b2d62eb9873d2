"""Stockfish 15.1 classical terms: the parser on captured real output, and the live process.

The fixture ``tests/data/stockfish_15.1_eval.txt`` is the verbatim stdout of Debian's stockfish 15.1
(``/usr/games/stockfish``, package 15.1-4), produced by::

    printf 'uci\\nsetoption name Use NNUE value false\\nisready\\nposition startpos\\neval\\n'\\
    'position startpos moves e2e4 e7e5 g1f3 b8c6 f1b5 a7a6\\neval\\n'\\
    'position fen rnbqkbnr/ppppp2p/5p2/6pQ/4P3/8/PPPP1PPP/RNB1KBNR b KQkq - 1 3\\neval\\n'\\
    'position fen 4k3/8/8/8/8/8/4P3/4K3 b - - 0 1\\neval\\n'\\
    'position fen 2r3k1/1q3ppp/p3p3/1p1nP3/3P4/P4N2/1P2QPPP/2R3K1 b - - 12 30\\neval\\n'\\
    'setoption name Use NNUE value true\\nisready\\nposition startpos moves e2e4 e7e5 g1f3\\neval\\nquit\\n' \\
    | /usr/games/stockfish > tests/data/stockfish_15.1_eval.txt

(one printf; the six replies are: start position, Ruy Lopez after 3...a6, a checkmate (in check), KPK
(a specialised endgame: all-zero table), a middlegame, and one reply with NNUE on, which adds tables
the parser must ignore). Expected values below are read off that file.
"""

from __future__ import annotations

import math
from pathlib import Path

import chess
import numpy as np
import pytest

from conceptchess.concepts import CONCEPTS, ConceptUnavailableError, label
from conceptchess.concepts.stockfish import ENV_VAR, StockfishError, StockfishEval, available, concept_names, parse_eval

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "stockfish_15.1_eval.txt"
FENS = [
    chess.STARTING_FEN,
    "r1bqkbnr/1ppp1ppp/p1n5/1B2p3/4P3/5N2/PPPP1PPP/RNBQK2R w KQkq - 0 4",
    "rnbqkbnr/ppppp2p/5p2/6pQ/4P3/8/PPPP1PPP/RNB1KBNR b KQkq - 1 3",
    "4k3/8/8/8/8/8/4P3/4K3 b - - 0 1",
    "2r3k1/1q3ppp/p3p3/1p1nP3/3P4/P4N2/1P2QPPP/2R3K1 b - - 12 30",
]


def replies() -> list[str]:
    """The fixture split into one block per ``eval`` (each ends with its "Final evaluation" line)."""
    out, cur = [], []
    for line in FIXTURE.read_text().splitlines():
        cur.append(line)
        if line.startswith("Final evaluation"):
            out.append("\n".join(cur))
            cur = []
    return out


def test_fixture_has_six_replies() -> None:
    assert len(replies()) == 6


def test_every_concept_parsed() -> None:
    terms = parse_eval(replies()[0])
    assert list(terms) == concept_names() == [n for n, c in CONCEPTS.items() if c.source == "stockfish"]
    assert len(terms) == 70 and not any(math.isnan(v) for v in terms.values())
    assert "sf_material_white_mg" not in terms  # printed as ---- by Stockfish: not a concept


def test_start_position() -> None:
    t = parse_eval(replies()[0])
    assert t["sf_mobility_white_mg"] == -0.50 and t["sf_mobility_white_eg"] == -0.66
    assert t["sf_mobility_black_mg"] == -0.50 and t["sf_mobility_total_mg"] == 0.0
    assert t["sf_king_safety_white_mg"] == 0.53 and t["sf_king_safety_black_eg"] == -0.06
    assert t["sf_space_white_mg"] == 0.23 and t["sf_space_total_mg"] == 0.0
    assert t["sf_total_total_mg"] == 0.0 and t["sf_classical_eval"] == 0.0 and t["sf_final_eval"] == 0.0


def test_ruy_lopez() -> None:
    t = parse_eval(replies()[1])
    assert t["sf_material_total_mg"] == 0.10 and t["sf_material_total_eg"] == 0.07
    assert t["sf_threats_white_mg"] == 0.26 and t["sf_threats_black_mg"] == 0.76 and t["sf_threats_total_mg"] == -0.50
    assert t["sf_bishops_white_eg"] == -0.70 and t["sf_pawns_total_eg"] == 0.0  # printed "-0.00"
    assert t["sf_winnable_total_mg"] == 0.0 and t["sf_winnable_total_eg"] == -0.11
    assert t["sf_total_total_mg"] == -0.70 and t["sf_total_total_eg"] == -0.61
    assert t["sf_classical_eval"] == -0.66 and t["sf_final_eval"] == -0.61


def test_in_check_is_nan_not_zero() -> None:
    t = parse_eval(replies()[2])
    assert "Final evaluation: none (in check)" in replies()[2]
    assert all(math.isnan(v) for v in t.values())


def test_specialised_endgame_prints_zeros() -> None:
    t = parse_eval(replies()[3])
    assert set(t.values()) == {0.0}


def test_middlegame() -> None:
    t = parse_eval(replies()[4])
    assert t["sf_king_safety_white_mg"] == 0.01 and t["sf_king_safety_white_eg"] == -0.20
    assert t["sf_king_safety_total_mg"] == -0.39 and t["sf_imbalance_total_mg"] == 0.09
    assert t["sf_knights_black_mg"] == 0.12 and t["sf_rooks_white_eg"] == 0.07
    assert t["sf_classical_eval"] == -0.09 and t["sf_final_eval"] == -0.07


def test_nnue_reply_tables_are_ignored() -> None:
    t = parse_eval(replies()[5])
    assert t["sf_threats_total_mg"] == 0.20 and t["sf_total_total_eg"] == 0.35
    assert t["sf_classical_eval"] == 0.40 and t["sf_final_eval"] == 0.16


def test_malformed_replies_are_errors() -> None:
    with pytest.raises(StockfishError, match="0 of the 14"):
        parse_eval("Unknown command: eval")
    truncated = "\n".join(line for line in replies()[0].splitlines() if "Mobility" not in line)
    with pytest.raises(StockfishError, match="13 of the 14"):
        parse_eval(truncated)
    garbled = replies()[0].replace("|   Mobility | -0.50 -0.66 |", "|   Mobility | -0.50 x.yz |")
    with pytest.raises(StockfishError, match="malformed number"):
        parse_eval(garbled)


def test_missing_binary_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "/nonexistent/stockfish")
    assert not available()
    with pytest.raises(ConceptUnavailableError, match="Stockfish 15.1 binary, not found.*nonexistent"):
        label([chess.Board()], ["in_check", "sf_mobility_total_mg"])
    assert label([chess.Board()], ["in_check"])["in_check"].tolist() == [0]  # python-chess concepts unaffected


needs_stockfish = pytest.mark.skipif(not available(), reason="stockfish binary not found (apt-get install stockfish)")


@needs_stockfish
def test_live_matches_fixture() -> None:
    with StockfishEval() as sf:
        if not sf.id.startswith("Stockfish 15.1"):
            pytest.skip(f"fixture is Stockfish 15.1 output, found {sf.id}")
        live = sf.terms_many([chess.Board(f) for f in FENS])
    for fen, got, reply in zip(FENS, live, replies()[: len(FENS)], strict=True):
        want = parse_eval(reply)
        assert got.keys() == want.keys()
        assert all(g == w or (math.isnan(g) and math.isnan(w)) for g, w in zip(got.values(), want.values(), strict=True)), fen


@needs_stockfish
def test_live_label_columns() -> None:
    boards = [chess.Board(f) for f in FENS[:3]]
    cols = label(boards, ["sf_mobility_white_mg", "in_check", "sf_final_eval"])
    assert cols["sf_mobility_white_mg"].dtype == np.float64
    assert cols["sf_mobility_white_mg"][0] == -0.50 and cols["in_check"].tolist() == [0, 0, 1]
    assert math.isnan(cols["sf_final_eval"][2]) and cols["sf_final_eval"][1] == -0.61


@needs_stockfish
def test_live_many_positions_one_process() -> None:
    boards = [chess.Board()] * 150  # more than one batch
    with StockfishEval() as sf:
        rows = sf.terms_many(boards)
        pid = sf.proc.pid
        assert sf.terms(chess.Board())["sf_space_white_mg"] == 0.23 and sf.proc.pid == pid
    assert len(rows) == 150 and {r["sf_mobility_white_mg"] for r in rows} == {-0.50}
    assert sf.proc.poll() is not None  # closed
