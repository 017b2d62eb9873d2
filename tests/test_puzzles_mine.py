"""Mining: concept scores over an activation store, the top 2.5% as prototypes, verified puzzles."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import chess
import numpy as np
import pytest
from test_puzzles_common import FORK, MATES, NODES, ONE_WINNER, TWO_WINNERS, invoke, network_or_skip, sqlite_db, stockfish_or_skip

from conceptchess.errors import ConceptChessError
from conceptchess.puzzles.mine import Direction, HumanConcept, mine, mine_many, prototype_count, rank_positions
from conceptchess.puzzles.records import collection_puzzles
from conceptchess.puzzles.verify import VerifySettings

S = VerifySettings(nodes=NODES)
HAND_MADE = {"one": ONE_WINNER, "fork": FORK, "mates": MATES, "two": TWO_WINNERS}


def _random_positions(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        b = chess.Board()
        moves = []
        for _ in range(int(rng.integers(6, 30))):
            legal = list(b.legal_moves)
            if not legal:
                break
            m = legal[int(rng.integers(len(legal)))]
            b.push(m)
            moves.append(m.uci())
        if not b.is_game_over():
            out.append({"id": f"r{len(out)}", "moves": moves, "game": len(out), "source": "random.pgn"})
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A 44-position dataset (4 hand-made puzzles first) and its block0 activation store."""
    from conceptchess.activations import extract_activations

    net = network_or_skip()
    d = tmp_path_factory.mktemp("corpus")
    ds = d / "positions"
    ds.mkdir()
    recs = [{"id": k, "fen": f, "moves": [], "game": i, "source": "hand.pgn"} for i, (k, f) in enumerate(HAND_MADE.items())]
    recs += _random_positions(40, 1)
    (ds / "positions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (ds / "manifest.json").write_text(json.dumps({"made_by": "positions from-pgn", "positions": len(recs)}))
    store = extract_activations(net, ds, d / "acts", ["block0"], device="cpu", threads=1)
    return ds, store, net


@dataclass
class FixedScores:
    """A scorer with given scores (stands in for a direction)."""

    values: np.ndarray
    name: str = "fixed"
    kind: str = "concept"
    tap: str = "block0"
    seed: int | None = None

    @property
    def sha256(self):
        return hashlib.sha256(self.values.tobytes()).hexdigest()

    def scores(self, store, dataset):
        return self.values


class _Eval:
    def __init__(self, board: chess.Board, move: chess.Move):
        self.moves = list(board.legal_moves)
        self.policy = np.full(len(self.moves), 0.5 / max(1, len(self.moves) - 1))
        self.policy[self.moves.index(move)] = 0.5
        self._move = move

    def best_move(self):
        return self._move


class ScriptedEngine:
    """A 'network' that plays given moves (first legal move elsewhere)."""

    def __init__(self, net_path: Path, plays: dict[str, str]):
        from conceptchess.networks import open_network

        self.network = open_network(net_path)
        self.plays = plays

    def evaluate(self, hist, boards):
        out = []
        for b in boards:
            uci = self.plays.get(b.fen())
            out.append(_Eval(b, chess.Move.from_uci(uci) if uci else next(iter(b.legal_moves))))
        return out


def test_direction_scores_are_standardised_dot_products(corpus, tmp_path):
    ds, store, _ = corpus
    x = np.asarray(store["block0"], dtype=np.float64).reshape(len(store), -1)
    rng = np.random.default_rng(0)
    v = rng.standard_normal(x.shape[1])
    v[rng.random(x.shape[1]) < 0.9] = 0
    mean, scale = x.mean(0), x.std(0) + 1.0
    np.save(tmp_path / "v.npy", v)
    np.save(tmp_path / "m.npy", mean)
    np.save(tmp_path / "s.npy", scale)
    d = Direction.load(tmp_path / "v.npy", "block0", mean=tmp_path / "m.npy", scale=tmp_path / "s.npy")
    assert d.name == "v" and d.nonzeros == np.count_nonzero(v)
    np.testing.assert_allclose(d.scores(store), ((x - mean) / scale) @ v, rtol=1e-4, atol=1e-3)
    np.savez(tmp_path / "p.npz", coef=v, mean=mean, std=scale)
    np.testing.assert_allclose(Direction.load(tmp_path / "p.npz", "block0").scores(store), d.scores(store), rtol=1e-5, atol=1e-4)
    with pytest.raises(ConceptChessError, match=r"has 5 values; tap block0 .* = 2048 per position"):
        Direction("d", "block0", np.ones(5)).scores(store)
    with pytest.raises(ConceptChessError, match="tap 'block3' is not in this store"):
        Direction("d", "block3", np.ones(5)).scores(store)
    with pytest.raises(ConceptChessError, match="not all zeros"):
        Direction("d", "block0", np.zeros(5))


def test_random_control_matches_sparsity():
    v = np.zeros(100, np.float32)
    v[[3, 50, 97]] = [1.0, -2.0, 0.5]
    d = Direction("c", "block0", v, mean=np.ones(100), scale=2 * np.ones(100))
    r = d.random_control(7)
    assert r.kind == "control-random" and r.seed == 7 and r.nonzeros == 3
    assert np.linalg.norm(r.vector) == pytest.approx(np.linalg.norm(v))
    assert np.array_equal(r.mean, d.mean) and np.array_equal(r.scale, d.scale) and r.sha256 != d.sha256
    np.testing.assert_array_equal(d.random_control(7).vector, r.vector)
    assert not np.array_equal(d.random_control(8).vector, r.vector)


def test_prototypes_are_the_top_two_and_a_half_percent():
    assert prototype_count(1000) == 25 and prototype_count(44) == 2 and prototype_count(10) == 1
    s = np.array([0.5, 3.0, 1.0, 3.0, np.nan, 2.0])
    order = rank_positions(s, seed=0)
    assert set(order[:2]) == {1, 3} and list(order[2:5]) == [5, 2, 0] and order[-1] == 4
    assert list(rank_positions(s, seed=0)) == list(order)


def test_mine_turns_unique_network_moves_into_puzzles(corpus):
    stockfish_or_skip()
    ds, store, net = corpus
    scores = np.zeros(len(store))
    scores[:4] = [40, 30, 20, 10]  # one, fork, mates, two
    plays = {ONE_WINNER: "f3d4", FORK: "b5a7", MATES: "b1b8", TWO_WINNERS: "f3d4"}
    res = mine(FixedScores(scores), store, ds, top=4 / 44, settings=S, workers=2, weak_network=False,
               engine=ScriptedEngine(net, plays))
    assert (res.positions, res.prototypes, res.candidates) == (44, 4, 4)
    assert [p.source_position for p in res.puzzles] == ["one", "mates"]
    reasons = {r.position: r.reason for r in res.rejected}
    assert reasons["fork"].startswith("network plays Nxa7") and reasons["two"].startswith("no unique move")
    one, mates = res.puzzles
    assert one.solution[0] == "f3d4" and one.concept_rank == 1 and one.concept_score == 40 and one.kind == "concept"
    assert mates.solution == ["b1b8"] and mates.accepted_moves == [["a1a8"]] and mates.network_move == "b1b8"
    assert mates.network_policy == pytest.approx(0.5) and "mateIn1" in mates.themes
    for p in res.puzzles:
        assert p.verified and p.network_sha256 == store.manifest["net_sha256"] and p.checkpoint and p.tap == "block0"
        assert p.verify_settings["nodes"] == NODES and p.verify_settings["threads"] == 1 and p.verify_engine.startswith("Stockfish")
        assert p.source == "game" and p.source_game == "hand.pgn#game" + str(list(HAND_MADE).index(p.source_position))
        assert 0 <= p.difficulty <= 1 and p.generator_version.startswith("conceptchess")
        assert p.dataset_sha256 == store.manifest["dataset_sha256"] and len(p.id) == 10
    again = mine(FixedScores(scores), store, ds, top=4 / 44, settings=S, workers=1, weak_network=False,
                 engine=ScriptedEngine(net, plays))
    assert [(p.id, p.solution) for p in again.puzzles] == [(p.id, p.solution) for p in res.puzzles]


def test_mine_many_stores_concepts_and_controls(corpus, tmp_path):
    stockfish_or_skip()
    ds, store, net = corpus
    db = sqlite_db(tmp_path)
    scores = np.zeros(len(store))
    scores[:3] = [3, 2, 1]
    concept = FixedScores(scores, "fixed-a")
    same_positions = FixedScores(scores * 2, "fixed-b")  # finds the same puzzles: kept once
    human = HumanConcept("us_can_capture_queen")
    results = mine_many(db, "mined", [concept, same_positions, human], store, ds, network=net, top=3 / 44, settings=S,
                        workers=2, weak_network=True)
    assert len(results) == 3
    with db.session() as s:
        puzzles = collection_puzzles(s, "mined")
    assert results[1].duplicates == len(results[1].rejected) - sum(r.reason.startswith(("network", "no unique", "recapture", "game"))
                                                                      for r in results[1].rejected)
    assert len({(p.fen, tuple(p.solution)) for p in puzzles}) == len(puzzles)
    assert {p.kind for p in puzzles} <= {"concept", "control-human"}
    for p in puzzles:
        assert p.verified and p.network_move == p.solution[0]
        assert p.difficulty_detail.get("weak_network") and p.difficulty_detail["weak_prob"] is not None


def test_cli_mine(corpus, tmp_path):
    stockfish_or_skip()
    ds, store, net = corpus
    v = np.random.default_rng(3).standard_normal(2048)
    np.save(tmp_path / "dir.npy", v)
    env = {"CONCEPTCHESS_DB": f"sqlite:///{tmp_path / 'cli.sqlite'}"}
    r = invoke("puzzles", "mine", "--direction", str(tmp_path / "dir.npy"), "--tap", "block0", "--activations", str(store.path),
                "--dataset", str(ds), "--collection", "c", "--top", "0.1", "--nodes", str(NODES), "--control", "random",
                "--network", str(net), env=env)
    assert r.exit_code == 0, r.stderr
    assert "dir" in r.stdout and "random-dir-seed0" in r.stdout
    r = invoke("puzzles", "mine", "--direction", str(tmp_path / "dir.npy"), "--tap", "block0", "--activations", str(store.path),
                "--dataset", str(ds), "--collection", "c", "--control", "bogus", env=env)
    assert r.exit_code == 2
