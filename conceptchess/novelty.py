"""Novelty (Schut et al., PNAS 2025): is a concept better explained by the network's own games than by human games?

One tap's activations over positions of human games and over as many positions of the network's own
self-play games give two bases: the right singular vectors of each activation matrix (rows =
positions, raw activations as the network computes them, *not* centred or standardised: the subspace
the activations span, as in the paper). For a concept vector v (unit-normalised) and
k = 1, 2, 4, … the score

    novelty_k(v) = ‖v − P_H,k v‖² − ‖v − P_M,k v‖²

(P_·,k: projection on the top-k singular vectors) is positive when the machine's top-k directions
explain v better than the humans'. A concept is **novel** when it is positive at every k (Schut's
rule). The ks run over powers of two up to the smaller of the two numerical ranks, and below the
feature count (a projection on the whole space explains every vector in both bases).

Space: a :class:`~conceptchess.directions.ConceptDirection` with a standardisation
(``score = ((x − mean) / scale) · v``) is a direction in standardised space; it is read back into the
raw activation space as ``scale ⊙ v`` (the step of the raw activations that moves the standardised ones
along v), then unit-normalised. Directions without a standardisation are used as they are. The
amplification check (:mod:`conceptchess.amplification`) reads directions the same way.

Numerical rank: singular values above ``σ₁ · max(n, features) · ε`` with ε = float32's machine epsilon
(numpy's ``matrix_rank`` rule at the precision the activations have; Schut et al. report 7,857 human
against 8,269 machine dimensions at AlphaZero's layer 19). The control is the novelty distribution
of random directions of the concept's sparsity (:meth:`ConceptDirection.random_control`, seeded).

>>> bases = build_novelty_bases("maia-1100.pb.gz", "human/", "selfplay/", "block5", max_positions=2000)  # doctest: +SKIP
>>> bases.human_rank, bases.machine_rank                                                   # doctest: +SKIP
(1873, 1911)
>>> s = bases.score(direction, controls=200, seed=0)                                       # doctest: +SKIP
>>> s.ks, s.novel, s.control_novel_share                                                  # doctest: +SKIP
((1, 2, 4, …, 1024), True, 0.03)
>>> bases.save("novelty-block5.npz"); NoveltyBases.load("novelty-block5.npz")             # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from conceptchess.activations import POOLS
from conceptchess.datasets import HUMAN_GAMES, MACHINE_GAMES, dataset_origin, dataset_sha256, iter_dataset, read_manifest
from conceptchess.directions import ConceptDirection, load_array
from conceptchess.engine import Engine
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.files import atomic_open
from conceptchess.lc0.encoder import encode
from conceptchess.networks import Network, open_network
from conceptchess.positions import PositionSpec, histories_of
from conceptchess.progress import Progress
from conceptchess.taps import INPUT, check, network_taps

RANK_EPS = float(np.finfo(np.float32).eps)  # the activations' precision, for the numerical rank
POSITIVE = 1e-5  # a score counts as positive above this: the bases are float32, orthonormal to ~1e-6
CONTROL_LEVELS = (0.05, 0.5, 0.95)
META_KEY = "meta"
ARRAYS = ("human", "machine", "human_singular_values", "machine_singular_values")


def pooled_rows(taps: np.ndarray, pooling: str) -> np.ndarray:
    """``[N, C, 8, 8]`` activations as rows of features: flattened (``full``) or averaged over the squares (``mean``)."""
    x = np.asarray(taps, dtype=np.float32)
    return x.mean(axis=(2, 3), dtype=np.float32) if pooling == "mean" else x.reshape(len(x), -1)


def _svd(rows: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(right singular vectors as rows, by falling singular value; the singular values) of ``rows``, in float64."""
    x = np.asarray(rows, dtype=np.float64)
    if x.ndim != 2 or not x.size:
        raise ConceptChessError(f"{what} activations must be a non-empty matrix (positions × features), not shape {list(x.shape)}")
    if not np.all(np.isfinite(x)):
        raise ConceptChessError(f"{what} activations are not all finite")
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    return vt, s


