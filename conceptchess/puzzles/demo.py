"""The puzzle part of ``make demo``: mine puzzles for a few concept directions of the default network,
store them in the collection ``demo`` and write ``puzzles/demo.pgn``.

Positions come from the shared Lichess games when they are present (``../shared/data/pgn``), else
from self-play of the network. Until learned probes are available, each concept direction is the
*correlation direction* of a human concept: over the standardised activations ``z`` of one tap,
``v = mean(z · (c - mean c)) / std c`` — a linear read-out of the concept. Pass ``directions`` (e.g.
probe vectors from the probing stage) to mine those instead. A random direction of matched
sparsity and the human concept itself (scored from the board) are mined alongside as controls.

>>> demo_puzzles()                                            # doctest: +SKIP
PosixPath('.../puzzles/demo.pgn')
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from conceptchess.errors import ConceptChessError
from conceptchess.export import PUZZLES_DIR, export_collection
from conceptchess.puzzles.mine import Direction, HumanConcept, MineResult, mine_many
from conceptchess.puzzles.verify import VerifySettings
from conceptchess.store import ROOT, connect

DEMO_CONCEPTS = ("them_hanging_pieces", "us_forks_available", "us_has_mate_in_1")
WORK_DIR = ROOT / "build" / "demo-puzzles"


def demo_positions(network: Path, work: Path, positions: int, seed: int) -> Path:
    """The demo's positions: shared Lichess games when present, else self-play of ``network``."""
    from conceptchess.datasets import POSITIONS_FILE

    out = work / "positions"
    if (out / POSITIONS_FILE).exists():
        return out
    shared = Path(os.environ.get("CONCEPTCHESS_TEST_DATA", ROOT.parent / "shared" / "data")) / "pgn"
    pgns = sorted(shared.glob("*.pgn")) if shared.is_dir() else []
    if pgns:
        from conceptchess.games import Sampling, pgn_dataset

        pgn_dataset(pgns, out, sampling=Sampling(skip_plies=8, every=3, max_positions=positions, seed=seed))
    else:
        from conceptchess.selfplay import selfplay_dataset

        selfplay_dataset(network, out, games=max(1, positions // 60), temperature=1.0, seed=seed, max_plies=120, threads=1,
                         device="cpu")
    return out


def correlation_direction(store, tap: str, values: np.ndarray, name: str) -> Direction:
    """The correlation direction of concept ``values`` over a tap's standardised activations."""
    x = np.asarray(store[tap], dtype=np.float32).reshape(len(store), -1)
    mean, std = x.mean(0), x.std(0)
    std[std < 1e-6] = 1.0
    c = np.nan_to_num(np.asarray(values, np.float64))
    if c.std() == 0:
        raise ConceptChessError(f"concept {name} is constant over the demo positions")
    c = (c - c.mean()) / c.std()
    v = ((x - mean) / std).T.astype(np.float64) @ c / len(c)
    return Direction(f"{name}-corr-{tap}", tap, v.astype(np.float32), mean, std)


def demo_puzzles(out: str | os.PathLike | None = None, *, db_url: str | None = None, network: str | os.PathLike | None = None,
                 directions: list[Direction] | None = None, concepts: tuple[str, ...] = DEMO_CONCEPTS, tap: str | None = None,
                 positions: int = 3000, nodes: int = 100_000, max_puzzles: int = 5, workers: int = 2, seed: int = 0,
                 work_dir: str | os.PathLike | None = None, collection: str = "demo",
                 progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> Path:
    """Mine, store and export demo puzzles; returns the PGN path (default ``puzzles/demo.pgn``).

    ``network``: default :func:`~conceptchess.networks.default_network`. ``tap``: default the last
    block. ``positions``: how many positions to sample. ``nodes``: Stockfish nodes per check.
    ``max_puzzles``: per concept and per control. Everything is seeded by ``seed``.
    """
    from conceptchess.activations import extract_activations
    from conceptchess.concepts import label
    from conceptchess.datasets import iter_dataset
    from conceptchess.networks import default_network, open_network

    network = Path(network or default_network() or "")
    if not network.is_file():
        raise ConceptChessError("no network for the puzzle demo (engines/ is empty and $CONCEPTCHESS_NET is unset)")
    net = open_network(network)
    tap = tap or net.taps[-1]
    work = Path(work_dir or WORK_DIR) / net.sha256[:12]
    work.mkdir(parents=True, exist_ok=True)
    dataset = demo_positions(network, work, positions, seed)
    store = extract_activations(net, dataset, work / f"activations-{tap}", [tap], device="cpu", threads=1)
    scorers: list = list(directions or [])
    if not scorers:
        boards = [spec.board() for spec in iter_dataset(dataset)]
        values = label(boards, list(concepts))
        for name in concepts:
            scorers.append(correlation_direction(store, tap, values[name], name))
    controls = [scorers[0].random_control(seed)] + [HumanConcept(c) for c in concepts[:1]]
    db = connect(db_url)
    results: list[MineResult] = mine_many(db, collection, scorers + controls, store, dataset, network=network, max_puzzles=max_puzzles,
                                          settings=VerifySettings(nodes=nodes), workers=workers, weak_network=True, seed=seed,
                                          progress_for=progress_for)
    if not any(r.puzzles for r in results):
        raise ConceptChessError("the demo found no puzzle (no prototype had a unique network move)")
    res = export_collection(db, collection, Path(out) if out else PUZZLES_DIR / "demo.pgn")
    return res.path
