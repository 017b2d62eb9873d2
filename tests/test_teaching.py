"""Teachability's first steps: prototypes of a concept and the student that does not know it."""

from __future__ import annotations

import numpy as np
import pytest

from conceptchess.checkpoints import write_sidecar
from conceptchess.directions import ConceptDirection
from conceptchess.discovery import planted_rollouts
from conceptchess.errors import ConceptChessError
from conceptchess.positions import PositionSpec
from conceptchess.teaching import (
    dynamic_prototypes,
    earlier_checkpoints,
    select_student,
    static_prototypes,
    student_agreements,
    top1_agreement,
)
from tests.helpers import random_move_lists, tiny_net


def _prototypes_by_hand(scores: np.ndarray, meta: list[dict]) -> set:
    """Roots whose optimal position at every root-side ply ≥ 1 outscores each sub-optimal line's at that ply."""
    optimal = {(m["root"], m["ply"]): k for k, m in enumerate(meta) if m["line"] == "optimal"}
    ok: dict = {}
    for k, m in enumerate(meta):
        if m["line"] == "suboptimal" and m["root_to_move"] and m["ply"] >= m["branch_ply"] + 1:
            ok.setdefault(m["root"], []).append(scores[optimal[(m["root"], m["ply"])]] > scores[k])
    return {r for r, v in ok.items() if v and all(v)}


def test_the_planted_concept_has_prototypes_and_a_random_one_few():
    X, meta, w = planted_rollouts(roots=40, seed=1)
    planted = ConceptDirection("planted", "block5", w.astype(np.float32), kind="discovered")
    p = dynamic_prototypes(planted, X, meta)
    assert set(p.roots) == _prototypes_by_hand(X @ w, meta)
    assert p.count >= 30 and p.kept and p.candidates == 40
    assert all(meta[k]["root"] == r and meta[k]["ply"] == 0 and meta[k]["line"] == "optimal" for r, k in zip(p.roots, p.rows))
    noise = planted.random_control(3)
    q = dynamic_prototypes(noise, X, meta)
    assert set(q.roots) == _prototypes_by_hand(X @ noise.vector.astype(np.float64), meta)
    assert q.count < p.count and not q.kept  # under 20: the random direction is dropped, and counted
    assert dynamic_prototypes(noise, X, meta, min_prototypes=1).kept == (q.count >= 1)


def test_static_prototypes_are_the_top_share_by_score():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8))
    d = ConceptDirection("c", "block0", np.array([0, 2.0, 0, 0, -1.0, 0, 0, 0]), np.full(8, 0.5), np.full(8, 2.0))
    p = static_prototypes(d, X)
    score = ((X - 0.5) / 2.0) @ np.array([0, 2.0, 0, 0, -1.0, 0, 0, 0])
    assert list(p.rows) == np.argsort(-score)[:10].tolist() and p.count == 10 and not p.kept
    with pytest.raises(ConceptChessError, match="reads 8 values"):
        static_prototypes(d, X[:, :5])


def test_student_selection_walks_from_the_latest():
    table = [("step3500", 0.61), ("step898", 0.34), ("step231", 0.19), ("step59", 0.07)]
    choice = select_student(table)
    assert (choice.name, choice.agreement, choice.agreements) == ("step231", 0.19, tuple(table))
    assert select_student(table, max_agreement=0.5).name == "step898"
    with pytest.raises(ConceptChessError) as e:
        select_student(table, max_agreement=0.05)
    assert "step3500 0.61, step898 0.34, step231 0.19, step59 0.07" in str(e.value) and "\n" not in str(e.value)
    assert top1_agreement(["e2e4", "d2d4", "g1f3", "c2c4"], ["e2e4", "d2d4", "b1c3", "c2c4"]) == 0.75


def test_students_of_a_series_and_their_agreement(tmp_path, maia1100):
    for step in (0, 10, 20, 40):
        path = tiny_net(tmp_path / f"run-step{step:06d}.pb.gz", seed=step + 1)
        write_sidecar(path, {"run": "run", "step": step, "file": path.name})  # as the trainer writes them
    teacher = tmp_path / "run-step000040.pb.gz"
    assert [p.name for p in earlier_checkpoints(teacher)] == ["run-step000020.pb.gz", "run-step000010.pb.gz"]
    with pytest.raises(ConceptChessError, match="no checkpoint sidecar"):
        earlier_checkpoints(maia1100)
    positions = [PositionSpec(i, None, [m.uci() for m in moves]) for i, moves in enumerate(random_move_lists(40, 12, seed=3))]
    found = dict(student_agreements(teacher, [teacher, *earlier_checkpoints(teacher)], positions, threads=1))
    assert found["run-step000040.pb.gz"] == 1.0  # the teacher agrees with itself
    assert all(0.0 <= a < 1.0 for n, a in found.items() if n != "run-step000040.pb.gz")
