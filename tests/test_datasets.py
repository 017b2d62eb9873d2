"""Positions datasets: the origin recorded in the manifest, and the identity that does not depend on it."""

from __future__ import annotations

import json

import pytest

from conceptchess.datasets import ORIGINS, dataset_origin, dataset_sha256, read_manifest
from conceptchess.games import pgn_dataset
from conceptchess.provenance import sha256_of

PGN = '[Event "t"]\n[Result "1-0"]\n\n1. e4 e5 2. Qh5 Nc6 3. Bc4 Nf6 4. Qxf7# 1-0\n\n'


def test_origins_are_the_four_of_the_design():
    assert ORIGINS == ("human-games", "machine-games", "rollouts", "puzzles")


@pytest.mark.parametrize(("manifest", "origin"), [
    ({"origin": "machine-games", "made_by": "positions selfplay"}, "machine-games"),
    ({"origin": "rollouts"}, "rollouts"),
    # written before origins were recorded: not guessed from what made it
    ({"kind": "positions", "made_by": "positions from-pgn"}, "unknown"),
    ({"made_by": "positions selfplay"}, "unknown"),
    ({}, "unknown"),
])
def test_dataset_origin_reads_what_was_recorded(manifest, origin):
    assert dataset_origin(manifest) == origin


def test_games_datasets_record_human_games_and_keep_their_identity(tmp_path):
    pgn = tmp_path / "g.pgn"
    pgn.write_text(PGN)
    ds = tmp_path / "ds"
    manifest = pgn_dataset([pgn], ds)
    assert manifest["origin"] == read_manifest(ds)["origin"] == dataset_origin(read_manifest(ds)) == "human-games"
    # the identity is the positions file alone: dropping the origin (an older manifest) changes nothing
    before = dataset_sha256(ds)
    old = {k: v for k, v in read_manifest(ds).items() if k != "origin"}
    (ds / "manifest.json").write_text(json.dumps(old))
    assert dataset_sha256(ds) == before == sha256_of(ds / "positions.jsonl") == manifest["positions_sha256"]
    assert dataset_origin(read_manifest(ds)) == "unknown"


def test_selfplay_datasets_record_machine_games(tmp_path):
    torch = pytest.importorskip("torch")
    from conceptchess.lc0.trainable import TrainableLc0Net
    from conceptchess.lc0.weights import NetSpec, write_weights
    from conceptchess.selfplay import selfplay_dataset

    spec = NetSpec(blocks=1, filters=8, se_channels=4, policy="convolution", policy_channels=0, value="wdl",
                   value_channels=4, value_hidden=16, moves_left=False)
    torch.manual_seed(0)
    net = tmp_path / "n.pb.gz"
    write_weights(net, spec, TrainableLc0Net(spec).folded_state())
    manifest = selfplay_dataset(net, tmp_path / "sp", games=1, max_plies=4, device="cpu")
    assert manifest["origin"] == dataset_origin(read_manifest(tmp_path / "sp")) == "machine-games"
