"""Verdicts on stored puzzles: verify every puzzle of a collection (imported or mined) and record each verdict.

Every puzzle's solution is re-checked with :func:`~conceptchess.puzzles.verify.check_line` on
``workers`` Stockfish processes (each solver move the only good one, and winning by at least
``settings.min_advantage_cp`` unless it mates); its verification fields (the settings included),
themes (now with the score) and difficulty (depth and length signals, plus a weak network's when
given) are updated, one transaction per puzzle, so an interrupted run keeps what it finished.

>>> rows = verify_collection(db, "lichess-sample", VerifySettings(nodes=200_000))   # doctest: +SKIP
>>> rows[0]                                                                         # doctest: +SKIP
StoredVerdict(puzzle_id='00sHx', accepted=True, reason='ok: …', category='accepted')
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, replace
from pathlib import Path

import chess

from conceptchess.checkpoints import checkpoint_label
from conceptchess.engine import Engine
from conceptchess.errors import ConceptChessError
from conceptchess.files import atomic_open
from conceptchess.progress import Progress
from conceptchess.puzzles.difficulty import estimate, policy_rank
from conceptchess.puzzles.engine_pool import StockfishPool
from conceptchess.puzzles.records import collection_puzzles, puzzle_board, update_puzzle
from conceptchess.puzzles.themes import tag
from conceptchess.puzzles.verify import ACCEPTED, VerifySettings, check_line
from conceptchess.store.base import utcnow


@dataclass(frozen=True)
class StoredVerdict:
    """The verdict on one stored puzzle."""

    puzzle_id: str
    accepted: bool
    reason: str
    category: str = ACCEPTED  # verify's category of a rejected solution (VERDICT_CATEGORIES)


def _policy(engine, boards: list[chess.Board]):
    return engine.evaluate_boards(boards) if engine is not None and boards else [None] * len(boards)


def verify_collection(db, collection: str, settings: VerifySettings = VerifySettings(), *, workers: int = 2,
                      network: str | os.PathLike | None = None, weak_network: str | os.PathLike | None = None,
                      progress: Progress | None = None) -> list[StoredVerdict]:
    """Check every puzzle of ``collection``; ``network``: also require the network's move to be accepted."""
    with db.session() as s:
        puzzles = collection_puzzles(s, collection)
    if not puzzles:
        raise ConceptChessError(f"collection {collection!r} has no puzzles")
    boards = [puzzle_board(p) for p in puzzles]
    net = Engine(network, device="cpu", threads=1) if network else None
    weak = Engine(weak_network, device="cpu", threads=1) if weak_network else None
    net_moves = [ev.best_move() if ev is not None else None for ev in _policy(net, boards)]
    weak_evs = _policy(weak, boards)
    rows: list[StoredVerdict] = []
    if progress:
        progress(0, len(puzzles))
    with StockfishPool(workers) as pool:
        items = list(zip(puzzles, boards, net_moves, strict=True))
        verdicts = pool.map(lambda sf, it: check_line(sf, it[1], it[0].solution, settings, it[2]), items)
        for k, ((p, _, nm), wev, verdict) in enumerate(zip(items, weak_evs, verdicts, strict=True), start=1):
            first = chess.Move.from_uci(p.solution[0])
            wp = policy_rank(wev.moves, wev.policy, first) if wev is not None else None
            step = verdict.first
            diff, detail = estimate(weak_prob=wp[0] if wp else None, weak_rank=wp[1] if wp else None,
                                    legal=wp[2] if wp else None,
                                    depth_found=step.depth_found if step is not None and step.best == first else None,
                                    solver_moves=(len(p.solution) + 1) // 2)
            if wp:
                detail["weak_network"] = checkpoint_label(weak_network)
            settings_used = {**verdict.settings, **pool.settings(),
                             **({"network": str(network), "network_move": nm.uci()} if nm is not None else {})}
            checked = replace(p, **{**verdict.columns(), "verify_engine": pool.name, "verify_settings": settings_used,
                                    "verified_at": utcnow(),
                                    "themes": tag(chess.Board(p.fen), p.solution, verdict.final_score if verdict.accepted else None)})
            if step is not None:
                checked = replace(checked, difficulty=diff, difficulty_detail=detail)
            with db.begin() as s:
                update_puzzle(s, checked)
            rows.append(StoredVerdict(p.id, verdict.accepted, verdict.reason, verdict.category))
            if progress:
                progress(k, len(items))
    return rows


def write_verdicts_csv(rows: list[StoredVerdict], path: str | os.PathLike) -> Path:
    """``puzzle_id, accepted, reason`` per puzzle, written to a temporary file and renamed."""
    path = Path(path)
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["puzzle_id", "accepted", "reason"])
        for r in rows:
            w.writerow([r.puzzle_id, "yes" if r.accepted else "no", r.reason])
    return path


def verified_ids(db, collection: str) -> list[str]:
    with db.session() as s:
        return [p.id for p in collection_puzzles(s, collection) if p.verified]


__all__ = ["StoredVerdict", "verify_collection", "write_verdicts_csv", "verified_ids"]
