"""Activation folders: chunked arrays, extraction against the engine, resume after kill -9, bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conceptchess.activations import ActivationFiles, chunk_name, extract_activations
from conceptchess.chunks import ChunkedArray, ChunkWriter
from conceptchess.errors import ConceptChessError
from tests.helpers import DATA, cli, cli_process

NET = DATA / "weights" / "maia-1100.pb.gz"
PGN = DATA / "pgn" / "lichess_2021-10_games_a.pgn"
needs_data = pytest.mark.skipif(not (NET.exists() and PGN.exists()),
                                reason=f"real test data absent: needs {NET} and {PGN} (set CONCEPTCHESS_TEST_DATA)")


def build_dataset(path: Path, n: int) -> Path:
    """The first ``n`` positions (every ply of the first games) of the shared Lichess PGN."""
    from conceptchess.games import Sampling, pgn_dataset

    pgn_dataset([PGN], path, sampling=Sampling(max_positions=n))
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    if not PGN.exists():
        pytest.skip(f"real test data absent: needs {PGN}")
    return build_dataset(tmp_path_factory.mktemp("data") / "positions", 300)


@pytest.fixture(scope="module")
def engine():
    if not NET.exists():
        pytest.skip(f"real test data absent: needs {NET}")
    from conceptchess.engine import Engine

    return Engine(NET, batch_size=64)


@pytest.fixture(scope="module")
def reference(dataset, engine) -> dict[str, np.ndarray]:
    """Planes and float32 block outputs of the whole dataset straight from the engine."""
    from conceptchess.datasets import iter_dataset
    from conceptchess.lc0.encoder import encode
    from conceptchess.positions import histories_of

    specs = list(iter_dataset(dataset))
    planes = encode(histories_of(specs)[0])
    ref = engine.run_planes(planes, engine.taps)
    ref["input"] = planes
    ref["ids"] = [s.id for s in specs]
    return ref


def extract_cli(*args: str) -> list[str]:
    return ["activations", "extract", "--net", str(NET), *args]


def store_files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file() and p.name != "manifest.json"}


# -- chunked arrays (no data needed) ----------------------------------------------------------------
@pytest.fixture
def chunked(tmp_path) -> tuple[ChunkedArray, np.ndarray]:
    rng = np.random.default_rng(0)
    full = rng.normal(size=(13, 3, 2)).astype(np.float32)
    paths, lengths = [], [5, 5, 3]
    for i, (s, n) in enumerate(zip([0, 5, 10], lengths, strict=True)):
        w = ChunkWriter(tmp_path / chunk_name(i), (n, 3, 2), "float16")
        w.write(0, full[s : s + 2])
        w.write(2, full[s + 2 : s + n])
        w.commit()
        paths.append(tmp_path / chunk_name(i))
    return ChunkedArray(paths, lengths, (3, 2), "float16"), full.astype(np.float16)


def test_chunked_array_indexes_like_numpy(chunked):
    arr, ref = chunked
    assert arr.shape == ref.shape and len(arr) == 13 and arr.dtype == np.float16 and arr.ndim == 3
    assert np.array_equal(np.asarray(arr), ref)
    assert np.asarray(arr, dtype=np.float32).dtype == np.float32
    keys = [0, 4, 5, 12, -1, -13, np.int64(7), slice(None), slice(3, 11), slice(4, 6), slice(None, None, 3),
            slice(None, None, -1), slice(11, 2, -4), slice(7, 7), slice(20, 30), [12, 0, 5, 5], np.array([[1, 9], [10, 2]]),
            np.array([], dtype=np.int64), [-1, -6], ref[:, 0, 0] > 0, (slice(2, 9), 1), (3, slice(None), 0), (slice(1, 12, 2), 0, 1),
            ([4, 6], slice(None), 1), (slice(0, 10), [0, 2], [1, 0]), (Ellipsis, 0)]
    for key in keys:
        got, want = arr[key], ref[key]
        assert isinstance(got, np.ndarray) and not isinstance(got, np.memmap), key
        assert got.shape == want.shape and np.array_equal(got, want), key
    assert [a.shape for a in arr.iter_chunks()] == [(5, 3, 2), (5, 3, 2), (3, 3, 2)]
    for bad in (13, -14, [0, 13], np.ones(12, bool)):
        with pytest.raises(IndexError):
            arr[bad]
    with pytest.raises(IndexError):
        arr[[0, 1], [0, 1]]  # fancy on two axes: ask numpy after np.asarray


def test_chunk_writer_is_atomic_and_converts_like_numpy(tmp_path):
    x = (np.random.default_rng(1).normal(size=(7, 4)) * 1e3).astype(np.float32)
    x[0, :3] = [np.inf, 1e6, np.nan]
    w = ChunkWriter(tmp_path / "c.npy", (7, 4), "float16")
    w.write(0, x[:4])
    with pytest.raises(ValueError):
        w.write(5, x[5:])  # rows must continue where the last write stopped
    assert not (tmp_path / "c.npy").exists()
    w.write(4, x[4:])
    w.commit()
    with np.errstate(over="ignore"):
        want = x.astype(np.float16)
    assert np.array_equal(np.load(tmp_path / "c.npy"), want, equal_nan=True)
    w = ChunkWriter(tmp_path / "d.npy", (7, 4), "float16")
    w.write(0, x[:3])
    with pytest.raises(ValueError):
        w.commit()  # incomplete
    w.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npy"]


# -- extraction ------------------------------------------------------------------------------------
@needs_data
def test_extract_matches_engine(tmp_path, dataset, engine, reference):
    from conceptchess.datasets import dataset_sha256

    seen = []
    store = extract_activations(engine, dataset, tmp_path / "s", ["block3", "input", "block0"], chunk_size=128,
                                batch_size=50, progress=lambda d, t: seen.append((d, t)))
    assert store.taps == ["input", "block0", "block3"]  # canonical order
    assert len(store) == 300 and store.ids == reference["ids"] and store.complete
    assert seen[0] == (0, 300) and seen[-1] == (300, 300)
    assert np.array_equal(np.asarray(store["input"]), reference["input"].astype(np.float16))
    for tap in ("block0", "block3"):
        a = store[tap]
        assert a.shape == (300, 64, 8, 8) and a.dtype == np.float16
        np.testing.assert_allclose(np.asarray(a, dtype=np.float32), reference[tap], rtol=2e-3, atol=2e-3)
    assert sorted(p.name for p in (tmp_path / "s" / "block0").iterdir()) == [chunk_name(i) for i in range(3)]
    m = store.manifest
    assert m["net_sha256"] == engine.network.sha256 and m["dataset_sha256"] == dataset_sha256(dataset)
    assert m["pool"] == "full" and m["dtype"] == "float16" and m["chunk_size"] == 128 and m["positions"] == 300
    assert m["shapes"] == {"input": [112, 8, 8], "block0": [64, 8, 8], "block3": [64, 8, 8]}
    assert m["provider"] == engine.provider and {"conceptchess", "numpy", "onnxruntime", "python"} <= set(m["versions"])
    assert ActivationFiles(tmp_path / "s").manifest == m
    with pytest.raises(ConceptChessError, match="not in this store"):
        store["block1"]


@needs_data
def test_mean_pool_float32(tmp_path, dataset, engine, reference):
    store = extract_activations(engine, dataset, tmp_path / "s", "input,block5", pool="mean", dtype="float32", chunk_size=200)
    assert store["block5"].shape == (300, 64) and store["block5"].dtype == np.float32
    assert store["input"].shape == (300, 112) and store.shape("input") == (112,)
    np.testing.assert_allclose(store["block5"][:], reference["block5"].mean(axis=(2, 3)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(store["input"][:], reference["input"].mean(axis=(2, 3)), rtol=1e-6)


@needs_data
def test_resume_after_kill_keeps_finished_chunks(tmp_path, dataset):
    args = ["--positions", str(dataset), "--chunk-size", "16", "--batch-size", "8", "--taps", "input,block0,block5"]
    killed = tmp_path / "killed"
    # a real process: the point is to SIGKILL it mid-extraction
    proc = cli_process(*extract_cli(*args, "-o", str(killed)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = killed / "block5" / chunk_name(2)  # block5 is written last: chunk 2 is finished for every tap
    deadline = time.monotonic() + 60
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), f"extraction did not reach chunk 2: {proc.stderr.read().decode()[-500:]}"
    assert not json.loads((killed / "manifest.json").read_text())["complete"], "finished before the kill: enlarge the dataset"
    with pytest.raises(ConceptChessError, match="incomplete activation folder"):
        ActivationFiles(killed)
    partial = ActivationFiles(killed, allow_partial=True)
    assert 48 <= len(partial) < 300 and len(partial) % 16 == 0 and len(partial.ids) == len(partial)
    finished = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in killed.glob("*/chunk_*.npy")}
    time.sleep(0.01)  # a rewrite would show in mtime_ns

    r = cli(*extract_cli(*args, "-o", str(killed)))
    assert r.exit_code == 0, r.output
    r = cli(*extract_cli(*args, "-o", str(tmp_path / "whole")))
    assert r.exit_code == 0, r.output

    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished} == finished
    assert store_files(killed) == store_files(tmp_path / "whole")  # byte-identical chunks and ids
    assert not list(killed.rglob("*.part"))
    assert ActivationFiles(killed).complete and len(ActivationFiles(killed)) == 300

    before = {p: p.stat().st_mtime_ns for p in killed.rglob("*")}
    r = cli(*extract_cli(*args, "-o", str(killed)))  # complete: nothing to do
    assert r.exit_code == 0 and "already complete" in r.output
    assert {p: p.stat().st_mtime_ns for p in killed.rglob("*")} == before


@needs_data
@pytest.mark.parametrize("change, why", [(["--pool", "mean"], "pool"), (["--dtype", "float32"], "dtype"),
                                         (["--chunk-size", "64"], "chunk size"), (["--taps", "input"], "taps")])
def test_store_of_other_inputs_is_refused(tmp_path, dataset, engine, change, why):
    out = tmp_path / "s"
    extract_activations(engine, dataset, out, "input,block1", chunk_size=128)
    before = store_files(out), (out / "manifest.json").read_text()
    args = {"--taps": "input,block1", "--chunk-size": "128", "--positions": str(dataset)}
    args.update(dict(zip(change[::2], change[1::2], strict=True)))
    r = cli(*extract_cli(*[x for kv in args.items() for x in kv], "-o", str(out)))
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "holds activations of different inputs" in r.stderr and why in r.stderr
    assert (store_files(out), (out / "manifest.json").read_text()) == before


@needs_data
def test_other_dataset_is_refused(tmp_path, dataset, engine):
    out = tmp_path / "s"
    extract_activations(engine, dataset, out, "input", chunk_size=128)
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": 1, "moves": ["e2e4"]}\n')
    with pytest.raises(ConceptChessError, match="different inputs.*dataset sha256"):
        extract_activations(engine, other, out, "input", chunk_size=128)


@needs_data
@pytest.mark.parametrize("extra, message", [
    (["--taps", "input,block9"], "tap 'block9' is not in this network"),
    (["--taps", "block1,block1"], "given twice"),
    (["--pool", "max"], "unknown pooling 'max'"),
    (["--dtype", "int8"], "unknown dtype 'int8'"),
    (["--chunk-size", "0"], "at least 1"),
])
def test_bad_options_leave_nothing(tmp_path, dataset, extra, message):
    out = tmp_path / "new" / "store"
    r = cli(*extract_cli("--positions", str(dataset), "-o", str(out), *extra))
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.output
    assert not out.exists() and not list(tmp_path.rglob("*.part"))


@needs_data
def test_bad_datasets_leave_nothing(tmp_path, engine):
    with pytest.raises(ConceptChessError, match="no such positions dataset"):
        extract_activations(engine, tmp_path / "missing", tmp_path / "a")
    malformed = tmp_path / "malformed.jsonl"
    malformed.write_text('{"id": 1, "moves": []}\n{"id": 2, "moves": [\n')
    with pytest.raises(ConceptChessError, match=r"malformed\.jsonl:2: malformed JSON"):
        extract_activations(engine, malformed, tmp_path / "b")
    illegal = tmp_path / "illegal.jsonl"  # found only when its chunk is read: the fresh store is removed
    illegal.write_text('{"id": 1, "moves": ["e2e4"]}\n{"id": 2, "moves": ["e2e4", "e7e4"]}\n')
    with pytest.raises(ConceptChessError, match="illegal"):
        extract_activations(engine, illegal, tmp_path / "c", "input", chunk_size=1)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ConceptChessError, match="no positions"):
        extract_activations(engine, empty, tmp_path / "d")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.jsonl", "illegal.jsonl", "malformed.jsonl"]


@needs_data
def test_foreign_folders_are_refused(tmp_path, dataset, engine):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ConceptChessError, match="not empty and is not an activation folder"):
        extract_activations(engine, dataset, busy, "input")
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConceptChessError, match="not a folder"):
        extract_activations(engine, dataset, tmp_path / "file", "input")
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder is fine
    assert len(extract_activations(engine, dataset, empty, "input", chunk_size=512)) == 300
    for path, message in ((tmp_path / "nowhere", "no such activation folder"), (busy, "not an activation folder")):
        with pytest.raises(ConceptChessError, match=message):
            ActivationFiles(path)


@needs_data
def test_info_command(tmp_path, dataset, engine):
    extract_activations(engine, dataset, tmp_path / "s", "input,block2", pool="mean", chunk_size=128)
    r = cli("activations", "info", str(tmp_path / "s"))
    assert r.exit_code == 0, r.output
    assert "block2" in r.output and "[64]" in r.output and "mean, float16" in r.output and "yes" in r.output
    r = cli("activations", "info", str(tmp_path / "nothing"))
    assert r.exit_code == 2 and "no such activation folder" in r.stderr


@needs_data
def test_resume_redoes_damaged_chunks_and_refuses_a_second_writer(tmp_path, dataset, engine):
    from conceptchess.activations import _Lock

    out = tmp_path / "s"
    extract_activations(engine, dataset, out, "input,block4", chunk_size=128)
    whole = store_files(out)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))  # as if killed at the end
    damaged = out / "block4" / chunk_name(1)
    damaged.write_bytes(damaged.read_bytes()[:1000])  # truncated behind our back
    (out / "input" / chunk_name(2)).unlink()
    (out / "input" / f".{chunk_name(2)}.part").write_bytes(b"leftover")
    lock = _Lock(out)
    try:
        with pytest.raises(ConceptChessError, match="another extraction is writing"):
            extract_activations(engine, dataset, out, "input,block4", chunk_size=128)
    finally:
        lock.release()
    kept = (out / "input" / chunk_name(0)).stat().st_mtime_ns
    store = extract_activations(engine, dataset, out, "input,block4", chunk_size=128)
    assert store.complete and store_files(out) == whole and not list(out.rglob("*.part"))
    assert (out / "input" / chunk_name(0)).stat().st_mtime_ns == kept


# -- what extraction says before and while it writes (no shared data needed) ------------------------------
def test_extract_says_the_folder_size_first_and_prints_progress_lines_off_a_terminal(tmp_path):
    from conceptchess.activations import size_text
    from tests.helpers import random_games, tiny_net

    net, data = tiny_net(tmp_path / "net.pb.gz", 0, blocks=2, filters=8), random_games(tmp_path / "positions", games=6, plies=30)
    positions = sum(1 for _ in (data / "positions.jsonl").open())
    out = tmp_path / "acts"
    # CliRunner's output is no terminal: progress comes as lines, one per report with the interval at 0
    r = cli("activations", "extract", "--net", net, "--positions", data, "-o", out, "--taps", "input,block1", "--chunk-size", "64",
            env={"CONCEPTCHESS_PROGRESS_EVERY": "0"})
    assert r.exit_code == 0, r.output
    arrays = sum(np.load(p).nbytes for p in out.glob("*/chunk_*.npy"))
    assert arrays == positions * (112 + 8) * 64 * 2  # full 8×8 float16: input planes and 8 filters
    lines = r.stdout.splitlines()
    size = next(i for i, line in enumerate(lines) if line.startswith(f"{out}: {positions:,} positions × 2 taps (full, float16)"))
    assert lines[size].endswith(f"≈ {size_text(arrays)}")
    progress = [line for line in lines if line.startswith("extracting: ")]
    assert progress[0].startswith(f"extracting: 0/{positions:,} (0%), ") and progress[-1].startswith(f"extracting: {positions:,}/{positions:,} (100%)")
    assert len(progress) == 1 + -(-positions // 64)  # the start, then each finished chunk
    assert all(", ETA " in line and " elapsed" in line for line in progress)
    assert size < lines.index(progress[0])  # the size comes before anything is written


def test_announce_counts_only_what_a_resumed_extraction_has_left(tmp_path):
    from conceptchess.activations import ExtractionSize, activation_bytes
    from tests.helpers import random_games, tiny_net

    net, data = tiny_net(tmp_path / "net.pb.gz", 0), random_games(tmp_path / "positions", games=4, plies=30)
    out, seen = tmp_path / "acts", []
    store = extract_activations(net, data, out, "block0", chunk_size=32, announce=seen.append)
    n = len(store)
    whole = activation_bytes(n, {"block0": [8, 8, 8]})
    assert seen == [ExtractionSize(n, ("block0",), "full", "float16", whole, whole)]
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    (out / "block0" / chunk_name(1)).unlink()
    extract_activations(net, data, out, "block0", chunk_size=32, announce=seen.append)
    assert seen[1].total == whole and seen[1].left == 32 * 8 * 64 * 2
    extract_activations(net, data, out, "block0", chunk_size=32, announce=seen.append)  # complete: nothing to say
    assert len(seen) == 2
