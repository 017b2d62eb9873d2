"""Mining: concept scores over an activation folder, the top 2.5% as prototypes, verified puzzles;
trivial ones filtered and every rejection counted by reason, concepts and controls side by side."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import chess
import numpy as np
import pytest

from conceptchess.directions import ConceptDirection
from conceptchess.errors import ConceptChessError
from conceptchess.puzzles.acceptance import MineResult, acceptance_report
from conceptchess.puzzles.filters import (
    ALREADY_DECIDED,
    CHECK_EVASION,
    DUPLICATE_POSITION,
    DUPLICATE_PUZZLE,
    RECAPTURE,
    REJECTION_REASONS,
    TOO_EASY,
    WEAK_PLAYS_IT,
    MineFilters,
    Rejection,
)
from conceptchess.puzzles.mine import Direction, HumanConcept, mine, mine_many, prototype_count, puzzle_kind, rank_positions
from conceptchess.puzzles.records import collection_puzzles
from conceptchess.puzzles.verify import NETWORK_DISAGREES, NOT_UNIQUE, NOT_WINNING, VerifySettings
from tests.helpers import (
    EQUAL_ONLY_MOVES,
    FORK,
    MATES,
    NODES,
    ONE_WINNER,
    ONE_WINNER_BLACK,
    TWO_WINNERS,
    WON_BEFORE,
    cli,
    lichess_positions,
    network_or_skip,
    sqlite_db,
    stockfish_or_skip,
)

S = VerifySettings(nodes=NODES)
EVASION = "6k1/5ppp/8/8/8/7P/5PP1/r5K1 w - - 0 1"  # in check; Kh2 is the only legal move
HAND_MADE = {"one": ONE_WINNER, "fork": FORK, "mates": MATES, "two": TWO_WINNERS, "one-black": ONE_WINNER_BLACK,
             "evasion": EVASION}


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
    """A 44-position dataset (6 hand-made positions first, then random games) and its block0 activation folder."""
    from conceptchess.activations import extract_activations

    net = network_or_skip()
    d = tmp_path_factory.mktemp("corpus")
    ds = d / "positions"
    ds.mkdir()
    recs = [{"id": k, "fen": f, "moves": [], "game": i, "source": "hand.pgn"} for i, (k, f) in enumerate(HAND_MADE.items())]
    recs += _random_positions(44 - len(recs), 1)
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
    d = ConceptDirection.load(tmp_path / "v.npy", "block0", mean=tmp_path / "m.npy", scale=tmp_path / "s.npy")
    assert d.name == "v" and d.nonzeros == np.count_nonzero(v) and d.kind == "probe" and puzzle_kind(d) == "concept"
    np.testing.assert_allclose(d.scores(store), ((x - mean) / scale) @ v, rtol=1e-4, atol=1e-3)
    np.savez(tmp_path / "p.npz", coef=v, mean=mean, std=scale)
    np.testing.assert_allclose(ConceptDirection.load(tmp_path / "p.npz", "block0").scores(store), d.scores(store), rtol=1e-5, atol=1e-4)
    with pytest.raises(ConceptChessError, match=rf"has 5 values; tap block0 .* = {x.shape[1]} per position"):
        ConceptDirection("d", "block0", np.ones(5)).scores(store)
    with pytest.raises(ConceptChessError, match="tap 'block3' is not in this store"):
        ConceptDirection("d", "block3", np.ones(5)).scores(store)
    with pytest.raises(ConceptChessError, match="not all zeros"):
        ConceptDirection("d", "block0", np.zeros(5))
    with pytest.raises(ConceptChessError, match="reads mean-pooled activations; .* is full-pooled"):
        ConceptDirection("d", "block0", v, pooling="mean").scores(store)
    with pytest.raises(ConceptChessError, match="reads network 000000000000…; the activations of .* are network"):
        ConceptDirection("d", "block0", v, network_sha256="0" * 64).scores(store)
    same = ConceptDirection("d", "block0", v, mean, scale, pooling="full", network_sha256=store.manifest["net_sha256"])
    np.testing.assert_array_equal(same.scores(store), d.scores(store))
    assert Direction is ConceptDirection  # the name older callers use


def test_random_control_matches_sparsity():
    v = np.zeros(100, np.float32)
    v[[3, 50, 97]] = [1.0, -2.0, 0.5]
    d = ConceptDirection("c", "block0", v, mean=np.ones(100), scale=2 * np.ones(100), pooling="mean")
    r = d.random_control(7)
    assert r.kind == "random-control" and puzzle_kind(r) == "control-random" and r.seed == 7 and r.nonzeros == 3
    assert r.name == "random-c-seed7" and r.pooling == "mean" and r.provenance == {"control_of": "c", "control_of_sha256": d.sha256}
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


def _accounted(res: MineResult) -> None:
    """Every prototype is a puzzle, a rejection with a known reason, or left unexamined."""
    assert res.prototypes == len(res.puzzles) + len(res.rejected) + res.unchecked
    assert all(r.category in REJECTION_REASONS and r.reason for r in res.rejected)
    assert sum(res.counts().values()) == len(res.rejected) and list(res.counts()) == list(REJECTION_REASONS)


def test_mine_turns_unique_network_moves_into_puzzles(corpus):
    stockfish_or_skip()
    ds, store, net = corpus
    scores = np.zeros(len(store))
    scores[:4] = [40, 30, 20, 10]  # one, fork, mates, two
    plays = {ONE_WINNER: "f3d4", FORK: "b5a7", MATES: "b1b8", TWO_WINNERS: "f3d4"}
    res = mine(FixedScores(scores), store, ds, top=4 / 44, settings=S, workers=2, weak_network=True,
               engine=ScriptedEngine(net, plays))
    assert (res.positions, res.prototypes, res.candidates) == (44, 4, 4)
    assert [p.source_position for p in res.puzzles] == ["one", "mates"]
    reasons = {r.position: r for r in res.rejected}
    assert reasons["fork"].reason.startswith("network plays Nxa7") and reasons["fork"].category == NETWORK_DISAGREES
    assert reasons["two"].reason.startswith("no unique move") and reasons["two"].category == NOT_UNIQUE
    _accounted(res)
    one, mates = res.puzzles
    assert one.solution[0] == "f3d4" and one.concept_rank == 1 and one.concept_score == 40 and one.kind == "concept"
    assert mates.solution == ("b1b8",) and mates.accepted_moves == (("a1a8",),) and mates.network_move == "b1b8"
    assert mates.network_policy == pytest.approx(0.5) and "mateIn1" in mates.themes
    for p in res.puzzles:
        assert p.verified and p.network_sha256 == store.manifest["net_sha256"] and p.checkpoint and p.tap == "block0"
        assert p.verify_settings["nodes"] == NODES and p.verify_settings["threads"] == 1 and p.verify_engine.startswith("Stockfish")
        assert p.verify_settings["min_advantage_cp"] == 200
        assert p.source == "game" and p.source_game == "hand.pgn#game" + str(list(HAND_MADE).index(p.source_position))
        assert 0.1 <= p.difficulty <= 1 and p.generator_version.startswith("conceptchess")
        assert p.dataset_sha256 == store.manifest["dataset_sha256"] and len(p.id) == 10
        assert p.filters["settings"] == MineFilters().as_dict() and p.filters["values"]["weak_prob"] < 0.5
        assert p.filters["values"]["difficulty"] == pytest.approx(p.difficulty, abs=1e-4) and p.filters["values"]["weak_network"]
        assert p.filters["values"]["decided"]["decided"] is False and p.filters["values"]["decided"]["before_cp"] is None  # no history
    again = mine(FixedScores(scores), store, ds, top=4 / 44, settings=S, workers=1, weak_network=True,
                 engine=ScriptedEngine(net, plays))
    assert [(p.id, p.solution) for p in again.puzzles] == [(p.id, p.solution) for p in res.puzzles]


def test_trivial_puzzles_are_filtered_by_default(corpus):
    stockfish_or_skip()
    ds, store, net = corpus
    scores = np.zeros(len(store))
    scores[[0, 5]] = [2, 1]  # one, evasion
    plays = {ONE_WINNER: "f3d4", EVASION: "g1h2"}
    kw = dict(top=2 / 44, settings=S, workers=1, engine=ScriptedEngine(net, plays))
    # no weak network: Nxd4 is seen from depth 1, a difficulty of (0.35 · 1/20) / 0.5 = 0.035 < 0.1
    res = mine(FixedScores(scores), store, ds, weak_network=False, **kw)
    assert res.puzzles == [] and res.candidates == 1 and res.counts()[TOO_EASY] == 1 and res.counts()[CHECK_EVASION] == 1
    assert {r.position: r.reason for r in res.rejected} == {
        "one": "too easy: difficulty 0.035 < 0.1", "evasion": "check evasion: Kh2 with 1 legal move(s) (≤ 3)"}
    _accounted(res)
    # the network itself as the "weak" one: it plays Nxd4 with p = 0.5 (scripted)
    res = mine(FixedScores(scores), store, ds, weak_network=net, **kw)
    assert res.candidates == 0 and res.counts()[WEAK_PLAYS_IT] == 1 and res.counts()[CHECK_EVASION] == 1
    assert next(r.reason for r in res.rejected if r.position == "one").startswith("weak network plays it: ")
    # every filter off: the verifier alone decides (the evasion is no puzzle: one legal move)
    res = mine(FixedScores(scores), store, ds, weak_network=False, filters=MineFilters.off(), **kw)
    assert [p.source_position for p in res.puzzles] == ["one"] and res.counts()["only one legal move"] == 1
    assert res.puzzles[0].filters["settings"] == MineFilters.off().as_dict() and res.puzzles[0].difficulty < 0.1
    assert res.settings["filters"] == MineFilters.off().as_dict()


@pytest.fixture(scope="module")
def game_positions(tmp_path_factory):
    """The real-game positions of EQUAL_ONLY_MOVES and WON_BEFORE (their games' moves as history), a
    block0 store, and what each game played next."""
    from conceptchess.activations import extract_activations

    net = network_or_skip()
    wanted = [(site, ply) for site, ply, *_ in EQUAL_ONLY_MOVES] + [WON_BEFORE[:2]]
    recs = lichess_positions(wanted)
    d = tmp_path_factory.mktemp("games")
    ds = d / "positions"
    ds.mkdir()
    (ds / "positions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (ds / "manifest.json").write_text(json.dumps({"made_by": "positions from-pgn", "positions": len(recs)}))
    store = extract_activations(net, ds, d / "acts", ["block0"], device="cpu", threads=1)
    plays = {fen: move for (_, _, fen, move, *_) in EQUAL_ONLY_MOVES + [WON_BEFORE]}
    return ds, store, net, plays


def test_real_game_positions_are_no_puzzles_by_default(game_positions):
    """The issue's three real-game only moves (+0.26, +1.37, −0.15) and an only move in a game already
    won: recaptures all; with the recapture filter off, not winning enough and already decided; with
    no advantage floor and no filters, puzzles again (150k nodes, where they were accepted before)."""
    stockfish_or_skip()
    ds, store, net, plays = game_positions
    scores = FixedScores(np.array([4.0, 3.0, 2.0, 1.0]))
    kw = dict(top=1.0, workers=2, weak_network=False, engine=ScriptedEngine(net, plays))
    floor = VerifySettings(nodes=150_000)
    res = mine(scores, store, ds, settings=floor, **kw)
    assert res.puzzles == [] and res.counts()[RECAPTURE] == 4 and res.candidates == 0
    res = mine(scores, store, ds, settings=floor, filters=MineFilters(recaptures=False), **kw)
    assert res.puzzles == [] and res.counts()[NOT_WINNING] == 3 and res.counts()[ALREADY_DECIDED] == 1
    by_id = {r.position: r.reason for r in res.rejected}
    assert [by_id[f"g{k}"].split(" < ")[0] for k in range(3)] == [
        "not winning enough: Qxd3 +0.26", "not winning enough: dxe5 +1.37", "not winning enough: fxe3 -0.15"]
    assert by_id["g3"].startswith("already decided: won before Rxf3+")
    _accounted(res)
    res = mine(scores, store, ds, settings=VerifySettings(nodes=150_000, min_advantage_cp=0), filters=MineFilters.off(), **kw)
    assert [p.solution[0] for p in res.puzzles] == ["d1d3", "d4e5", "f2e3", "g4f3"]
    for p in res.puzzles:
        assert p.verify_settings["min_advantage_cp"] == 0 and p.filters["values"]["recapture"] is True
        assert p.leading_moves and p.filters["values"]["decided"] is None  # the filter was off


def test_mine_many_stores_concepts_and_controls(corpus, tmp_path):
    stockfish_or_skip()
    ds, store, net = corpus
    db = sqlite_db(tmp_path)
    scores = np.zeros(len(store))
    scores[[0, 1, 2, 3, 5, 6, 7, 8]] = np.arange(8, 0, -1)  # one, fork, mates, two, evasion and three random games
    concept = FixedScores(scores, "fixed-a")
    same_positions = FixedScores(scores * 2, "fixed-b")  # finds the same puzzles: kept once
    # every position where the side to move can take the queen is a prototype of the control: one (the
    # concept's puzzle already), two (two winners) and one-black (a puzzle the concept did not see)
    human = HumanConcept("us_can_capture_queen")
    assert np.sum(human.scores(store, ds) > 0) < 8
    results = mine_many(db, "mined", [concept, same_positions, human], store, ds, network=net, top=8 / 44, settings=S,
                        workers=2, weak_network=True)
    assert [r.kind for r in results] == ["concept", "concept", "control-human"]
    with db.session() as s:
        puzzles = collection_puzzles(s, "mined")
    kinds = {k: sum(p.kind == k for p in puzzles) for k in ("concept", "control-human")}
    assert kinds["concept"] > 0 and kinds["control-human"] > 0, kinds
    assert {p.source_position for p in puzzles if p.kind == "control-human"} >= {"one-black"}
    for r in results:
        _accounted(r)
        assert r.duplicates == r.counts()[DUPLICATE_PUZZLE]
    assert results[1].puzzles == [] and results[1].duplicates == len(results[0].puzzles)
    assert results[2].counts()[DUPLICATE_PUZZLE] >= 1  # one: it stays with the concept
    assert len({(p.fen, tuple(p.solution)) for p in puzzles}) == len(puzzles)
    for p in puzzles:
        assert p.verified and p.network_move == p.solution[0]
        assert p.difficulty_detail.get("weak_network") and p.difficulty_detail["weak_prob"] is not None
        assert p.filters["values"]["weak_prob"] < 0.5 <= 1 and p.difficulty >= 0.1
    report = acceptance_report(results)
    assert report.columns == [("fixed-a", "concept"), ("fixed-b", "concept"), ("us_can_capture_queen", "control-human")]
    rows = dict(report.rows)
    assert rows["puzzles"] == [str(len(r.puzzles)) for r in results] and rows["prototypes"] == ["8"] * 3
    assert len(report.notes) == 1 and "too few to compare" in report.notes[0]  # fewer than 5 control puzzles


def test_acceptance_report_sets_concepts_and_controls_side_by_side():
    def result(name, kind, puzzles, reasons, unchecked=0):
        rejected = [Rejection(f"p{k}", k, f"{c}: …", c) for k, c in enumerate(reasons)]
        return MineResult(name, kind, puzzles=[object()] * puzzles, rejected=rejected, positions=1000,
                          prototypes=puzzles + len(rejected) + unchecked, unchecked=unchecked)

    fork = result("fork", "concept", 6, [RECAPTURE] * 3 + [NOT_UNIQUE] * 10 + [TOO_EASY], unchecked=5)
    rnd = result("random-fork-seed0", "control-random", 2, [RECAPTURE] * 20 + [DUPLICATE_POSITION])
    report = acceptance_report([fork, rnd])
    rows = dict(report.rows)
    assert [label for label, _ in report.rows][2:-3] == list(REJECTION_REASONS)
    assert rows[RECAPTURE] == ["3", "20"] and rows[NOT_UNIQUE] == ["10", "0"] and rows["not examined (max reached)"] == ["5", "0"]
    assert rows["acceptance"] == ["6/20 = 30.0%", "2/23 = 8.7%"]
    assert report.notes == ["control random-fork-seed0: 2 puzzle(s) of 23 examined prototypes, fewer than 5: too few to compare "
                            "with the concepts"]
    assert acceptance_report([fork], min_control=5).notes == ["no control was mined: the concepts' acceptance has nothing to compare with"]
    assert acceptance_report([fork, result("r", "control-random", 5, [])]).notes == []
    text = report.text()
    assert "random-fork-seed0" in text and "(control-random)" in text and "6/20 = 30.0%" in text and report.notes[0] in text
    assert fork.summary() == ("fork (concept): 1000 positions → 25 prototypes → 6 puzzles, 6 of 20 examined (30.0%); rejected: "
                              "recapture 3, not unique 10, too easy 1; 5 not examined (max_puzzles reached)")
    with pytest.raises(ValueError, match="unknown rejection category"):
        Rejection("p", 1, "why", "")


def test_cli_mine(corpus, tmp_path):
    stockfish_or_skip()
    ds, store, net = corpus
    v = np.random.default_rng(3).standard_normal(np.asarray(store["block0"][:1]).size)  # filters × 64 values
    np.save(tmp_path / "dir.npy", v)
    env = {"CONCEPTCHESS_DB": f"sqlite:///{tmp_path / 'cli.sqlite'}"}
    args = ["puzzles", "mine", "--direction", str(tmp_path / "dir.npy"), "--tap", "block0", "--activations", str(store.path),
            "--dataset", str(ds), "--top", "0.1", "--nodes", str(NODES), "--control", "random", "--network", str(net)]
    r = cli(*args, "--collection", "c", env=env)
    assert r.exit_code == 0, r.stderr
    assert "dir" in r.stdout and "random-dir-seed0" in r.stdout and "(control-random)" in r.stdout
    for label in ("prototypes", *REJECTION_REASONS, "puzzles", "acceptance"):
        assert label in r.stdout, label
    assert "too few to compare" in r.stdout and "solver kept at +2.00" in r.stdout
    r = cli(*args, "--collection", "off", "--min-advantage", "0", "--keep-recaptures", "--check-evasion-max", "0",
            "--weak-max-prob", "0", "--min-difficulty", "0", "--decided-cp", "0", env=env)
    assert r.exit_code == 0, r.stderr
    assert "no advantage floor" in r.stdout
    db = sqlite_db(tmp_path, "cli.sqlite")
    with db.session() as s:
        for p in collection_puzzles(s, "off"):
            assert p.verify_settings["min_advantage_cp"] == 0 and p.filters["settings"] == MineFilters.off().as_dict()
    r = cli("puzzles", "mine", "--direction", str(tmp_path / "dir.npy"), "--tap", "block0", "--activations", str(store.path),
            "--dataset", str(ds), "--collection", "c", "--control", "bogus", env=env)
    assert r.exit_code == 2


def _stored_probe(db, store, vector_path: Path, concept: str, tap: str) -> int:
    """A probe run of one concept at one tap of the store's network, stored as a sweep stores it; its id."""
    from conceptchess.store.models import Dataset, NetworkRow
    from conceptchess.store.probes import ProbeResult, ProbeRun, ProbeRunNetwork

    with db.begin() as s:
        ds = Dataset(sha256=store.manifest["dataset_sha256"], path="positions")
        net = NetworkRow(sha256=store.manifest["net_sha256"], kind="lc0-weights", path=store.manifest.get("net_path"))
        s.add_all([ds, net])
        s.flush()
        run = ProbeRun(key="ab" * 32, dataset_id=ds.id, seed=0, settings={"pool": store.pool}, versions={}, status="complete")
        s.add(run)
        s.flush()
        s.add(ProbeRunNetwork(run_id=run.id, network_id=net.id, position=0, role="probed", label="cc-6x32 final"))
        s.add(ProbeResult(run_id=run.id, network_id=net.id, tap=tap, concept=concept, metric="r2", status="ok", score=0.9,
                          intercept=0.25, vector_path=str(vector_path), nonzero=2048, features=2048))
        s.add(ProbeResult(run_id=run.id, network_id=net.id, tap="input", concept=concept, metric="r2", status="ok", score=0.1,
                          vector_path=str(vector_path)))
        return run.id


def test_cli_mine_a_stored_probe_gives_the_puzzles_of_its_vector_file(corpus, tmp_path):
    """``--direction RUN:CONCEPT:TAP`` mines the same puzzles as the probe's .npy given with ``--tap``."""
    from dataclasses import replace

    stockfish_or_skip()
    ds, store, net = corpus
    x = np.asarray(store["block0"], dtype=np.float64).reshape(len(store), -1)
    target = np.zeros(len(store))
    target[:6] = np.arange(6, 0, -1)  # the hand-made positions first
    v = np.linalg.lstsq(x, target, rcond=None)[0]
    np.save(tmp_path / "fork.npy", v)
    db = sqlite_db(tmp_path, "probes.sqlite")
    run = _stored_probe(db, store, tmp_path / "fork.npy", "us_forks_available", "block0")
    common = ["--activations", str(store.path), "--dataset", str(ds), "--top", "0.13", "--nodes", str(NODES), "--network", str(net),
              "--collection", "c"]
    by_ref = cli("puzzles", "mine", "--direction", f"{run}:us_forks_available:block0", *common, "--db", db.url)
    assert by_ref.exit_code == 0, by_ref.stderr
    by_file = cli("puzzles", "mine", "--direction", str(tmp_path / "fork.npy"), "--tap", "block0", *common,
                  "--db", sqlite_db(tmp_path, "files.sqlite").url)
    assert by_file.exit_code == 0, by_file.stderr

    def puzzles(name: str):
        with sqlite_db(tmp_path, name).session() as s:
            return collection_puzzles(s, "c")

    def same(p):  # the concept's name and the times aside
        return replace(p, concept=None, verified_at=None, created_at=None)

    got, want = puzzles("probes.sqlite"), puzzles("files.sqlite")
    assert got and [same(p) for p in got] == [same(p) for p in want]
    assert {p.concept for p in got} == {"us_forks_available-probe-block0"} and {p.concept for p in want} == {"fork"}
    assert [p.concept_rank for p in got] == sorted(p.concept_rank for p in got) and all(p.tap == "block0" for p in got)


@pytest.mark.parametrize("direction, extra, message", [
    ("9:us_forks_available:block0", [], "error: no probe run '9' (runs: 1)"),
    ("1:us_fork_available:block0", [], "error: probe run 1 has no probe of concept 'us_fork_available' (closest: us_forks_available; "
                                       "concepts: us_forks_available)"),
    ("1:us_forks_available:block9", [], "error: probe run 1 probed us_forks_available at taps block0, input, not 'block9'"),
    ("1:us_forks_available:block0", ["--tap", "block3"], "error: --tap block3 contradicts --direction 1:us_forks_available:block0, "
                                                        "a probe at block0"),
    ("1:us_forks_available:block0", ["--mean", "m.npy"], "error: --mean cannot go with a stored probe "
                                                        "(--direction 1:us_forks_available:block0): it carries its own standardisation"),
    ("nothing.npy", [], "error: --direction nothing.npy: no such file, and no stored probe RUN:CONCEPT:TAP"),
])
def test_cli_mine_refuses_unknown_or_contradicting_directions(corpus, tmp_path, direction, extra, message):
    ds, store, _ = corpus
    np.save(tmp_path / "v.npy", np.ones(np.asarray(store["block0"][:1]).size))
    db = sqlite_db(tmp_path)
    _stored_probe(db, store, tmp_path / "v.npy", "us_forks_available", "block0")
    r = cli("puzzles", "mine", "--direction", direction, *extra, "--activations", str(store.path), "--dataset", str(ds),
            "--collection", "c", "--db", db.url)
    assert r.exit_code == 2 and r.stderr.strip() == message
    with db.session() as s:
        with pytest.raises(ConceptChessError, match="no collection"):
            collection_puzzles(s, "c")
