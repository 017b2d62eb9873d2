"""Helpers shared by the puzzle and evaluation tests (no tests here).

Stockfish tests skip when the binary is missing; node counts stay small (20k per check) so each check
takes a fraction of a second on a busy 2-core machine. Positions from the shared Lichess games are read
from ``../shared/data`` (the test skips when it is absent).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import chess
import pytest

ROOT = Path(__file__).resolve().parents[2]
LICHESS_CSV = ROOT / "tests" / "data" / "lichess_puzzles.csv"
NODES = 20_000

# Hand-made positions (White to move)
ONE_WINNER = "6k1/ppp2pp1/7p/8/3q4/5N2/PPP2PPP/6K1 w - - 0 1"  # only Nxd4 wins the queen
TWO_WINNERS = "6k1/ppp2pp1/7p/8/3q4/5N2/PPP2PPP/3R2K1 w - - 0 1"  # Nxd4 and Rxd4 both win it
MATES = "7k/3pp1pp/8/8/8/8/3qrPPP/RR4K1 w - - 0 1"  # Ra8# and Rb8#; anything else loses
MATES_BUT_ALL_WIN = "7k/6pp/8/8/8/8/8/RR4K1 w - - 0 1"  # Ra8#/Rb8#, but every move wins anyway
FORK = "r3k3/pp3ppp/8/1N6/8/8/PPP2PPP/6K1 w - - 0 1"  # Nc7+ and Nxa8; the network here plays Nxa7
MATE_IN_2 = "3qr1k1/5ppp/8/8/8/8/4RPPP/4R1K1 w - - 0 1"  # Rxe8+ Qxe8 Rxe8#
# Re8+ Qxe8 and mate in one — but the second solver move is not unique: Rxe8#, dxe8=Q# and dxe8=R#
# all mate and dxe8=N (+5.5 to +6.2 at 20k–1M nodes, win chances ≈ 0.8 > 0.6) wins as well. Re8+ is
# unique (Rd2 +0.4 to +0.7 next).
MATE_IN_2_SECOND_NOT_UNIQUE = "3q2k1/3P1ppp/8/5b2/8/8/4RPPP/4R1K1 w - - 0 1"
# Nxf6 wins the queen; at 20k nodes Black's best reply is Bxg2+, after which Kxg2 is White's only legal
# move: lichess-puzzler drops such a final forced move (and the reply before it).
FORCED_FINISH = "7k/8/p4q2/1p1N4/8/5b2/PP4PP/6NK w - - 0 1"
ONE_WINNER_BLACK = "6k1/ppp2ppp/5n2/3Q4/8/7P/PPP2PP1/6K1 b - - 0 1"  # ONE_WINNER, colours swapped: only Nxd5

# Positions of the shared Lichess games (lichess_2021-10_games_a.pgn), by game URL and ply.
# Only moves that hold an equal position: each was accepted at 150k nodes with no advantage floor.
LICHESS_GAMES = "lichess_2021-10_games_a.pgn"
EQUAL_ONLY_MOVES = [  # (game, ply, FEN after it, the move played next, Stockfish's score of it at 150k nodes)
    ("https://lichess.org/mqqK2tu2", 26, "r2q1rk1/1pp1bppp/p1n1p3/8/3P1B2/P1PbPN2/5PPP/R2Q1RK1 w - - 0 14", "d1d3", "+0.26"),
    ("https://lichess.org/wsPKbFve", 30, "r2q1rk1/1bp1bppp/4p3/p3n3/PpPP4/3Q2N1/1P1B2PP/R3KB1R w KQ - 0 16", "d4e5", "+1.37"),
    ("https://lichess.org/Iyl7qUl9", 44, "1r2r1k1/1bp2ppp/1b1q1n2/3p4/Pp1P4/1P2n1PP/1B1NNPB1/R2QK2R w KQ - 0 23", "f2e3", "-0.15"),
]
# Black's only move Bxf3 (+8.8) after Rxf3+ — but Black was +8.5 before Rxf3+: decided already.
WON_BEFORE = ("https://lichess.org/CCgI4lFb", 57, "1r6/3q1krQ/p2p4/2p1p2p/4P1b1/5R2/PPP5/1K6 b - - 0 29", "g4f3")


def stockfish_or_skip() -> str:
    from conceptchess.concepts.stockfish import find_stockfish

    path = find_stockfish()
    if path is None:
        pytest.skip("Stockfish not installed (apt-get install stockfish, or set $CONCEPTCHESS_STOCKFISH)")
    return path


def lichess_positions(wanted: list[tuple[str, int]]) -> list[dict]:
    """JSONL position records (``id``, ``moves`` from the start, ``site``, ``ply``) of the shared
    Lichess games at (game URL, ply): the board after that many plies, the game's moves its history."""
    import chess.pgn

    from tests.conftest import data_file

    sites = {site for site, _ in wanted}
    games: dict[str, list[str]] = {}
    with open(data_file("pgn", LICHESS_GAMES)) as f:
        while len(games) < len(sites):
            offset = f.tell()
            headers = chess.pgn.read_headers(f)  # and leaves the moves unread
            if headers is None:
                break
            if headers.get("Site") in sites:
                f.seek(offset)
                games[headers["Site"]] = [m.uci() for m in chess.pgn.read_game(f).mainline_moves()]
    out = []
    for k, (site, ply) in enumerate(wanted):
        if site not in games:
            pytest.fail(f"{site} is not in {LICHESS_GAMES}")
        out.append({"id": f"g{k}", "moves": games[site][:ply], "site": site, "ply": ply, "source": LICHESS_GAMES})
    return out


def network_or_skip() -> Path:
    from conceptchess.networks import default_network

    net = default_network()
    if net is None or not Path(net).is_file():
        pytest.skip("no network in engines/ (and $CONCEPTCHESS_NET unset)")
    return Path(net)


def sqlite_db(tmp_path: Path, name: str = "t.sqlite"):
    from conceptchess.store import connect

    return connect(f"sqlite:///{tmp_path / name}")


def imported_db(tmp_path: Path, collection: str = "lichess"):
    from conceptchess.puzzles.lichess import import_lichess

    db = sqlite_db(tmp_path)
    import_lichess(db, LICHESS_CSV, collection)
    return db


def run_cli(module: str, *args: str, env: dict | None = None, input: str | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """``python -m conceptchess.cli.<module> args`` (the typer apps the main CLI mounts)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", f"conceptchess.cli.{module}", *args], capture_output=True, text=True,
                          env=e, input=input, timeout=timeout, cwd=ROOT)


def board(fen: str) -> chess.Board:
    return chess.Board(fen)


def invoke(module: str, *args: str, env: dict | None = None, input: str | None = None):
    """Run a CLI group in-process (typer's CliRunner; stdout and stderr kept apart)."""
    import importlib

    from typer.testing import CliRunner

    app = importlib.import_module(f"conceptchess.cli.{module}").app
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})}, input=input)
