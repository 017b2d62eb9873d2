"""Activation extraction throughput against the engine alone, measured in the same run.

Extraction: ``extract_activations`` of every block tap plus ``input``, full pooling, float16, from a
positions dataset on disk to a store (reading, history building, encoding, inference, pooling,
writing). Baseline: ``Engine.run_planes`` on the same positions already encoded, no taps. Both use
one Engine (same session, same threads); the baseline is timed before and after the extraction and
averaged. Uses maia-1100 and the Lichess games from ../shared/data (or $CONCEPTCHESS_TEST_DATA).

    .venv/bin/python benchmarks/extraction_throughput.py [--positions 4096] [--chunk-size 1024]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import GAMES, MAIA1100, need


def build_dataset(path: Path, n: int) -> None:
    """Every position of the first games of the shared PGN, up to ``n``."""
    from conceptchess.games import Sampling, pgn_dataset

    pgn_dataset([GAMES], path, sampling=Sampling(max_positions=n))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=int, default=4096)
    ap.add_argument("--chunk-size", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    need(MAIA1100)
    need(GAMES)

    from conceptchess.activations import extract_activations
    from conceptchess.datasets import iter_dataset
    from conceptchess.engine import Engine
    from conceptchess.lc0.encoder import encode
    from conceptchess.positions import histories_of

    with tempfile.TemporaryDirectory() as tmp:
        ds = Path(tmp) / "positions"
        build_dataset(ds, args.positions)
        planes = encode(histories_of(list(iter_dataset(ds)))[0])
        n = len(planes)
        engine = Engine(MAIA1100, batch_size=args.batch_size, threads=args.threads)
        engine.run_planes(planes[: args.batch_size])  # warm-up

        def baseline() -> float:
            t = time.perf_counter()
            engine.run_planes(planes)
            return n / (time.perf_counter() - t)

        before = baseline()
        t = time.perf_counter()
        store = extract_activations(engine, ds, Path(tmp) / "store", None, pool="full", dtype="float16",
                                    chunk_size=args.chunk_size, batch_size=args.batch_size)
        extraction = n / (time.perf_counter() - t)
        after = baseline()
        engine_only = (before + after) / 2
        size = sum(store[tap].nbytes for tap in store.taps)

    print(f"network {MAIA1100.name} on {engine.provider}, {n} positions, batch {args.batch_size}, chunk {args.chunk_size}")
    print(f"extraction (input + {len(store.taps) - 1} blocks, full, float16): {extraction:8.0f} positions/s "
          f"({size / n / 1024:.1f} KiB/position)")
    print(f"engine only (run_planes, pre-encoded, no taps):         {engine_only:8.0f} positions/s "
          f"(before {before:.0f}, after {after:.0f})")
    print(f"ratio extraction / engine only: {extraction / engine_only:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