def numerical_rank(singular_values: np.ndarray, shape: tuple[int, int], eps: float = RANK_EPS) -> int:
    """How many singular values of a ``shape`` matrix lie above ``σ₁ · max(shape) · eps``.

    >>> numerical_rank(np.array([3.0, 1.0, 1e-9]), (3, 5))
    2
    """
    s = np.asarray(singular_values, dtype=np.float64)
    if not s.size or s[0] <= 0:
        return 0
    return int(np.count_nonzero(s > s[0] * max(shape) * eps))


@dataclass(frozen=True, eq=False)
class NoveltyBases:
    """The human and machine bases of one tap, with where they came from (:func:`build_novelty_bases`;
    hand-made rows: :meth:`from_rows`)."""

    tap: str
    pooling: str  # what a row of the activation matrices is, as in activation files: "full" [C, 8, 8] flattened, "mean" [C]
    human: np.ndarray  # (human_rank, features) float32: right singular vectors of the human activations, by falling σ
    machine: np.ndarray  # (machine_rank, features) float32: the same for the machine activations
    human_singular_values: np.ndarray  # (min(human_count, features),) float64, falling
    machine_singular_values: np.ndarray  # (min(machine_count, features),) float64, falling
    human_count: int  # positions (rows) of the human activation matrix
    machine_count: int
    rank_eps: float = RANK_EPS  # numerical rank: σ > σ₁ · max(positions, features) · rank_eps
    network_sha256: str | None = None  # the network whose activations these are; None: not recorded
    human_dataset_sha256: str | None = None
    machine_dataset_sha256: str | None = None
    seed: int | None = None  # the seed that chose the positions
    provenance: dict = field(default_factory=dict)  # JSON-able: dataset paths and origins, the self-play network, …

    def __post_init__(self):
        set_ = object.__setattr__
        for name in ("human", "machine"):
            set_(self, name, np.asarray(getattr(self, name), dtype=np.float32))
            set_(self, f"{name}_singular_values", np.asarray(getattr(self, f"{name}_singular_values"), dtype=np.float64).reshape(-1))
        if self.pooling not in POOLS:
            raise ConceptChessError(f"novelty bases: pooling must be {' or '.join(POOLS)}, not {self.pooling!r}")
        if self.human.ndim != 2 or self.machine.ndim != 2 or self.human.shape[1] != self.machine.shape[1]:
            raise ConceptChessError(f"novelty bases: the human {list(self.human.shape)} and machine {list(self.machine.shape)} bases "
                                    "must be matrices over the same features")
        set_(self, "provenance", dict(self.provenance or {}))

    @classmethod
    def from_rows(cls, human: np.ndarray, machine: np.ndarray, *, tap: str, pooling: str = "full", rank_eps: float = RANK_EPS,
                  **provenance) -> NoveltyBases:
        """The bases of two activation matrices (positions × features, as many positions each).
        ``provenance``: the other fields (``network_sha256``, ``human_dataset_sha256``, …)."""
        h, m = np.asarray(human), np.asarray(machine)
        if h.ndim == 2 and m.ndim == 2 and h.shape[1] != m.shape[1]:
            raise ConceptChessError(f"human activations have {h.shape[1]} features, machine ones {m.shape[1]}")
        if len(h) != len(m):
            raise ConceptChessError(f"{len(h)} human and {len(m)} machine positions: novelty compares equal counts")
        (vh, sh), (vm, sm) = _svd(h, "human"), _svd(m, "machine")
        rh, rm = numerical_rank(sh, h.shape, rank_eps), numerical_rank(sm, m.shape, rank_eps)
        return cls(tap, pooling, vh[:rh], vm[:rm], sh, sm, len(h), len(m), rank_eps, **provenance)

    @property
    def features(self) -> int:
        return int(self.human.shape[1])

    @property
    def human_rank(self) -> int:
        return int(len(self.human))

    @property
    def machine_rank(self) -> int:
        return int(len(self.machine))

    @property
    def ks(self) -> tuple[int, ...]:
        """k = 1, 2, 4, … up to the smaller rank and below the feature count."""
        top = min(self.human_rank, self.machine_rank, self.features - 1)
        return tuple(1 << j for j in range(max(top, 1).bit_length()) if 1 << j <= top)

    # -- scoring ------------------------------------------------------------------------------------
    def vector(self, direction: ConceptDirection) -> np.ndarray:
        """The direction as a unit vector of the raw activation space (``scale ⊙ v`` when it is standardised; float64),
        once it is known to read these activations."""
        where = f"direction {direction.name!r}"
        if direction.tap != self.tap:
            raise ConceptChessError(f"{where} reads tap {direction.tap}; these novelty bases are of {self.tap}")
        if direction.pooling is not None and direction.pooling != self.pooling:
            raise ConceptChessError(f"{where} reads {direction.pooling}-pooled activations; these novelty bases are {self.pooling}-pooled")
        if direction.network_sha256 and self.network_sha256 and direction.network_sha256 != self.network_sha256:
            raise ConceptChessError(f"{where} reads network {direction.network_sha256[:12]}…; these novelty bases are network "
                                    f"{self.network_sha256[:12]}…'s")
        if direction.vector.size != self.features:
            raise ConceptChessError(f"{where} has {direction.vector.size} values; these novelty bases have {self.features} features "
                                    f"({self.pooling} pooling)")
        v = direction.vector.astype(np.float64)
        if direction.scale is not None:
            v = v * direction.scale.astype(np.float64)
        return v / np.linalg.norm(v)

    def novelty(self, vectors: np.ndarray) -> np.ndarray:
        """Scores (rows × ks, float64) of unit raw-space vectors (rows): ‖v − P_H,k v‖² − ‖v − P_M,k v‖² for each k of :attr:`ks`,
        that is ‖P_M,k v‖² − ‖P_H,k v‖²."""
        ks = self.ks
        if not ks:
            raise ConceptChessError(f"novelty bases of {self.tap}: ranks {self.human_rank} (human) and {self.machine_rank} (machine) "
                                    f"leave no k to compare ({self.features} features)")
        v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        at = np.asarray(ks) - 1
        explained_h = np.cumsum((v @ self.human.T.astype(np.float64)) ** 2, axis=1)[:, at]
        explained_m = np.cumsum((v @ self.machine.T.astype(np.float64)) ** 2, axis=1)[:, at]
        return explained_m - explained_h

    def score(self, direction: ConceptDirection, *, controls: int = 100, seed: int = 0,
              levels: Sequence[float] = CONTROL_LEVELS) -> NoveltyScore:
        """The novelty of ``direction`` at every k, its verdict, and the control: ``controls`` random directions
        of its sparsity (seeded by ``seed``), scored alike, as quantiles at ``levels`` per k."""
        if controls < 1:
            raise ArgumentError("{controls} must be at least 1 (the random directions of the control)", controls="controls")
        levels = tuple(float(q) for q in levels)
        if not levels or not all(0 <= q <= 1 for q in levels):
            raise ArgumentError("{levels} must be quantile levels in [0, 1]", levels="levels")
        s = self.novelty(self.vector(direction))[0]
        seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=controls)
        c = self.novelty(np.stack([self.vector(direction.random_control(int(x))) for x in seeds]))
        return NoveltyScore(direction.name, direction.sha256, self.tap, self.ks, s, bool(np.all(s > POSITIVE)), self.human_rank,
                            self.machine_rank, controls, seed, levels, np.quantile(c, levels, axis=0),
                            float(np.mean(np.all(c > POSITIVE, axis=1))), np.mean(c >= s, axis=0))

    # -- files ----------------------------------------------------------------------------------------
    def metadata(self) -> dict:
        """Everything but the arrays, as JSON-able values (what :meth:`save` writes as ``meta``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ARRAYS}

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (an ``.npz``: the bases, the singular values and the metadata as JSON), through a temporary
        file renamed into place."""
        path = Path(path)
        arrays = {name: getattr(self, name) for name in ARRAYS}
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays, **{META_KEY: np.array(json.dumps(self.metadata(), sort_keys=True))})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> NoveltyBases:
        """Read bases :meth:`save` wrote (no pickles)."""
        a = load_array(path, "novelty bases")
        if not isinstance(a, np.lib.npyio.NpzFile):
            raise ConceptChessError(f"{path}: not novelty bases (a bare array, not an .npz)")
        with a:
            missing = [k for k in (*ARRAYS, META_KEY) if k not in a.files]
            if missing:
                raise ConceptChessError(f"{path}: not novelty bases (no {', '.join(missing)})")
            try:
                meta = json.loads(str(a[META_KEY]))
            except ValueError as e:
                raise ConceptChessError(f"{path}: its novelty metadata is not JSON ({e})") from None
            known = {f.name for f in fields(cls)} - set(ARRAYS)
            required = {"tap", "pooling", "human_count", "machine_count"}
            if not isinstance(meta, dict) or not required <= set(meta) or set(meta) - known:
                raise ConceptChessError(f"{path}: novelty metadata must name {', '.join(sorted(required))} and nothing but "
                                        f"{', '.join(sorted(known))}")
            return cls(**{k: a[k] for k in ARRAYS}, **meta)


