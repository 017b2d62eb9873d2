"""Helpers shared by the tests (no tests here): where the data is, the one CLI runner, generated and
hand-made inputs. Fixtures live in ``conftest.py``.

The real test data lies beside the project (``../shared/data`` or ``$CONCEPTCHESS_TEST_DATA``,
:func:`conceptchess.paths.test_data_dir`); tests that need it skip when it is absent. The small
fixtures of ``tests/data`` are always there.

Stockfish tests skip when the binary is missing; node counts stay small (20k per check) so each check
takes a fraction of a second on a busy 2-core machine.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import chess
import chess.pgn
import numpy as np
import pytest
import torch
from typer.testing import CliRunner, Result

from conceptchess.cli.main import app
from conceptchess.concepts.stockfish import find_stockfish
from conceptchess.datasets import DatasetWriter, position_record
from conceptchess.lc0.trainable import TrainableLc0Net
from conceptchess.lc0.weights import NetSpec, write_weights
from conceptchess.networks import default_network
from conceptchess.paths import ROOT, test_data_dir
from conceptchess.puzzles.lichess import import_lichess
from conceptchess.puzzles.records import PuzzleRecord, make_puzzle_id
from conceptchess.store import connect

DATA = test_data_dir()
FIXTURES = Path(__file__).resolve().parent / "data"
LICHESS_CSV = FIXTURES / "lichess_puzzles.csv"
STOCKFISH_EVAL = FIXTURES / "stockfish_15.1_eval.txt"
LICHESS_GAMES = "lichess_2021-10_games_a.pgn"
NODES = 20_000


# -- the command line ---------------------------------------------------------------------------------------
def cli(*args: object, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """``conceptchess args…`` in this process: typer's CliRunner over :data:`conceptchess.cli.main.app`,
    stdout and stderr kept apart (``.stdout``, ``.stderr``, ``.exit_code``; ``.output`` has both).
    Arguments are turned into strings; ``COLUMNS=200`` keeps tables unwrapped."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})}, input=input)


def cli_process(*args: object, **popen: object) -> subprocess.Popen:
    """``python -m conceptchess args…`` as a real process (run from the project root) — only for what
    needs one: killing it with SIGKILL mid-run. ``popen`` goes to :class:`subprocess.Popen`."""
    popen.setdefault("cwd", ROOT)
    return subprocess.Popen([sys.executable, "-m", "conceptchess", *map(str, args)], **popen)


# -- data ---------------------------------------------------------------------------------------------------
def data_file(*parts: str) -> Path:
    """A file of the real test data; the test skips when it is absent."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real test data not available: {p} (set CONCEPTCHESS_TEST_DATA or provide ../shared/data)")
    return p


def random_positions(n: int, seed: int = 7) -> list[chess.Board]:
    """``n`` positions sampled (12 % of plies after the sixth) from seeded games of random legal moves:
    rich in checks, mates, pins, promotions and en passant."""
    rng = random.Random(seed)
    out: list[chess.Board] = []
    while len(out) < n:
        b = chess.Board()
        for ply in range(rng.randrange(8, 140)):
            moves = list(b.legal_moves)
            if not moves:
                break
            b.push(rng.choice(moves))
            if ply > 5 and rng.random() < 0.12:
                out.append(b.copy(stack=False))
    return out[:n]


def random_move_lists(games: int, plies: int, seed: int = 0) -> list[list[chess.Move]]:
    """``games`` seeded games of up to ``plies`` random legal moves each."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(games):
        b, moves = chess.Board(), []
        for _ in range(plies):
            legal = list(b.legal_moves)
            if not legal:
                break
            moves.append(legal[rng.integers(len(legal))])
            b.push(moves[-1])
        out.append(moves)
    return out


def random_games(path: Path, games: int, plies: int, seed: int = 0) -> Path:
    """A positions dataset of ``games`` seeded games of random legal moves, every position of each (with its history)."""
    with DatasetWriter(path, {"made_by": "test random games"}) as w:
        for g, moves in enumerate(random_move_lists(games, plies, seed)):
            for t in range(len(moves) + 1):
                w.write({"id": f"g{g}-p{t}", "game": g, "ply": t, **position_record(chess.Board(), moves, t)})
    return path


def tiny_net(path: Path, seed: int, blocks: int = 2, filters: int = 8, step: int | None = None, run: str = "tiny") -> Path:
    """A small random-init lc0 network (.pb.gz); with ``step``, a checkpoint of series ``run`` (its .json sidecar)."""
    spec = NetSpec(blocks=blocks, filters=filters, se_channels=4, policy="convolution", policy_channels=0, value="wdl",
                   value_channels=4, value_hidden=16, moves_left=False)
    torch.manual_seed(seed)
    net = TrainableLc0Net(spec)
    write_weights(path, spec, net.folded_state(), training_steps=step or 0)
    if step is not None:
        path.with_name(path.name.replace(".pb.gz", ".json")).write_text(json.dumps({"run": run, "step": step}))
    return path


