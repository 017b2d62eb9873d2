"""Puzzles of a discovered concept (``puzzles mine --direction discovered:ID``) on a small real discovery run:
the concept's provenance in the database, the record and the PGN tags, none of it in a blinded export;
its random control; a study session on the collection; bad input refused before anything is written."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sqlalchemy import func, select

from conceptchess.activations import ActivationFiles
from conceptchess.directions import ConceptDirection
from conceptchess.export import DISCOVERY_TAGS, PROVENANCE_TAGS, discovery_tags, export_collection, read_pgn_puzzles
from conceptchess.puzzles.discovered import DiscoveryProvenance, discovered_direction, random_control
from conceptchess.puzzles.records import blind_order, collection_puzzles
from conceptchess.store import connect
from conceptchess.store.discovery import DiscoveredConcept, DiscoveryRun, NoveltyScore, TeachingResult
from conceptchess.store.puzzles import Collection, EvalSession, Puzzle
from tests.helpers import LICHESS_GAMES, NODES, cli, data_file, stockfish_or_skip, tiny_net

STUDENT = "maia-1100-step400.pb.gz"


def _run(*args):
    r = cli(*args)
    assert r.exit_code == 0, (args, r.output)
    return r


@pytest.fixture(scope="module")
def discovered(maia1100, tmp_path_factory):
    """A discovery run of maia-1100 at block5 (mean-pooled; three roots, an eraser of two human concepts), one
    concept with two teaching results and a novelty score stored by hand, and the positions to mine: the 40
    lowest-rated shared Lichess puzzles after the opponent's move, with their block5 activations."""
    d = tmp_path_factory.mktemp("discovered")
    net, db = maia1100, d / "cc.sqlite"
    rows = sorted(csv.DictReader(open(data_file("puzzles", "lichess_puzzles_1499.csv"))), key=lambda r: int(r["Rating"]))[:40]
    (d / "puzzles").mkdir()
    (d / "puzzles" / "positions.jsonl").write_text("".join(json.dumps(
        {"id": r["PuzzleId"], "fen": r["FEN"], "moves": r["Moves"].split()[:1], "site": r["GameUrl"]}) + "\n" for r in rows))
    (d / "puzzles" / "manifest.json").write_text(json.dumps({"made_by": "test: Lichess puzzle positions", "positions": len(rows)}))
    pgn = data_file("pgn", LICHESS_GAMES)
    _run("positions", "from-pgn", pgn, "-o", d / "human", "--skip-plies", 8, "--every", 4, "--max-positions", 300)
    _run("positions", "from-pgn", pgn, "-o", d / "roots", "--skip-plies", 14, "--every", 37, "--max-positions", 3)
    _run("positions", "rollouts", "--net", net, "--input", d / "roots", "--nodes", 64, "--depth", 3, "--lines-per-ply", 3,
         "--extend-nodes", 8, "-o", d / "rollouts", "--threads", 1)
    for name in ("rollouts", "human", "puzzles"):
        _run("activations", "extract", "--net", net, "--positions", d / name, "--taps", "block5", "--pool", "mean", "-o", d / f"act-{name}",
             "--threads", 1)
    _run("discover", "erase", "--activations", d / "act-human", "--tap", "block5", "--concepts", "in_check,material_diff",
         "--no-top-move-check", "-o", d / "eraser.npz", "--db", db, "--threads", 1)
    _run("discover", "run", "--net", net, "--rollouts", d / "rollouts", "--activations", d / "act-rollouts", "--tap", "block5",
         "--eraser", d / "eraser.npz", "--results", d / "results", "--db", db)
    database = connect(str(db))
    with database.begin() as s:
        concepts = s.scalars(select(DiscoveredConcept).order_by(DiscoveredConcept.id)).all()
        erased = next(c for c in concepts if c.variant == "erased" and c.vector_path)
        failed = next((c.id for c in concepts if not c.vector_path), None)
        run = s.get(DiscoveryRun, erased.run_id)
        common = dict(concept_id=erased.id, teacher_id=run.network_id, prototypes_dataset_id=run.dataset_id, prototype_roots=["r"],
                      settings={}, versions={}, status="taught", prototypes=24)
        s.add_all([  # the latest of role "concept" is the one its puzzles carry
            TeachingResult(key="a", role="concept", student="old.pb.gz", difference=-0.5, interval_low=-0.6, interval_high=-0.4,
                           teachable=False, **common),
            TeachingResult(key="b", role="concept", student=STUDENT, difference=0.125, interval_low=0.03, interval_high=0.2,
                           teachable=True, **common),
            TeachingResult(key="c", role="random-control", student=STUDENT, difference=0.0, teachable=False, **common),
            NoveltyScore(concept_id=erased.id, human_dataset_id=run.dataset_id, machine_dataset_id=run.dataset_id, novel=False,
                         scores={"1": 0.021, "10": 0.012, "5": -0.004}),
        ])
        s.flush()
        teaching = s.scalars(select(TeachingResult.id).where(TeachingResult.key == "b")).one()
        novelty = s.scalars(select(NoveltyScore.id)).one()
        expected = {"role": "concept", "run": run.id, "concept": erased.id, "root": erased.root, "tap": "block5", "variant": "erased",
                    "status": erased.status, "heldout_same_root": erased.heldout_same_root,
                    "heldout_other_roots": erased.heldout_other_roots, "swapped_control": erased.swapped_control,
                    "teaching": {"result": teaching, "status": "taught", "teachable": True, "difference": 0.125, "interval": [0.03, 0.2],
                                 "student": STUDENT},
                    "novelty": {"result": novelty, "novel": False, "scores": {"1": 0.021, "10": 0.012, "5": -0.004}},
                    "seed": None}
    return {"dir": d, "db": database, "net": net, "concept": erased.id, "failed": failed, "expected": expected,
            "vector": erased.vector_path}