@dataclass(frozen=True, eq=False)
class NoveltyScore:
    """The novelty of one direction against a pair of bases, and its control (:meth:`NoveltyBases.score`)."""

    direction: str  # its name
    direction_sha256: str
    tap: str
    ks: tuple[int, ...]  # 1, 2, 4, … (NoveltyBases.ks)
    scores: np.ndarray  # (len(ks),) float64: ‖v − P_H,k v‖² − ‖v − P_M,k v‖² for unit v, each in [-1, 1]
    novel: bool  # positive (above POSITIVE) at every k: Schut's rule
    human_rank: int
    machine_rank: int
    controls: int  # random directions of the concept's sparsity scored as the control
    control_seed: int
    control_levels: tuple[float, ...]  # quantile levels of control_quantiles
    control_quantiles: np.ndarray  # (len(control_levels), len(ks)) float64: the controls' scores at those levels, per k
    control_novel_share: float  # share of the controls novel by the same rule
    control_at_least: np.ndarray  # (len(ks),) float64: share of the controls scoring at least the concept, per k

    def __str__(self) -> str:
        verdict = "novel" if self.novel else "not novel"
        return (f"{self.direction} at {self.tap}: {verdict} (min score {self.scores.min():+.4f} over k = 1 … {self.ks[-1]}; "
                f"ranks {self.human_rank} human, {self.machine_rank} machine); {self.control_novel_share:.0%} of "
                f"{self.controls} random controls novel")


