"""Shared fixtures: the real test data beside the project (../shared/data or $CONCEPTCHESS_TEST_DATA)."""

from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

import chess
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CONCEPTCHESS_TEST_DATA", ROOT.parent / "shared" / "data"))


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


def data_file(*parts: str) -> Path:
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real test data not available: {p} (set CONCEPTCHESS_TEST_DATA or provide ../shared/data)")
    return p


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.exists():
        pytest.skip(f"real test data not available: {DATA} (set CONCEPTCHESS_TEST_DATA or provide ../shared/data)")
    return DATA


@pytest.fixture(scope="session")
def maia1100() -> Path:
    return data_file("weights", "maia-1100.pb.gz")


@pytest.fixture(scope="session")
def maia1900() -> Path:
    return data_file("weights", "maia-1900.pb.gz")


@pytest.fixture(scope="session")
def meangirl() -> Path:
    return data_file("weights", "meangirl-8.pb.gz")


@pytest.fixture(scope="session")
def lichess_pgn() -> Path:
    return data_file("pgn", "lichess_2021-10_games_a.pgn")


@pytest.fixture(scope="session")
def lc0_onnx_dir(tmp_path_factory) -> Path:
    """lc0's own leela2onnx exports, gunzipped once per session."""
    out = tmp_path_factory.mktemp("lc0onnx")
    for name in ("maia-1100", "mean-girl-8"):
        src = data_file("onnx", f"{name}.onnx.gz")
        (out / f"{name}.onnx").write_bytes(gzip.decompress(src.read_bytes()))
    return out