def _mine(s, *extra, collection="study", activations=None):
    d = s["dir"]
    return cli("puzzles", "mine", "--activations", activations or d / "act-puzzles", "--dataset", d / "puzzles", "-c", collection,
               "--top", "0.25", "--nodes", NODES, "--workers", 1, "--min-difficulty", 0, "--db", s["db"].url, *extra)


def _rows(db) -> tuple[int, int]:
    with db.session() as s:
        return s.scalar(select(func.count(Puzzle.id))), s.scalar(select(func.count(Collection.id)))


def test_the_random_control_of_a_pulled_back_concept_is_dense(discovered):
    """An erased-space concept read on raw activations (w = u − Rᵀ·Lᵀ·u) is dense; its control of matched
    sparsity is a dense Gaussian direction of the same norm, marked as that concept's control."""
    with discovered["db"].session() as s:
        d = discovered_direction(s, discovered["concept"], ActivationFiles(discovered["dir"] / "act-puzzles"))
    stored = ConceptDirection.load(discovered["vector"])
    assert d.name == f"discovered-{discovered['concept']}" and np.array_equal(d.vector, stored.vector) and d.sha256 == stored.sha256
    assert d.kind == "discovered" and d.nonzeros == d.vector.size == 64 and d.mean is None and d.scale is None
    c = random_control(d, 3)
    assert c.kind == "random-control" and c.nonzeros == 64 and np.linalg.norm(c.vector) == pytest.approx(np.linalg.norm(d.vector))
    assert c.provenance["discovery"] == {**discovered["expected"], "role": "random-control", "seed": 3}
    assert DiscoveryProvenance.of(d).as_dict() == discovered["expected"]


def test_mine_a_discovered_concept(discovered, tmp_path):
    stockfish_or_skip()
    db, expected, cid = discovered["db"], discovered["expected"], discovered["concept"]
    r = _mine(discovered, "--direction", f"discovered:{cid}", "--control", "random")
    assert r.exit_code == 0, r.output
    assert f"discovered-{cid}" in r.stdout and f"random-discovered-{cid}-seed0" in r.stdout
    with db.session() as s:
        puzzles = collection_puzzles(s, "study")
        stored = {p.id: p.discovery for p in s.scalars(select(Puzzle))}
    concept = [p for p in puzzles if p.kind == "concept"]
    control = [p for p in puzzles if p.kind == "control-random"]
    assert concept and control and len(concept) + len(control) == len(puzzles), [p.kind for p in puzzles]
    for p in concept:
        assert p.concept == f"discovered-{cid}" and p.tap == "block5" and p.verified and p.discovery == expected == stored[p.id]
    for p in control:
        assert p.concept == f"random-discovered-{cid}-seed0" and p.seed == 0 and p.verified
        assert p.discovery == {**expected, "role": "random-control", "seed": 0} == stored[p.id]

    # a normal export: the provenance as tags
    games = {g.headers["PuzzleId"]: g for g in read_pgn_puzzles(export_collection(db, "study", tmp_path / "study.pgn").path)}
    held = "{:.3f} (other roots {:.3f}, swapped-label control {:.3f})".format(
        expected["heldout_same_root"], expected["heldout_other_roots"], expected["swapped_control"])
    want = {"DiscoveryRun": str(expected["run"]), "DiscoveryConcept": str(cid), "DiscoveryRoot": expected["root"],
            "DiscoveryVariant": "erased", "DiscoveryHeldOut": held, "DiscoveryTeaching": f"teachable +0.125 [+0.030, +0.200], student {STUDENT}",
            "DiscoveryNovelty": "not novel: k=1 +0.021, k=5 -0.004, k=10 +0.012"}
    for p in puzzles:
        h = games[p.id].headers
        assert {t: h[t] for t in want} == want and set(PROVENANCE_TAGS) <= set(h) and h["Kind"] == p.kind
        assert h["DiscoveryRole"] == ("concept" if p.kind == "concept" else "random-control (seed 0)")

    # a blinded export: concept and control puzzles shuffled together, nothing but the position
    ids = [p.id for p in puzzles]
    kind = {p.id: p.kind for p in puzzles}
    seed = next(k for k in range(50) if _mixed([kind[i] for i in blind_order(ids, k)]))
    res = export_collection(db, "study", tmp_path / "blind.pgn", blind=True, seed=seed)
    blind = read_pgn_puzzles(res.path)
    assert [g.headers["PuzzleId"] for g in blind] == blind_order(ids, seed) and _mixed([kind[g.headers["PuzzleId"]] for g in blind])
    text = res.path.read_text()
    for g in blind:
        assert not set(g.headers) & {*DISCOVERY_TAGS, *PROVENANCE_TAGS} - {"PuzzleId"} and not list(g.mainline_moves())
    assert "discovered" not in text and "random" not in text and "erased" not in text and expected["root"] not in text

    # an expert study session on the collection, blinded by the same seed: the same order
    r = cli("eval", "session", "new", "--expert", "ana", "--phase", "before", "--collection", "study", "--blind", "--seed", seed,
            "--db", db.url)
    assert r.exit_code == 0, r.output
    with db.session() as s:
        sess = s.get(EvalSession, int(r.stdout.strip().splitlines()[-1]))
        assert sess.blinded and sess.puzzle_order == blind_order(ids, seed)

    # the puzzles pass `puzzles verify` at the nodes they were mined with
    r = cli("puzzles", "verify", "-c", "study", "--nodes", NODES, "--workers", 1, "--db", db.url)
    assert r.exit_code == 0 and f"{len(puzzles)} accepted, 0 rejected" in r.stdout, r.output


