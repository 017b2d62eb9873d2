"""The default checkpoint series shipped in engines/: readable, hashes as documented, really trained,
and as strong as engines/README.md says, re-measured here from the shipped files."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from conceptchess.datasets import iter_dataset
from conceptchess.engine import Engine
from conceptchess.enginelabels import LabelSettings, label_engine_dataset
from conceptchess.games import Sampling, pgn_dataset
from conceptchess.lc0.encoder import encode
from conceptchess.lc0.policy_map import move_to_index
from conceptchess.networks import default_network
from conceptchess.positions import PositionSpec, boards_of, histories_of
from conceptchess.strength import mate_puzzles, network_strength
from conceptchess.training import holdout_games, legal_masks
from tests.helpers import DATA, cli, data_file, stockfish_or_skip

ENGINES = Path(__file__).resolve().parent.parent / "engines"
NETS = sorted(ENGINES.glob("*.pb.gz"))
RUN_FILE = next(p for p in sorted(ENGINES.glob("*.json")) if "-step" not in p.name and not p.name.endswith("-strength.json"))
RUN = json.loads(RUN_FILE.read_text())
STRENGTH = json.loads((ENGINES / f"{RUN['run']}-strength.json").read_text())


def readme_hashes() -> dict[str, str]:
    text = (ENGINES / "README.md").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"\|\s*(\S+\.pb\.gz)\s*\|.*`([0-9a-f]{64})`", text)}


def test_series_is_shipped_and_small():
    assert len(NETS) >= 12, "engines/ must hold a checkpoint series of at least 12 networks"
    assert sum(p.stat().st_size for p in NETS) <= 20 * 1024 * 1024
    assert any("step000000" in p.name for p in NETS)
    assert RUN["config"]["targets"] == "engine"


@pytest.mark.parametrize("path", NETS, ids=[p.name for p in NETS])
def test_net_info_and_sha256_match_readme(path):
    r = cli("net", "info", str(path))
    assert r.exit_code == 0, r.output
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert readme_hashes().get(path.name) == sha
    assert sha in r.output.replace("\n", "").replace(" ", "")


def sidecars() -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in ENGINES.glob("*-step*.json")), key=lambda m: m["step"])


def test_each_sidecar_describes_its_weights_file():
    metas = sidecars()
    assert [m["file"] for m in metas] == [p.name for p in NETS]
    for m in metas:
        assert hashlib.sha256((ENGINES / m["file"]).read_bytes()).hexdigest() == m["sha256"], m["file"]
    assert [(c["file"], c["sha256"]) for c in RUN["checkpoints"]] == [(m["file"], m["sha256"]) for m in metas]
    assert [r["network"] for r in STRENGTH["networks"]] == [m["file"] for m in metas]


def test_mate_rates_of_the_shipped_files_are_as_recorded():
    """The mate-in-1 and mate-in-2 rates of engines/<run>-strength.json (and README), recomputed from
    the shipped step-0 and final files on the shared Lichess puzzles."""
    puzzles = mate_puzzles(data_file("puzzles", "lichess_puzzles_1499.csv"))
    assert puzzles.mate_in.count(1) == 508 and puzzles.mate_in.count(2) == 337
    recorded = {r["network"]: r for r in STRENGTH["networks"]}
    for path in (NETS[0], NETS[-1]):
        s = network_strength(path, None, puzzles, threads=2)
        assert s.mate_in_1.hits == recorded[path.name]["mate_in_1"]["hits"], path.name
        assert s.mate_in_2.hits == recorded[path.name]["mate_in_2"]["hits"], path.name
    first, last = recorded[NETS[0].name], recorded[NETS[-1].name]
    assert last["mate_in_1"]["rate"] > first["mate_in_1"]["rate"] + 0.1  # 0.154 against 0.012 (engines/README.md)


def _held_out_human_positions(tmp_path: Path, every: int) -> list[PositionSpec]:
    """Positions of the human games the run held out, rebuilt from the PGN files as engines/README.md
    made them, and the split recomputed from the merged dataset's game keys."""
    human = tmp_path / "human"
    pgns = sorted((DATA / "pgn").glob("*.pgn"))
    pgn_dataset(pgns, human, sampling=Sampling(dedup=True))
    boards = boards_of(specs := list(iter_dataset(human)))
    keys = sorted({f"human-sf/{spec.meta['game']}" for spec, board in zip(specs, boards, strict=True) if any(board.legal_moves)})
    for source in RUN["dataset_manifest"]["inputs"]:
        name = Path(source["dataset"]).name
        if name == "human-sf":
            assert len(keys) == source["games"]
        else:  # engine games: every game number has positions
            keys += [f"{name}/{g}" for g in range(source["games"])]
    keys = np.array(keys)
    _, held = holdout_games(keys, RUN["config"]["holdout"], RUN["config"]["seed"])
    held_human = {k.split("/", 1)[1] for k in keys[held] if k.startswith("human-sf/")}
    return [s for s in specs if str(s.meta["game"]) in held_human][::every]


def test_stockfish_agreement_of_the_final_file_on_held_out_games(tmp_path):
    """Every 20th held-out human position (~600), labelled again by Stockfish with the run's settings:
    the final checkpoint's top-1 agreement is the recorded one within sampling error."""
    stockfish_or_skip()
    specs = _held_out_human_positions(tmp_path, 20)
    ds = tmp_path / "sample.jsonl"
    ds.write_text("".join(json.dumps({"id": s.id, **({"fen": s.fen} if s.fen else {}), "moves": s.moves}) + "\n" for s in specs))
    lab = RUN["dataset_manifest"]["engine_labels"]
    label_engine_dataset(ds, tmp_path / "labelled", LabelSettings(nodes=lab["nodes"], multipv=lab["multipv"], workers=2))
    recs = [s for s in iter_dataset(tmp_path / "labelled") if s.meta["engine"] is not None]
    hist, boards = histories_of(recs)
    logits = Engine(NETS[-1], device="cpu", threads=2).run_planes(encode(hist))["policy"]
    legal = legal_masks(boards)
    top = np.where(legal, logits, -np.inf).argmax(1)
    best = []
    for spec, board in zip(recs, boards, strict=True):
        m = board.parse_uci(spec.meta["engine"]["lines"][0][0])
        best.append(move_to_index(m, board.turn, board.is_castling(m)))
    agreement = float((top == np.array(best)).mean())
    recorded = {r["network"]: r for r in STRENGTH["networks"]}[NETS[-1].name]["sf_agreement"]["rate"]
    se = np.sqrt(recorded * (1 - recorded) / len(recs))
    assert len(recs) > 300
    assert abs(agreement - recorded) < 4 * se + 0.02, (agreement, recorded, len(recs))


def test_default_network_is_the_last_checkpoint(monkeypatch):
    monkeypatch.delenv("CONCEPTCHESS_NET", raising=False)
    assert default_network() == NETS[-1]