# -- engines, networks, databases ---------------------------------------------------------------------------
def stockfish_or_skip() -> str:
    path = find_stockfish()
    if path is None:
        pytest.skip("Stockfish not installed (apt-get install stockfish, or set $CONCEPTCHESS_STOCKFISH)")
    return path


def network_or_skip() -> Path:
    net = default_network()
    if net is None or not Path(net).is_file():
        pytest.skip("no network in engines/ (and $CONCEPTCHESS_NET unset)")
    return Path(net)


def sqlite_db(tmp_path: Path, name: str = "t.sqlite"):
    return connect(f"sqlite:///{tmp_path / name}")


def imported_db(tmp_path: Path, collection: str = "lichess"):
    """A SQLite database holding the Lichess fixture (tests/data/lichess_puzzles.csv) as ``collection``."""
    db = sqlite_db(tmp_path)
    import_lichess(db, LICHESS_CSV, collection)
    return db


PG_URL = "CONCEPTCHESS_TEST_PG_URL"
REQUIRE_PG = "CONCEPTCHESS_REQUIRE_PG"


def pg_unavailable(reason: str):
    """Skip with ``reason``; fail with it when ``$CONCEPTCHESS_REQUIRE_PG=1`` (set by ``.ci/run``)."""
    if os.environ.get(REQUIRE_PG) == "1":
        pytest.fail(f"${REQUIRE_PG}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


# -- puzzles ------------------------------------------------------------------------------------------------
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
EQUAL_ONLY_MOVES = [  # (game, ply, FEN after it, the move played next, Stockfish's score of it at 150k nodes)
    ("https://lichess.org/mqqK2tu2", 26, "r2q1rk1/1pp1bppp/p1n1p3/8/3P1B2/P1PbPN2/5PPP/R2Q1RK1 w - - 0 14", "d1d3", "+0.26"),
    ("https://lichess.org/wsPKbFve", 30, "r2q1rk1/1bp1bppp/4p3/p3n3/PpPP4/3Q2N1/1P1B2PP/R3KB1R w KQ - 0 16", "d4e5", "+1.37"),
    ("https://lichess.org/Iyl7qUl9", 44, "1r2r1k1/1bp2ppp/1b1q1n2/3p4/Pp1P4/1P2n1PP/1B1NNPB1/R2QK2R w KQ - 0 23", "f2e3", "-0.15"),
]
# Black's only move Bxf3 (+8.8) after Rxf3+ — but Black was +8.5 before Rxf3+: decided already.
WON_BEFORE = ("https://lichess.org/CCgI4lFb", 57, "1r6/3q1krQ/p2p4/2p1p2p/4P1b1/5R2/PPP5/1K6 b - - 0 29", "g4f3")


def lichess_positions(wanted: list[tuple[str, int]]) -> list[dict]:
    """JSONL position records (``id``, ``moves`` from the start, ``site``, ``ply``) of the shared
    Lichess games at (game URL, ply): the board after that many plies, the game's moves its history."""
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


def mined(i: int, kind: str = "concept", concept: str = "fork-dir") -> PuzzleRecord:
    """A puzzle record as mining makes it (provenance and verification filled in by hand), one of four positions."""
    fens = ["r3k3/pp3ppp/8/1N6/8/8/PPP2PPP/6K1 w - - 0 1", "6k1/ppp2pp1/7p/8/3q4/5N2/PPP2PPP/6K1 w - - 0 1",
            "7k/3pp1pp/8/8/8/8/3qrPPP/RR4K1 w - - 0 1", "3qr1k1/5ppp/8/8/8/8/4RPPP/4R1K1 w - - 0 1"]
    sols = [["b5c7", "e8d7", "c7a8"], ["f3d4"], ["a1a8"], ["e2e8", "d8e8", "e1e8"]]
    alts = [[[], []], [[]], [["b1b8"]], [[], []]]
    fen, sol = fens[i % 4], sols[i % 4]
    return PuzzleRecord(id=make_puzzle_id(fen, sol[0], concept, i), fen=fen, start_fen=fen, leading_moves=[], solution=sol,
                        side_to_solve="white", kind=kind, source="game", source_game=f"lichess.pgn#game{i}", network_sha256="ab" * 32,
                        checkpoint="cc-6x32@178", tap="block5", concept=concept, concept_score=3.25 + i, concept_rank=i + 1,
                        network_move=sol[0], network_policy=0.42, verified=True, verify_reason="ok", best_move=sol[0], best_cp=512,
                        second_move=None, second_cp=None, win_chance_gap=0.91, accepted_moves=alts[i % 4],
                        themes=["fork", "short"], difficulty=0.375, verify_settings={"nodes": 1000})
