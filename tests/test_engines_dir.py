"""The default checkpoint series shipped in engines/: readable, hashes as documented, really trained."""

import hashlib
import json
import re
from pathlib import Path

import chess
import chess.pgn
import numpy as np
import pytest

from conceptchess.engine import Engine
from conceptchess.lc0.encoder import Histories, game_histories
from conceptchess.networks import default_network
from conceptchess.training import holdout_games
from tests.helpers import cli, data_file

ENGINES = Path(__file__).resolve().parent.parent / "engines"
NETS = sorted(ENGINES.glob("*.pb.gz"))


def readme_hashes() -> dict[str, str]:
    text = (ENGINES / "README.md").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"\|\s*(\S+\.pb\.gz)\s*\|.*`([0-9a-f]{64})`", text)}


def test_series_is_shipped_and_small():
    assert len(NETS) >= 8, "engines/ must hold a checkpoint series of at least 8 networks"
    assert sum(p.stat().st_size for p in NETS) <= 20 * 1024 * 1024
    assert any("step000000" in p.name for p in NETS)


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
    run = json.loads((ENGINES / "cc-6x32.json").read_text())
    assert [(c["file"], c["sha256"]) for c in run["checkpoints"]] == [(m["file"], m["sha256"]) for m in metas]


class _SanCounter(chess.pgn.BaseVisitor):
    """Counts a game's moves without replaying them (a game of N moves gives N training positions)."""

    def begin_game(self):
        self.moves = 0

    def begin_parse_san(self, board, san):
        self.moves += 1
        return chess.pgn.SKIP

    def result(self) -> int:
        return self.moves


def held_out_games(pgn: Path, holdout: float, seed: int) -> tuple[list[int], list[int], int]:
    """The training run's held-out games (file offsets, move counts) and the number of games read.

    The split is conceptchess.training's: game keys are the game numbers (as strings) of the games
    with at least one played move, since only positions with a played move are training positions.
    """
    offsets, moves = [], []
    with open(pgn) as f:
        while True:
            at = f.tell()
            n = chess.pgn.read_game(f, Visitor=_SanCounter)
            if n is None:
                break
            offsets.append(at)
            moves.append(n)
    keys = np.array([str(g) for g, n in enumerate(moves) if n > 0])
    _, held = holdout_games(keys, holdout, seed)
    games = [int(k) for k in keys[held]]
    return [offsets[g] for g in games], [moves[g] for g in games], len(moves)


def test_final_checkpoint_beats_step_zero_on_held_out_games():
    """The held-out games of engines/README.md, rebuilt from the PGN and the run's split settings, are
    evaluated with the shipped files themselves: move matching and policy loss on a sample of their
    positions agree with the sidecars, and the final checkpoint beats step 0."""
    metas = sidecars()
    first, last = metas[0], metas[-1]
    assert first["step"] == 0 and last["step"] > 0
    cfg = json.loads((ENGINES / "cc-6x32.json").read_text())["config"]
    pgn = data_file("pgn", "lichess_2021-10_games_a.pgn")
    offsets, counts, read = held_out_games(pgn, cfg["holdout"], cfg["seed"])
    # 10 of the 700 games have no move, so 69 of 690 are held out (engines/README.md rounds to 70).
    assert read == 700 and len(offsets) == 69
    assert sum(counts) == last["heldout_positions"] == first["heldout_positions"]  # the very positions the run held out
    parts, boards, played = [], [], []
    with open(pgn) as f:
        for at in offsets:
            f.seek(at)
            game = chess.pgn.read_game(f)
            moves = list(game.mainline_moves())
            plies = list(range(len(moves)))[::4]  # every 4th position of every held-out game: ~1,250
            h, bs = game_histories(game.board(), moves, plies=plies, keep_boards=True)
            parts.append(h)
            boards += bs
            played += [moves[t] for t in plies]
    hist = Histories.concat(parts)
    measured = {}
    for m in (first, last):
        evs = Engine(ENGINES / m["file"], device="cpu", threads=2).evaluate(hist, boards)
        accuracy = float(np.mean([ev.best_move() == mv for ev, mv in zip(evs, played)]))
        loss = float(-np.mean([np.log(ev.policy[ev.moves.index(mv)]) for ev, mv in zip(evs, played)]))
        # A quarter of the held-out positions: within a few standard errors of the sidecar's full figures.
        assert accuracy == pytest.approx(m["heldout_accuracy"], abs=0.03), m["file"]
        assert loss == pytest.approx(m["heldout_policy_loss"], abs=0.1), m["file"]
        measured[m["step"]] = (accuracy, loss)
    (acc0, loss0), (acc1, loss1) = measured[first["step"]], measured[last["step"]]
    assert acc1 > acc0 + 0.15 and loss1 < loss0 - 0.5
    assert last["heldout_accuracy"] > first["heldout_accuracy"] + 0.1
    assert last["heldout_policy_loss"] < first["heldout_policy_loss"] - 0.3
    # The WDL head does not generalise from ~630 games (see engines/README.md): it must at least stay
    # within 0.05 nats of the uniform-ish random initialisation rather than blow up.
    assert last["heldout_value_loss"] < first["heldout_value_loss"] + 0.05


def test_default_network_is_the_last_checkpoint(monkeypatch):
    monkeypatch.delenv("CONCEPTCHESS_NET", raising=False)
    assert default_network() == NETS[-1]
