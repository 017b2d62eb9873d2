"""Where probes get their inputs: networks (files, checkpoint folders, random-init controls) and activations.

A network entry (``probe run --net``) is a network file or a folder. A folder is a **checkpoint series**: every
``.pb.gz`` / ``.onnx`` / ``.onnx.gz`` in it, ordered by training step (from the ``.json`` beside each
checkpoint that ``conceptchess train`` writes, else the step recorded in the weights, else a
``step<N>`` in the file name); all must share one architecture. With no entries the default series
in ``engines/`` is used.

The **random-init control** of a series is its step-0 checkpoint; for single networks it is a
network of the same architecture with freshly initialised weights (PyTorch's default init, seeded,
batch norm at identity), written once under ``<results>/networks/`` as an lc0 ``.pb.gz``.

Activations are read from activation folders (:mod:`conceptchess.activations`) found under the
extraction folder (default ``<results>/activations``) and any further folders given (``probe run --activations``); what is
missing is extracted there with :func:`~conceptchess.activations.extract_activations`. The ``input``
tap depends only on the positions, so one activation folder of it serves every network. With
``max_positions`` below the dataset's size, the first ``max_positions`` positions are used: from a
folder over the whole dataset if one exists, else from one over a prefix dataset written once under
``<results>/datasets/``. :func:`find_activation_folder` is that choice (the sweep's, and the one
``probe show`` names for mining); :func:`tap_shape` the per-position shape an extraction will have.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from conceptchess import checkpoints
from conceptchess.activations import MANIFEST_FILE, ActivationFiles, extract_activations
from conceptchess.datasets import ORIGINS, DatasetWriter, dataset_origin, dataset_sha256, positions_path, read_manifest
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.lc0.trainable import TrainableLc0Net
from conceptchess.lc0.weights import write_weights
from conceptchess.names import unique
from conceptchess.networks import open_network
from conceptchess.progress import Progress
from conceptchess.taps import INPUT, network_taps, order


@dataclass
class NetInfo:
    """A network as the sweep sees it."""

    path: Path
    sha256: str
    kind: str
    blocks: int
    filters: int | None
    architecture: str
    spec: object | None = None  # NetSpec for .pb.gz files
    run: str | None = None
    step: int | None = None
    role: str = "probed"  # probed | random-init

    @property
    def taps(self) -> list[str]:
        """Every tap a probe can read: ``input`` and the blocks."""
        return network_taps(self.blocks)

    @property
    def label(self) -> str:
        if self.role == "random-init" and self.step is None:
            return f"random-init {self.architecture.split(' ')[0]}"
        if self.step is not None and self.run:
            return checkpoints.step_label(self.run, self.step)
        return checkpoints.stem(self.path)


def net_info(path: str | os.PathLike) -> NetInfo:
    """Open a network file (validating it) and describe it."""
    net = open_network(path)
    p = Path(path)
    run, step = checkpoints.run_and_step(p, net.training_steps)
    filters = net.spec.filters if net.spec is not None else None
    return NetInfo(p, net.sha256, net.kind, net.blocks, filters, net.describe(), net.spec, run, step)


def default_series() -> Path:
    """The project's checkpoint series folder (``engines/``)."""
    return checkpoints.DEFAULT_SERIES


def series(folder: str | os.PathLike) -> list[NetInfo]:
    """The checkpoints of a folder in training order; refuses mixed architectures."""
    folder = Path(folder)
    files = checkpoints.network_files(folder)
    if not files:
        raise ConceptChessError(f"{folder}: no network files (.pb.gz, .onnx, .onnx.gz) in this folder")
    nets = [net_info(p) for p in files]
    archs = {n.architecture for n in nets}
    if len(archs) > 1:
        a = sorted(archs)
        raise ConceptChessError(f"{folder}: checkpoints of mixed architectures ({a[0]} and {a[1]}); a series needs one architecture")
    return sorted(nets, key=lambda n: checkpoints.series_order_key(n.step, n.path.name))