def _mixed(kinds: list[str]) -> bool:
    """Neither kind all before the other."""
    return kinds != sorted(kinds) and kinds != sorted(kinds, reverse=True)


def test_discovery_tags_before_teaching_and_novelty():
    d = DiscoveryProvenance(2, 7, "g1-p33", "block5", "unerased", "soft-margin", None, 0.25, 0.5, role="random-control", seed=4)
    assert DiscoveryProvenance.from_dict(d.as_dict()) == d
    assert discovery_tags(d) == {"DiscoveryRun": "2", "DiscoveryConcept": "7", "DiscoveryRoot": "g1-p33", "DiscoveryVariant": "unerased",
                                 "DiscoveryRole": "random-control (seed 4)",
                                 "DiscoveryHeldOut": "? (other roots 0.250, swapped-label control 0.500)", "DiscoveryTeaching": "?",
                                 "DiscoveryNovelty": "?"}


@pytest.fixture(scope="module")
def other_folders(discovered, tmp_path_factory):
    """The mining positions' activations of another network (a tiny one of six blocks), of maia-1100 at block3
    only, and at block5 unpooled."""
    d, net = tmp_path_factory.mktemp("other"), discovered["net"]
    positions = discovered["dir"] / "puzzles"
    tiny = tiny_net(d / "tiny.pb.gz", seed=1, blocks=6)
    for name, args in {"tiny": ("--net", tiny, "--taps", "block5", "--pool", "mean"), "block3": ("--net", net, "--taps", "block3", "--pool", "mean"),
                       "full": ("--net", net, "--taps", "block5", "--pool", "full")}.items():
        _run("activations", "extract", *args, "--positions", positions, "-o", d / name, "--threads", 1)
    return d


def test_mine_refuses_bad_discovered_input(discovered, other_folders):
    cid, failed, db = discovered["concept"], discovered["failed"], discovered["db"]
    before = _rows(db)
    d = discovered["dir"]
    tiny_sha = ActivationFiles(other_folders / "tiny").manifest["net_sha256"]
    run = discovered["expected"]["run"]
    cases = [
        ((f"discovered:{cid + 100}",), f"error: no discovered concept {cid + 100}"),
        (("discovered:x1",), "error: discovered:x1: a discovered concept is discovered:ID, ID a number (see discover list)"),
        ((f"discovered:{cid}", "--mean", d / "m.npy"),
         f"error: --mean cannot go with a discovered concept (--direction discovered:{cid}): it carries its own standardisation"),
        ((f"discovered:{cid}", "--tap", "block4"), f"error: --tap block4 contradicts --direction discovered:{cid}, a concept at block5"),
        ((f"discovered:{cid}", "--activations", other_folders / "tiny"),
         f"error: {other_folders / 'tiny'}: activations of network {tiny_sha[:12]}…, not of discovery run {run}'s network"),
        ((f"discovered:{cid}", "--activations", other_folders / "block3"),
         f"error: {other_folders / 'block3'}: has no tap 'block5' (taps: block3), the tap of discovered concept {cid}"),
        ((f"discovered:{cid}", "--activations", other_folders / "full"),
         f"error: {other_folders / 'full'}: full-pooled; discovered concept {cid} reads mean-pooled activations"),
    ]
    if failed is not None:
        cases.append(((f"discovered:{failed}",), f"error: discovered concept {failed} has no vector (failed"))
    for (direction, *extra), message in cases:
        folder = None
        if "--activations" in extra:
            folder = extra.pop(extra.index("--activations") + 1)
            extra.remove("--activations")
        r = _mine(discovered, "--direction", direction, *extra, collection="refused", activations=folder)
        assert r.exit_code == 2 and r.stderr.startswith(message) and len(r.stderr.strip().splitlines()) == 1, (direction, r.output)
    assert _rows(db) == before
