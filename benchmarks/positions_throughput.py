"""Throughput of `positions from-pgn` against python-chess's bare `read_game` loop.

Reads the shared Lichess games (../shared/data/pgn, or $CONCEPTCHESS_TEST_DATA/pgn) plain and as a
zstd file compressed here into a temporary folder, and prints games/s and positions/s for

- baseline: ``while chess.pgn.read_game(f): pass`` on the same text stream (plain file, or zstandard's
  ``stream_reader`` in a ``TextIOWrapper``), positions = plies + 1 per game;
- conceptchess: :func:`conceptchess.games.pgn_dataset`, the whole command: parse, records with their
  exact-history ``fen``/``moves``, JSONL writing, sha256 of the input, manifest;

with the ratio conceptchess / baseline (1.0 = as fast as just parsing). Best of ``--repeat`` runs.

    python benchmarks/positions_throughput.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import chess.pgn
import zstandard
from _common import GAMES, need

from conceptchess.games import pgn_dataset


def baseline(path: Path) -> tuple[int, int]:
    games = plies = 0
    with open(path, "rb") as raw:
        binary = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) if path.suffix == ".zst" else raw
        text = io.TextIOWrapper(binary, encoding="utf-8")
        while (g := chess.pgn.read_game(text)) is not None:
            games += 1
            plies += sum(1 for _ in g.mainline_moves())
    return games, plies + games


def ours(path: Path, out: Path) -> tuple[int, int]:
    man = pgn_dataset([path], out, overwrite=True)
    return man["counts"]["games_read"], man["counts"]["positions_written"]


def best(fn, *args, repeat: int) -> tuple[float, float, tuple[int, int]]:
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        counts = fn(*args)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus), counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    need(GAMES)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        zst = tmp / (GAMES.name + ".zst")
        zst.write_bytes(zstandard.ZstdCompressor(level=10).compress(GAMES.read_bytes()))
        print(f"{GAMES.name}: {GAMES.stat().st_size / 1e6:.2f} MB plain, {zst.stat().st_size / 1e6:.2f} MB zstd; best of {args.repeat}; "
              f"python-chess {chess.__version__}")
        print(f"{'input':6} {'reader':13} {'games/s':>9} {'positions/s':>12} {'wall s':>7} {'cpu s':>7} {'ratio':>6} {'cpu ratio':>9}")
        for name, path in (("plain", GAMES), ("zstd", zst)):
            bw, bc, (bg, bp) = best(baseline, path, repeat=args.repeat)
            ow, oc, (og, op) = best(ours, path, tmp / "ds", repeat=args.repeat)
            assert (bg, bp) == (og, op), ((bg, bp), (og, op))
            print(f"{name:6} {'read_game':13} {bg / bw:9.0f} {bp / bw:12.0f} {bw:7.2f} {bc:7.2f} {'1.00':>6} {'1.00':>9}")
            print(f"{name:6} {'conceptchess':13} {og / ow:9.0f} {op / ow:12.0f} {ow:7.2f} {oc:7.2f} {bw / ow:6.2f} {bc / oc:9.2f}")
        print("ratio = conceptchess speed / read_game speed (wall; cpu: from process time, steadier on a shared machine);\n"
              "conceptchess also builds every record and writes the dataset (JSONL + sha256 + manifest)")


if __name__ == "__main__":
    main()