# -- from a network and two datasets ---------------------------------------------------------------------
def _checked_origin(dataset, wanted: str, role: str) -> dict:
    manifest = read_manifest(dataset)
    origin = dataset_origin(manifest)
    if origin != wanted:
        raise ConceptChessError(f"{dataset}: recorded origin is {origin}, not {wanted} (novelty needs {role})")
    return manifest


def _rows(engine: Engine, specs: list[PositionSpec], where: str, tap: str, pooling: str, batch_size: int,
          progress: Progress | None, done: int, total: int) -> tuple[np.ndarray, int]:
    """Activation rows (float32) of ``specs``, and the positions run so far."""
    histories, _ = histories_of(specs, where=where)
    parts = []
    for s in range(0, len(specs), batch_size):
        planes = encode(histories[s : s + batch_size])
        taps = planes if tap == INPUT else engine.run_planes(planes, [tap])[tap]
        parts.append(pooled_rows(taps, pooling))
        done += len(planes)
        if progress is not None:
            progress(done, total)
    return np.concatenate(parts), done


def _sample(specs: list[PositionSpec], n: int, seed) -> list[PositionSpec]:
    """``n`` of ``specs`` chosen at random by ``seed``, in their order."""
    keep = np.sort(np.random.default_rng(seed).choice(len(specs), size=n, replace=False))
    return [specs[i] for i in keep]


