"""Positions where two networks choose different moves: the roots for concept discovery.

Schut et al. start discovery from positions where AlphaZero and a version of it 75 Elo weaker disagree;
here any two networks the project loads (the final checkpoint of a series and an earlier one, two Maia
nets). Each network's choice is the top move of its raw policy, or with ``nodes`` the best move of a
search of that many playouts (:mod:`conceptchess.search`). The output keeps every disagreeing position's
record (history and metadata) and adds ``move_a``/``move_b`` (each network's choice), ``p_a``/``p_b``
(each network's policy probability of its own choice) and ``p_a_of_b``/``p_b_of_a`` (of the other's).

>>> disagreement_dataset("final.pb.gz", "early.pb.gz", "positions/", "roots/")      # doctest: +SKIP
{'kind': 'positions', 'made_by': 'positions disagree', 'counts': {'positions': 5000, 'disagree': 1412, ...}, ...}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from conceptchess.datasets import DatasetWriter, dataset_origin, dataset_sha256, iter_dataset, read_manifest
from conceptchess.engine import Engine, Evaluation
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.networks import open_network
from conceptchess.positions import PositionSpec, histories_of
from conceptchess.progress import Progress
from conceptchess.provenance import software_versions
from conceptchess.search import SearchSettings, SearchTree, check_nodes, require_value_head

CHUNK = 1024  # positions evaluated at a time


@dataclass(frozen=True)
class DisagreeSettings:
    """``nodes`` None: compare raw policies; otherwise searches of that many playouts."""

    nodes: int | None = None
    batch_size: int = 256
    search: SearchSettings = field(default_factory=SearchSettings)

    def check(self) -> None:
        if self.nodes is not None:
            check_nodes(self.nodes)
            self.search.check()
        if self.batch_size < 1:
            raise ArgumentError("{batch_size} must be at least 1", batch_size="batch_size")


def _probability(ev: Evaluation, move) -> float:
    for m, p in zip(ev.moves, ev.policy):
        if m == move:
            return float(p)
    return 0.0


def _choices(engine: Engine, evs: list[Evaluation], specs: list[PositionSpec], settings: DisagreeSettings, tick=None) -> list:
    """Each position's move: the policy's top move, or a search's best move (``tick()`` after each search)."""
    if settings.nodes is None:
        return [ev.best_move() for ev in evs]
    out = []
    for spec, ev in zip(specs, evs):
        if ev.moves:
            start, moves = spec.parsed()
            out.append(SearchTree(engine, start, moves, settings.search).search(settings.nodes).best_move)
        else:
            out.append(None)
        if tick is not None:
            tick()
    return out


def disagreement_dataset(net_a: str | os.PathLike, net_b: str | os.PathLike, dataset: str | os.PathLike,
                         output: str | os.PathLike, settings: DisagreeSettings = DisagreeSettings(), *,
                         threads: int | None = None, device: str = "auto", overwrite: bool = False,
                         progress: Progress | None = None) -> dict:
    """Write the positions of ``dataset`` where ``net_a`` and ``net_b`` choose different moves; returns the manifest.

    Every position is read and replayed, and both networks loaded (with a value head when searching),
    before anything is written. ``progress(done, total)`` counts positions.
    """
    settings.check()
    output = Path(output)
    if output.exists() and not overwrite:
        raise ArgumentError("already exists (choose another output or pass {overwrite})", prefix=f"{output}: ", overwrite="overwrite=True")
    specs = list(iter_dataset(dataset))
    if not specs:
        raise ConceptChessError(f"{dataset}: no positions to compare")
    where = f"{dataset}: "
    chunks = [specs[s : s + CHUNK] for s in range(0, len(specs), CHUNK)]
    replayed = [histories_of(c, where) for c in chunks]  # every position valid before a network runs
    nets = [open_network(net_a), open_network(net_b)]
    engines = [Engine(n, batch_size=settings.batch_size if settings.nodes is None else settings.search.batch_size,
                      threads=threads, device=device) for n in nets]
    if settings.nodes is not None:
        for e in engines:
            require_value_head(e)
    counts = {"positions": len(specs), "without_legal_moves": 0, "disagree": 0}
    done = 0
    if progress is not None:
        progress(0, len(specs))
    with DatasetWriter(output, overwrite=overwrite) as w:
        for chunk, (hist, boards) in zip(chunks, replayed):
            evs = [e.evaluate(hist, boards) for e in engines]
            searched = [0]

            def tick(searched=searched, base=done) -> None:  # searches: report every position searched by both
                searched[0] += 1
                if progress is not None and searched[0] % 2 == 0:
                    progress(base + searched[0] // 2, len(specs))

            choice_a = _choices(engines[0], evs[0], chunk, settings, tick)
            choice_b = _choices(engines[1], evs[1], chunk, settings, tick)
            for k, spec in enumerate(chunk):
                a, b = choice_a[k], choice_b[k]
                if a is None:
                    counts["without_legal_moves"] += 1
                    continue
                if a == b:
                    continue
                counts["disagree"] += 1
                rec = {"id": spec.id}
                if spec.fen:
                    rec["fen"] = spec.fen
                rec["moves"] = spec.moves
                rec.update(spec.meta)
                ea, eb = evs[0][k], evs[1][k]
                rec.update({"move_a": a.uci(), "move_b": b.uci(), "p_a": round(_probability(ea, a), 6),
                            "p_b": round(_probability(eb, b), 6), "p_a_of_b": round(_probability(ea, b), 6),
                            "p_b_of_a": round(_probability(eb, a), 6)})
                w.write(rec)
            done += len(chunk)
            if progress is not None:
                progress(done, len(specs))
        compared = counts["positions"] - counts["without_legal_moves"]
        counts["rate"] = round(counts["disagree"] / compared, 6) if compared else 0.0
        source = read_manifest(dataset)
        w.manifest = {
            "kind": "positions", "made_by": "positions disagree", "origin": dataset_origin(source),
            "selected_from": {"dataset": str(dataset), "sha256": dataset_sha256(dataset), "made_by": source.get("made_by")},
            "networks": {"a": {"path": str(net_a), "sha256": nets[0].sha256}, "b": {"path": str(net_b), "sha256": nets[1].sha256}},
            "choice": "raw policy top move" if settings.nodes is None else f"search best move at {settings.nodes} playouts",
            "search": settings.search.as_dict() if settings.nodes is not None else None,
            "counts": counts, "software": software_versions("chess", "numpy", "onnxruntime"),
        }
        manifest = dict(w.manifest)
    manifest["positions"] = counts["disagree"]
    return manifest
