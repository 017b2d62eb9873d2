"""Positions datasets: the origin recorded in the manifest, the identity that does not depend on it, and
labelling a dataset with concepts."""

from __future__ import annotations

import csv
import json

import pytest

from conceptchess.concepts import label
from conceptchess.datasets import (
    ORIGINS,
    ConceptTable,
    DatasetWriter,
    dataset_origin,
    dataset_sha256,
    iter_dataset,
    label_dataset,
    read_manifest,
)
from conceptchess.errors import ArgumentError
from conceptchess.games import pgn_dataset
from conceptchess.provenance import sha256_of
from conceptchess.selfplay import selfplay_dataset
from tests.helpers import tiny_net

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
    net = tiny_net(tmp_path / "n.pb.gz", seed=0, blocks=1)
    manifest = selfplay_dataset(net, tmp_path / "sp", games=1, max_plies=4, device="cpu")
    assert manifest["origin"] == dataset_origin(read_manifest(tmp_path / "sp")) == "machine-games"


def test_label_dataset_writes_what_label_gives_on_each_board(tmp_path):
    pgn = tmp_path / "g.pgn"
    pgn.write_text(PGN)
    pgn_dataset([pgn], tmp_path / "ds")
    specs = list(iter_dataset(tmp_path / "ds"))
    seen = []
    table = label_dataset(tmp_path / "ds", tmp_path / "labels.csv", "in_check, material_diff,in_check",
                          progress=lambda done, total: seen.append((done, total)))
    assert table == ConceptTable(tmp_path / "labels.csv", len(specs), ["in_check", "material_diff"])
    want = label([s.board() for s in specs], ["in_check", "material_diff"])
    with open(tmp_path / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [s.id for s in specs]
    assert [int(r["in_check"]) for r in rows] == want["in_check"].tolist()
    assert [float(r["material_diff"]) for r in rows] == want["material_diff"].tolist()
    assert seen[0] == (0, len(specs)) and seen[-1] == (len(specs), len(specs))


def test_dataset_writer_refusal_names_the_argument(tmp_path):
    (tmp_path / "ds").mkdir()
    with pytest.raises(ArgumentError, match="already exists .*pass overwrite=True") as e:
        DatasetWriter(tmp_path / "ds")
    assert e.value.naming({"overwrite": "--overwrite"}).endswith("pass --overwrite)")
