"""Activation folders: a network's taps over a positions dataset, on disk, chunked and memory-mapped.

A store is a folder::

    STORE/manifest.json               what was extracted (see below); "complete": true when done
    STORE/ids.jsonl                   the position ids, one JSON value a line, in dataset order
    STORE/{tap}/chunk_{i:05d}.npy     rows i·chunk_size … of that tap, one .npy file per chunk

Taps follow the project's names: ``input`` is the 112 encoded planes
(:func:`conceptchess.lc0.encoder.encode`), ``block{i}`` the output of residual block i (side-to-move
frame, as lc0 computes it). Pooling decides what is kept per position:

- ``full``: the whole tap, ``[C, 8, 8]`` (C = 112 for ``input``, the filter count for blocks);
- ``mean``: the per-channel mean over the 64 squares, ``[C]`` (averaged in float32, then stored).

Values are stored as ``float16`` (default) or ``float32``. The manifest records the identity of the
extraction — net sha256, dataset sha256, taps, pooling, dtype, chunk size — plus the per-tap shape,
the number of positions and chunks, the execution provider and the software versions.

Extraction streams the dataset chunk by chunk (memory stays constant) and is resumable: every chunk
file is written under a temporary name and renamed when complete, so after an interruption the same
command keeps the finished chunks and redoes only the missing ones. A store folder that holds an
extraction of other inputs is refused rather than mixed. Folders grow fast (full 8×8 float16 taps of a
64-filter network: 8 KiB per position and tap), so :func:`activation_bytes` gives a folder's size
before it is written, and ``extract_activations(announce=…)`` says it before the first chunk.

>>> store = extract_activations("maia-1100.pb.gz", "positions/", "acts/", ["input", "block3"])  # doctest: +SKIP
>>> store = ActivationFiles("acts/")                                                       # doctest: +SKIP
>>> store.taps, len(store), store["block3"].shape, store.ids[:2]                            # doctest: +SKIP
(['input', 'block3'], 20000, (20000, 64, 8, 8), ['g0-p0', 'g0-p1'])
>>> x = np.asarray(store["block3"][:1000], dtype=np.float32)                              # doctest: +SKIP
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from pathlib import Path

import numpy as np

from conceptchess.chunks import ChunkedArray, ChunkWriter, chunk_is_valid
from conceptchess.datasets import dataset_sha256, iter_dataset, positions_path
from conceptchess.engine import Engine
from conceptchess.errors import ConceptChessError
from conceptchess.files import atomic_folder, atomic_write_text
from conceptchess.lc0.encoder import encode
from conceptchess.positions import histories_of
from conceptchess.progress import Progress
from conceptchess.provenance import software_versions
from conceptchess.taps import INPUT, check, order, parse

FORMAT = "conceptchess-activations"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
IDS_FILE = "ids.jsonl"
LOCK_FILE = ".lock"
POOLS = ("full", "mean")
DTYPES = ("float16", "float32")
DEFAULT_CHUNK_SIZE = 4096
# What must match for a folder to be resumed instead of refused.
IDENTITY = ("net_sha256", "dataset_sha256", "taps", "pool", "dtype", "chunk_size")


def chunk_name(i: int) -> str:
    return f"chunk_{i:05d}.npy"


def chunk_lengths(positions: int, chunk_size: int) -> list[int]:
    return [min(chunk_size, positions - s) for s in range(0, positions, chunk_size)]


def activation_bytes(positions: int, shapes: Mapping[str, Sequence[int]], dtype: str = "float16") -> int:
    """Bytes the arrays of ``positions`` rows of taps of per-position ``shapes`` take on disk (the
    chunk files' 128-byte .npy headers aside).

    >>> activation_bytes(6000, {"input": [112, 8, 8], "block0": [64, 8, 8]})  # full 8×8 float16
    135168000
    >>> activation_bytes(6000, {"block0": [64]}, "float32")                    # mean-pooled
    1536000
    """
    per_position = sum(int(np.prod(shape, dtype=np.int64)) for shape in shapes.values())
    return int(positions) * per_position * np.dtype(dtype).itemsize


def size_text(n: int) -> str:
    """A byte count for people (decimal units).

    >>> size_text(932_000_000), size_text(1_536_000), size_text(2_500_000_000), size_text(512)
    ('932 MB', '1.5 MB', '2.5 GB', '512 B')
    """
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            v = n / scale
            return f"{v:.1f} {unit}" if v < 10 else f"{v:.0f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class ExtractionSize:
    """What an extraction is about to write: the folder's arrays in all, and the part not written yet (a resumed one)."""

    positions: int
    taps: tuple[str, ...]
    pool: str
    dtype: str
    total: int  # bytes of the whole folder's arrays
    left: int  # bytes still to write

    def __str__(self) -> str:
        done = "" if self.left == self.total else f", {size_text(self.left)} of it left to write"
        return (f"{self.positions:,} positions × {len(self.taps)} tap{'s' if len(self.taps) != 1 else ''} "
                f"({self.pool}, {self.dtype}) ≈ {size_text(self.total)}{done}")


def _read_manifest(path: Path) -> dict | None:
    """The manifest of an activation folder, None if the folder has none."""
    f = path / MANIFEST_FILE
    if not f.exists():
        return None
    try:
        m = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConceptChessError(f"{f}: malformed activation folder manifest ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ConceptChessError(f"{path}: not an activation folder (its {MANIFEST_FILE} is something else)")
    if m.get("format_version") != FORMAT_VERSION:
        raise ConceptChessError(f"{path}: activation folder format version {m.get('format_version')} is not supported "
                                f"(this conceptchess reads version {FORMAT_VERSION})")
    return m


def _write_manifest(path: Path, manifest: dict) -> None:
    atomic_write_text(path / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")


class ActivationFiles:
    """Read an activation folder: ``store[tap]`` is a lazily concatenated array over its chunk files.

    An incomplete store (extraction interrupted) is refused unless ``allow_partial=True``; then it
    shows the leading positions whose chunks are finished for every tap.

    >>> store = ActivationFiles("acts/")                    # doctest: +SKIP
    >>> store["block0"][:10].shape, store.pool, store.manifest["net_sha256"][:12]   # doctest: +SKIP
    ((10, 64, 8, 8), 'full', '...')
    """

    def __init__(self, path: str | os.PathLike, *, allow_partial: bool = False):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ConceptChessError(f"{self.path}: no such activation folder")
        manifest = _read_manifest(self.path)
        if manifest is None:
            raise ConceptChessError(f"{self.path}: not an activation folder (no {MANIFEST_FILE})")
        self.manifest = manifest
        self.complete = bool(manifest.get("complete"))
        if not self.complete and not allow_partial:
            raise ConceptChessError(f"{self.path}: incomplete activation folder (extraction was interrupted; re-run the same "
                                    "`conceptchess activations extract` to finish it, or open it with allow_partial=True)")
        lengths = chunk_lengths(manifest["positions"], manifest["chunk_size"])
        if not self.complete:
            done = 0
            while done < len(lengths) and all((self.path / t / chunk_name(done)).exists() for t in self.taps):
                done += 1
            lengths = lengths[:done]
        self._lengths = lengths
        self._arrays: dict[str, ChunkedArray] = {}

    @property
    def taps(self) -> list[str]:
        return list(self.manifest["taps"])

    @property
    def pool(self) -> str:
        return self.manifest["pool"]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.manifest["dtype"])

    def shape(self, tap: str) -> tuple[int, ...]:
        """Per-position shape of a tap (``[C, 8, 8]`` full, ``[C]`` mean-pooled)."""
        return tuple(self.manifest["shapes"][self._check(tap)])

    def __len__(self) -> int:
        return int(sum(self._lengths))

    def __contains__(self, tap) -> bool:
        return tap in self.manifest["taps"]

    def keys(self) -> list[str]:
        return self.taps

    def _check(self, tap: str) -> str:
        check([tap], self.taps, "this store")
        return tap

    def __getitem__(self, tap: str) -> ChunkedArray:
        if tap not in self._arrays:
            self._check(tap)
            paths = [self.path / tap / chunk_name(i) for i in range(len(self._lengths))]
            self._arrays[tap] = ChunkedArray(paths, self._lengths, self.shape(tap), self.dtype)
        return self._arrays[tap]

    @cached_property
    def ids(self) -> list:
        """Position ids in store order (as in the dataset)."""
        with open(self.path / IDS_FILE, encoding="utf-8") as f:
            return [json.loads(line) for line in islice(f, len(self))]

    def __repr__(self) -> str:
        state = "" if self.complete else ", partial"
        return f"ActivationFiles({str(self.path)!r}, {len(self)} positions, taps={self.taps}, pool={self.pool!r}, dtype={self.dtype.name}{state})"


# -- extraction ------------------------------------------------------------------------------------
def _resolve_taps(taps, engine) -> list[str]:
    """Validated taps in canonical order (``input`` first, then blocks by index); default: all."""
    taps = [INPUT] + list(engine.taps) if taps is None else parse(taps, duplicates="refuse")
    engine.check_taps([t for t in taps if t != INPUT])
    return order(taps)


def _pooled(x: np.ndarray, pool: str) -> np.ndarray:
    """Pooled rows, still float32 (the chunk writer converts to the store's dtype)."""
    return x.mean(axis=(2, 3), dtype=np.float32) if pool == "mean" else x


def _tap_shapes(engine, taps: list[str], pool: str) -> dict[str, list[int]]:
    """Per-position shape of each tap after pooling, from a dummy batch of two positions."""
    blocks = [t for t in taps if t != INPUT]
    raw = engine.run_planes(np.zeros((2, 112, 8, 8), np.float32), blocks) if blocks else {}
    raw[INPUT] = np.zeros((2, 112, 8, 8), np.float32)
    shapes = {}
    for t in taps:
        a = raw[t]
        if a.ndim != 4 or a.shape[0] != 2 or a.shape[2:] != (8, 8):
            raise ConceptChessError(f"tap {t!r} has shape {list(a.shape[1:])} per position; only [C, 8, 8] taps can be stored")
        shapes[t] = [int(a.shape[1])] if pool == "mean" else [int(d) for d in a.shape[1:]]
    return shapes


def _versions() -> dict[str, str]:
    """The software of an extraction (torch only when loaded: it made the ONNX graph of a .pb.gz)."""
    v = software_versions("numpy", "onnxruntime")
    if "torch" in sys.modules:
        v.update(software_versions("torch"))  # adds torch last, as manifests have always listed it
    return v


def _mismatch(old: dict, new: dict) -> str | None:
    for key in IDENTITY:
        if old.get(key) != new.get(key):
            a, b = old.get(key), new.get(key)
            if key.endswith("sha256"):
                a, b = str(a)[:12] + "…", str(b)[:12] + "…"
            return f"{key.replace('_', ' ')} {a} there, {b} now"
    return None


def _create_store(path: Path, ids_source: Iterator, manifest: dict) -> None:
    """Write ids.jsonl and the manifest into a temporary folder, then rename it to ``path``."""
    try:
        with atomic_folder(path) as tmp:  # an empty folder at `path` is replaced; a non-empty one was refused before
            n = 0
            with open(tmp / IDS_FILE, "w", encoding="utf-8") as f:
                for spec in ids_source:
                    f.write(json.dumps(spec.id, separators=(",", ":")) + "\n")
                    n += 1
            if n == 0:
                raise ConceptChessError(f"{manifest['dataset_path']}: the dataset has no positions")
            manifest["positions"] = n
            manifest["chunks"] = len(chunk_lengths(n, manifest["chunk_size"]))
            for tap in manifest["taps"]:
                (tmp / tap).mkdir()
            _write_manifest(tmp, manifest)
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):  # the rename found a folder with contents
            raise
        raise ConceptChessError(f"{path}: another extraction created this store meanwhile") from None


class _Lock:
    """An exclusive lock on a store folder for the time of one extraction (released if killed)."""

    def __init__(self, path: Path):
        self.f = open(path / LOCK_FILE, "w")
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.f.close()
            raise ConceptChessError(f"{path}: another extraction is writing to this store") from None

    def release(self) -> None:
        self.f.close()


def extract_activations(network, dataset: str | os.PathLike, store: str | os.PathLike, taps=None, *,
                        pool: str = "full", dtype: str = "float16", chunk_size: int = DEFAULT_CHUNK_SIZE,
                        batch_size: int = 256, device: str = "auto", threads: int | None = None,
                        progress: Progress | None = None,
                        announce: Callable[[ExtractionSize], None] | None = None) -> ActivationFiles:
    """Extract ``taps`` (default: ``input`` and every block) of ``network`` over ``dataset`` into ``store``.

    ``network``: a network file, a :class:`~conceptchess.networks.Network` or a ready
    :class:`~conceptchess.engine.Engine` (then ``device``/``threads`` are its own). Resumes an
    interrupted extraction with the same inputs; returns the finished :class:`ActivationFiles`.
    ``progress(done, total)`` is called as positions are finished (skipped finished chunks count);
    ``announce`` once with the :class:`ExtractionSize` before the first chunk is written (not for a
    complete folder).
    Options, taps, network, dataset (its JSON lines) and an existing folder are all checked before
    the store folder is created; the positions' FENs and moves are checked as their chunk is read,
    and a store this call created is removed if one of them is bad.
    """
    if pool not in POOLS:
        raise ConceptChessError(f"unknown pooling {pool!r}; use {' or '.join(POOLS)}")
    if dtype not in DTYPES:
        raise ConceptChessError(f"unknown dtype {dtype!r}; use {' or '.join(DTYPES)}")
    if int(chunk_size) < 1 or int(batch_size) < 1:
        raise ConceptChessError("chunk size and batch size must be at least 1")
    chunk_size, batch_size = int(chunk_size), int(batch_size)
    store = Path(store)
    if store.exists() and not store.is_dir():
        raise ConceptChessError(f"{store}: exists and is not a folder")
    data_file = positions_path(dataset)
    engine = network if isinstance(network, Engine) else Engine(network, device=device, batch_size=batch_size, threads=threads)
    taps = _resolve_taps(taps, engine)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "complete": False,
        "net_sha256": engine.network.sha256, "net_path": str(engine.network.path),
        "dataset_sha256": dataset_sha256(dataset), "dataset_path": str(dataset),
        "taps": taps, "pool": pool, "dtype": dtype, "chunk_size": chunk_size,
        "shapes": _tap_shapes(engine, taps, pool), "frame": "side-to-move",
        "provider": engine.provider, "batch_size": batch_size, "versions": _versions(),
    }
    old = _read_manifest(store) if store.is_dir() else None
    created = False
    if old is not None:
        why = _mismatch(old, manifest)
        if why:
            raise ConceptChessError(f"{store}: holds activations of different inputs ({why}); choose another output folder")
        manifest = old
    elif store.is_dir() and any(store.iterdir()):
        raise ConceptChessError(f"{store}: folder is not empty and is not an activation folder")
    else:
        _create_store(store, iter_dataset(data_file), manifest)
        created = True
    total = manifest["positions"]
    if manifest["complete"]:
        if progress:
            progress(total, total)
        return ActivationFiles(store)
    lock = _Lock(store)
    try:
        if announce is not None:
            announce(_size(store, manifest))
        _run(engine, store, manifest, iter_dataset(data_file), batch_size, progress)
        manifest["complete"] = True
        if engine.provider != manifest["provider"]:
            manifest["provider"] = f"{manifest['provider']}+{engine.provider}"  # resumed on another provider
        _write_manifest(store, manifest)
    except ConceptChessError:
        if created:  # bad data found mid-way: a fresh store is removed, nothing half-made is left
            shutil.rmtree(store, ignore_errors=True)
        raise
    finally:
        lock.release()
    return ActivationFiles(store)


