"""Checkpoint series on disk: sidecars, steps, labels, training order, the weakest checkpoint."""

from __future__ import annotations

import json

from conceptchess import checkpoints


def series(folder, run="r", steps=(0, 5, 40)):
    for step in steps:
        name = checkpoints.checkpoint_name(run, step)
        (folder / name).write_bytes(b"x")
        checkpoints.write_sidecar(folder / name, {"run": run, "step": step, "file": name})
    return folder


def test_names_and_sidecars(tmp_path):
    assert checkpoints.checkpoint_name("cc-6x32", 178) == "cc-6x32-step000178.pb.gz"
    assert [checkpoints.stem(n) for n in ("a.pb.gz", "a.onnx", "a.onnx.gz", "a.json")] == ["a", "a", "a", "a.json"]
    f = tmp_path / "m.onnx.gz"
    assert checkpoints.sidecar_path(f) == tmp_path / "m.json" and checkpoints.read_sidecar(f) == {}
    checkpoints.write_sidecar(f, {"run": "m", "step": 3})
    assert (tmp_path / "m.json").read_text() == json.dumps({"run": "m", "step": 3}, indent=2) + "\n"
    assert checkpoints.read_sidecar(f) == {"run": "m", "step": 3}
    for bad in ("{not json", "[1, 2]"):
        (tmp_path / "m.json").write_text(bad)
        assert checkpoints.read_sidecar(f) == {}


def test_step_from_sidecar_then_weights_then_file_name(tmp_path):
    f = tmp_path / "net-step000070.pb.gz"
    assert checkpoints.run_and_step(f) == (None, 70)
    assert checkpoints.run_and_step(f, training_steps=12) == (None, 12)
    assert checkpoints.run_and_step(f, training_steps=0) == (None, 70)  # 0 in the weights means "not recorded"
    checkpoints.write_sidecar(f, {"run": "r", "step": "5"})
    assert checkpoints.run_and_step(f, training_steps=12) == ("r", 5)
    checkpoints.write_sidecar(f, {"run": "r", "step": "five"})
    assert checkpoints.run_and_step(f, training_steps=12) == (None, 12)  # a malformed sidecar counts as none


def test_series_order_labels_and_the_weakest_checkpoint(tmp_path):
    series(tmp_path)
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "r.json").write_text(json.dumps({"run": "r", "checkpoints": []}))  # the run's summary: no step
    files = checkpoints.network_files(tmp_path)
    assert [f.name for f in files] == ["r-step000000.pb.gz", "r-step000005.pb.gz", "r-step000040.pb.gz"]
    assert [s for s, _, _ in checkpoints.series_sidecars(tmp_path, "r")] == [0, 5, 40]
    assert sorted([(None, "b"), (40, "a"), (5, "z")], key=lambda x: checkpoints.series_order_key(*x)) == [(5, "z"), (40, "a"), (None, "b")]
    assert checkpoints.weakest_checkpoint(tmp_path / "r-step000040.pb.gz") == tmp_path / "r-step000005.pb.gz"  # step 0 is a control
    assert checkpoints.checkpoint_label(tmp_path / "r-step000040.pb.gz") == "r@40"
    assert checkpoints.step_label("r", 40) == "r step 40"
    assert checkpoints.checkpoint_label(tmp_path / "other.pb.gz") == "other.pb.gz"
    assert checkpoints.weakest_checkpoint(tmp_path / "other.pb.gz") is None