def build_novelty_bases(network: str | os.PathLike | Network, human: str | os.PathLike, machine: str | os.PathLike, tap: str, *,
                        pooling: str = "full", max_positions: int | None = 4096, seed: int = 0, batch_size: int = 256,
                        threads: int | None = None, device: str = "auto", rank_eps: float = RANK_EPS,
                        progress: Progress | None = None) -> NoveltyBases:
    """The novelty bases of ``tap`` of ``network`` from the human-games dataset ``human`` and the network's own
    self-play dataset ``machine``.

    Both datasets must record their origin (``human-games``, ``machine-games``); a self-play dataset that records
    another network than ``network`` is refused. As many positions are taken from each: the smaller dataset's
    count, at most ``max_positions`` (None: no cap), chosen at random by ``seed`` when a dataset has more.
    Activations come from ONNX Runtime (:class:`~conceptchess.engine.Engine`, ``threads``/``device``/``batch_size``
    as there); ``progress(done, total)`` counts the positions run.
    """
    if pooling not in POOLS:
        raise ArgumentError("{pooling} must be " + " or ".join(POOLS), pooling="pooling")
    if max_positions is not None and max_positions < 1:
        raise ArgumentError("{max_positions} must be at least 1", max_positions="max_positions")
    h_manifest = _checked_origin(human, HUMAN_GAMES, "positions of games people played")
    m_manifest = _checked_origin(machine, MACHINE_GAMES, "the network's own self-play games")
    net = network if isinstance(network, Network) else open_network(network)
    check([tap], network_taps(net.blocks), f"network {net.path}")
    player = (m_manifest.get("net") or {}).get("sha256") if isinstance(m_manifest.get("net"), dict) else None
    if player and player != net.sha256:
        raise ConceptChessError(f"{machine}: games of network {player[:12]}…, not of {net.path} ({net.sha256[:12]}…): novelty "
                                "compares human games with the network's own")
    h_specs, m_specs = list(iter_dataset(human)), list(iter_dataset(machine))
    nh, nm = len(h_specs), len(m_specs)
    n = min(nh, nm, max_positions if max_positions is not None else nh)
    if n < 1:
        raise ConceptChessError(f"{human if nh == 0 else machine}: the dataset has no positions")
    engine = Engine(net, device=device, batch_size=batch_size, threads=threads)
    if progress is not None:
        progress(0, 2 * n)
    h_rows, done = _rows(engine, _sample(h_specs, n, [seed, 0]), f"{human}: ", tap, pooling, batch_size, progress, 0, 2 * n)
    m_rows, _ = _rows(engine, _sample(m_specs, n, [seed, 1]), f"{machine}: ", tap, pooling, batch_size, progress, done, 2 * n)
    provenance = {"human_dataset": str(human), "machine_dataset": str(machine), "human_positions_available": nh,
                  "machine_positions_available": nm, "machine_network_sha256": player, "network": str(net.path),
                  "human_made_by": h_manifest.get("made_by"), "machine_made_by": m_manifest.get("made_by"),
                  "space": "raw activations, uncentred", "provider": engine.provider}
    return NoveltyBases.from_rows(h_rows, m_rows, tap=tap, pooling=pooling, rank_eps=rank_eps, network_sha256=net.sha256,
                                  human_dataset_sha256=dataset_sha256(human), machine_dataset_sha256=dataset_sha256(machine),
                                  seed=seed, provenance=provenance)