def _size(store: Path, manifest: dict) -> ExtractionSize:
    """The :class:`ExtractionSize` of a store whose chunk files are partly written (or not at all)."""
    dtype, lengths = manifest["dtype"], chunk_lengths(manifest["positions"], manifest["chunk_size"])
    shapes = {t: tuple(s) for t, s in manifest["shapes"].items()}
    left = sum(activation_bytes(n, {t: shapes[t]}, dtype) for i, n in enumerate(lengths) for t in manifest["taps"]
               if not chunk_is_valid(store / t / chunk_name(i), (n,) + shapes[t], np.dtype(dtype)))
    return ExtractionSize(manifest["positions"], tuple(manifest["taps"]), manifest["pool"], dtype,
                          activation_bytes(manifest["positions"], {t: shapes[t] for t in manifest["taps"]}, dtype), left)


def _run(engine, store: Path, manifest: dict, specs: Iterator, batch_size: int, progress) -> None:
    """Write every missing chunk file; histories of the next chunk are built while this one runs."""
    taps, pool, dtype = manifest["taps"], manifest["pool"], np.dtype(manifest["dtype"])
    shapes = {t: tuple(s) for t, s in manifest["shapes"].items()}
    lengths = chunk_lengths(manifest["positions"], manifest["chunk_size"])
    total = manifest["positions"]
    for tap in taps:
        for stale in (store / tap).glob(".chunk_*.part"):
            stale.unlink(missing_ok=True)

    def missing(i: int) -> list[str]:
        return [t for t in taps if not chunk_is_valid(store / t / chunk_name(i), (lengths[i],) + shapes[t], dtype)]

    def todo() -> Iterator[tuple[int, list, list[str]]]:
        for i, n in enumerate(lengths):
            chunk = list(islice(specs, n))
            if len(chunk) != n:
                raise ConceptChessError(f"{manifest['dataset_path']}: dataset changed during extraction")
            need = missing(i)
            if need:
                yield i, chunk, need

    def histories(item):
        i, chunk, need = item
        return i, need, histories_of(chunk, where=f"{manifest['dataset_path']}: ")[0]

    done = sum(n for i, n in enumerate(lengths) if not missing(i))
    if progress:
        progress(done, total)
    with ThreadPoolExecutor(1) as pool_:
        work = todo()
        nxt = next(work, None)
        pending = pool_.submit(histories, nxt) if nxt else None
        while pending is not None:
            i, need, hist = pending.result()
            nxt = next(work, None)
            pending = pool_.submit(histories, nxt) if nxt else None
            writers = {t: ChunkWriter(store / t / chunk_name(i), (lengths[i],) + shapes[t], dtype) for t in need}
            try:
                blocks = [t for t in need if t != INPUT]
                for s in range(0, lengths[i], batch_size):
                    planes = encode(hist[s : s + batch_size])
                    raw = engine.run_planes(planes, blocks) if blocks else {}
                    raw[INPUT] = planes
                    for t in need:
                        writers[t].write(s, _pooled(raw[t], pool))
                    done += len(planes)
                    if progress:
                        progress(done, total)
                for w in writers.values():
                    w.commit()
            except BaseException:
                for w in writers.values():
                    w.abort()
                if pending is not None:
                    pending.cancel()
                raise