def resolve_networks(entries: list[str | os.PathLike] | None) -> tuple[list[NetInfo], bool]:
    """Networks for ``entries`` (files and/or folders; None or empty: the default series).

    Returns ``(networks in sweep order, whether they form one checkpoint series)``.
    """
    if not entries:
        folder = default_series()
        if not folder.is_dir() or not checkpoints.network_files(folder):
            raise ArgumentError(f"no {{nets}} given and no default series in {folder}", nets="networks")
        entries = [folder]
    nets: list[NetInfo] = []
    folders = 0
    for e in entries:
        p = Path(e)
        if p.is_dir():
            nets += series(p)
            folders += 1
        elif p.exists():
            nets.append(net_info(p))
        else:
            raise ConceptChessError(f"{p}: no such network file or folder")
    nets = unique(nets, key=lambda n: n.sha256)
    # Files of one training run (same run name in their .json, one architecture) are a series too.
    one_run = len(nets) > 1 and nets[0].run is not None and len({n.run for n in nets}) == 1 \
        and len({n.architecture for n in nets}) == 1 and all(n.step is not None for n in nets)
    if one_run:
        nets.sort(key=lambda n: n.step)
    return nets, (folders == 1 and len(entries) == 1) or one_run


def random_init_network(like: NetInfo, seed: int, folder: str | os.PathLike) -> NetInfo:
    """A freshly initialised network of ``like``'s architecture (seeded), written once under ``folder``."""
    if like.spec is None:
        raise ConceptChessError(f"{like.path}: a random-init control needs lc0 .pb.gz weights (this is {like.kind})")
    arch = hashlib.sha256(json.dumps(like.spec.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    path = Path(folder) / f"random-init-{like.blocks}x{like.filters}-{arch}-seed{seed}.pb.gz"
    if not path.exists():
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)
            net = TrainableLc0Net(like.spec)
            net.eval()
            write_weights(path, like.spec, net.folded_state(), training_steps=0)
        finally:
            torch.random.set_rng_state(state)
    info = net_info(path)
    info.role, info.step, info.run = "random-init", None, None
    return info


# -- activation folders ----------------------------------------------------------------------------------
@dataclass
class ActivationFolder:
    path: Path
    net_sha256: str
    dataset_sha256: str
    taps: list[str]
    pool: str
    positions: int


def tap_shape(net: NetInfo, tap: str, pool: str) -> tuple[int, ...] | None:
    """Per-position shape of ``tap`` of ``net`` in an activation folder of ``pool``; None where the width
    is not known before extraction (lc0 ONNX files)."""
    channels = 112 if tap == INPUT else net.filters
    if channels is None:
        return None
    return (channels,) if pool == "mean" else (channels, 8, 8)


def prefix_dataset(results: Path, dataset_sha: str, positions: int) -> Path:
    """Where a sweep writes the first ``positions`` records of a dataset once (``probe run --max-positions``)."""
    return results / "datasets" / f"{dataset_sha[:16]}-first{positions}"


def find_activation_folder(refs: list[ActivationFolder], net_sha: str, tap: str, pool: str, datasets: list[str],
                           positions: int) -> ActivationFolder | None:
    """The first of ``refs`` holding ``tap`` of network ``net_sha`` (any network's for ``input``) pooled by
    ``pool``, over one of ``datasets`` (sha256) with at least ``positions`` rows."""
    for r in refs:
        if r.pool != pool or tap not in r.taps or r.dataset_sha256 not in datasets or r.positions < positions:
            continue
        if tap == INPUT or r.net_sha256 == net_sha:
            return r
    return None


def scan_activation_folders(folders: list[Path]) -> list[ActivationFolder]:
    """Complete activation folders in ``folders`` (each folder itself, or its immediate subfolders)."""
    out = []
    for folder in folders:
        if not folder.is_dir():
            continue
        candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
        for c in candidates:
            f = c / MANIFEST_FILE
            if not f.exists():
                continue
            try:
                m = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if not isinstance(m, dict) or m.get("format") != "conceptchess-activations" or not m.get("complete"):
                continue
            out.append(ActivationFolder(c, m["net_sha256"], m["dataset_sha256"], list(m["taps"]), m["pool"], int(m["positions"])))
    return out


def folder_name(net_sha: str, dataset_sha: str, pool: str, taps: list[str]) -> str:
    """The name of the activation folder a sweep extracts ``taps`` of a network over a dataset into."""
    return f"{net_sha[:12]}-{dataset_sha[:12]}-{pool}-" + "_".join(order(taps))


class Activations:
    """The activations a sweep reads: per (network, tap), an activation folder and how many leading rows to use."""

    def __init__(self, dataset: Path, dataset_sha: str, dataset_size: int, positions: int, ids: list, pool: str,
                 results: Path, folders: list[Path]):
        self.dataset, self.dataset_sha, self.dataset_size = dataset, dataset_sha, dataset_size
        self.positions, self.ids, self.pool = positions, ids, pool
        self.results = results
        self.extract_dir = results / "activations"
        self.folders = [self.extract_dir] + list(folders)
        self._prefix: tuple[Path, str] | None = None
        self._refs: list[ActivationFolder] | None = None

    def refs(self) -> list[ActivationFolder]:
        if self._refs is None:
            self._refs = scan_activation_folders(self.folders)
        return self._refs

    def _datasets(self) -> list[str]:
        shas = [self.dataset_sha]
        if self.positions < self.dataset_size:
            p = self._prefix_path()
            if (p / "manifest.json").exists():
                sha = read_manifest(p).get("positions_sha256")
                if sha:
                    shas.append(sha)
        return shas

    def find(self, net_sha: str, tap: str) -> ActivationFolder | None:
        return find_activation_folder(self.refs(), net_sha, tap, self.pool, self._datasets(), self.positions)

    def _prefix_path(self) -> Path:
        return prefix_dataset(self.results, self.dataset_sha, self.positions)

    def _extraction_dataset(self) -> Path:
        """The dataset to extract from: the whole one, or its first ``positions`` records written once."""
        if self.positions >= self.dataset_size:
            return self.dataset
        p = self._prefix_path()
        if not (p / "manifest.json").exists():
            manifest = {"made_by": "probe run --max-positions", "prefix_of": self.dataset_sha, "source_path": str(self.dataset)}
            origin = dataset_origin(read_manifest(self.dataset))
            if origin in ORIGINS:  # a prefix has its dataset's origin
                manifest["origin"] = origin
            with open(positions_path(self.dataset), encoding="utf-8") as f, DatasetWriter(p, manifest, overwrite=True) as w:
                for i, line in enumerate(f):
                    if i >= self.positions:
                        break
                    if line.strip():
                        w.write(json.loads(line))
        return p

    def missing(self, net_sha: str, taps: list[str]) -> list[str]:
        """The taps of ``taps`` no activation folder holds yet for network ``net_sha``."""
        return [t for t in taps if self.find(net_sha, t) is None]

    def ensure(self, net: NetInfo, taps: list[str], progress: Progress | None = None, threads: int | None = None) -> Path | None:
        """Extract whatever of ``taps`` no activation folder has yet, for ``net``; the folder it extracted into, if any."""
        missing = self.missing(net.sha256, taps)
        if not missing:
            return None
        data = self._extraction_dataset()
        folder = self.extract_dir / folder_name(net.sha256, dataset_sha256(data), self.pool, missing)
        extract_activations(net.path, data, folder, missing, pool=self.pool, progress=progress, threads=threads)
        self._refs = None
        return folder

    def load(self, net_sha: str, tap: str) -> tuple[np.ndarray, tuple[int, ...]]:
        """``(X (positions, features) float32, per-position shape of the tap)``."""
        return read_matrix(self.locate(net_sha, tap), tap, self.positions, self.ids)

    def locate(self, net_sha: str, tap: str) -> Path:
        """The activation folder holding ``tap`` of network ``net_sha`` (for :func:`read_matrix`)."""
        ref = self.find(net_sha, tap)
        if ref is None:
            raise ConceptChessError(f"no activations of tap {tap!r} for network {net_sha[:12]}… (extraction missing)")
        return ref.path


def read_matrix(folder: Path, tap: str, positions: int, ids: list) -> tuple[np.ndarray, tuple[int, ...]]:
    """The first ``positions`` rows of ``tap`` in the activation folder ``folder`` as ``(X float32, per-position shape)``,
    after checking that the folder's position ids are ``ids``."""
    files = ActivationFiles(folder)
    if files.ids[:positions] != ids[:positions]:
        raise ConceptChessError(f"{folder}: its position ids do not match the dataset's")
    arr = files[tap][:positions]
    shape = tuple(arr.shape[1:])
    X = np.empty((positions, int(np.prod(shape))), dtype=np.float32)
    X[...] = arr.reshape(positions, -1)
    return X, shape
