"""Concept directions: the one value that carries a concept between stages.

A :class:`ConceptDirection` is a vector over one tap's flattened (pooled) activations, with the
standardisation it assumes (``score = ((x - mean) / scale) · v``; none: ``x · v``), the pooling of the
activation files it reads, the networks and dataset it was made from, its kind (a ``probe``, a
``discovered`` direction, or a ``random-control`` of matched sparsity) and where it came from
(``provenance``: a probe's run, concept, split and score; a control's original). Probes emit it
(:func:`conceptchess.store.directions.probe_direction` reads a stored one), discovery emits it (:mod:`conceptchess.discovery`),
and mining consumes it (:func:`conceptchess.puzzles.mine.mine`).

It is saved as one ``.npz`` (arrays ``vector``, ``mean``, ``scale`` and a JSON ``meta``); a bare
``.npy`` vector, or an ``.npz`` with ``direction``/``vector``/``coef`` and optional ``mean`` and
``scale``/``std`` arrays, loads too when its tap is given.

>>> d = ConceptDirection("fork", "block3", np.array([0.0, 2.0, 0.0, -1.0]))
>>> d.nonzeros, d.kind, d.random_control(7).kind
(2, 'probe', 'random-control')
>>> path = d.save("fork.npz")                                     # doctest: +SKIP
>>> ConceptDirection.load(path).sha256 == d.sha256                # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from conceptchess.errors import ConceptChessError
from conceptchess.files import atomic_open

KINDS = ("probe", "discovered", "random-control")
VECTOR_KEYS = ("direction", "vector", "coef")  # the array names an .npz direction may use, in order of preference
META_KEY = "meta"


def load_array(path: str | os.PathLike, what: str):
    """``np.load`` of a ``.npy``/``.npz`` file (no pickles), with one-line errors naming ``what`` it should hold."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConceptChessError(f"{path}: no such {what} file") from None
    except (OSError, ValueError) as e:
        raise ConceptChessError(f"{path}: not a .npy/.npz array ({e})") from None


@dataclass(frozen=True, eq=False)
class ConceptDirection:
    """A concept direction over the flattened activations of ``tap`` (compare two by :attr:`sha256`)."""

    name: str
    tap: str  # the tap name, as in activation files and probe results ("input", "block3", …)
    vector: np.ndarray  # (features,) float32, finite, not all zeros; features = the tap's per-position size after pooling
    mean: np.ndarray | None = None  # (features,) float32: standardisation mean, or None
    scale: np.ndarray | None = None  # (features,) float32, no zeros: standardisation scale, or None
    kind: str = "probe"  # one of KINDS
    seed: int | None = None  # the seed of a random control
    pooling: str | None = None  # the activation files' pooling it reads ("full" or "mean"); None: not recorded
    network_sha256: str | None = None  # the network whose activations it reads; None: not recorded
    dataset_sha256: str | None = None  # the positions it was made from; None: not recorded
    provenance: dict = field(default_factory=dict)  # JSON-able: where it came from (run, concept, split, score, …)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "vector", np.asarray(self.vector, dtype=np.float32).reshape(-1))
        if not np.all(np.isfinite(self.vector)) or not np.any(self.vector):
            raise ConceptChessError(f"direction {self.name!r}: must be finite and not all zeros")
        for attr in ("mean", "scale"):
            a = getattr(self, attr)
            if a is not None:
                a = np.asarray(a, dtype=np.float32).reshape(-1)
                if a.size == 1:
                    a = np.full(self.vector.size, a[0], np.float32)
                if a.size != self.vector.size:
                    raise ConceptChessError(f"direction {self.name!r}: {attr} has {a.size} values, the direction {self.vector.size}")
                set_(self, attr, a)
        if self.scale is not None and np.any(self.scale == 0):
            raise ConceptChessError(f"direction {self.name!r}: standardisation scale has zeros")
        if self.kind not in KINDS:
            raise ConceptChessError(f"direction {self.name!r}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if not self.tap:
            raise ConceptChessError(f"direction {self.name!r}: no tap")
        set_(self, "provenance", dict(self.provenance or {}))

    @property
    def sha256(self) -> str:
        """What the direction scores with: its tap, vector and standardisation (names and provenance aside)."""
        h = hashlib.sha256(self.tap.encode())
        for a in (self.vector, self.mean, self.scale):
            h.update(b"-" if a is None else np.ascontiguousarray(a, np.float32).tobytes())
        return h.hexdigest()

    @property
    def nonzeros(self) -> int:
        return int(np.count_nonzero(self.vector))

    def random_control(self, seed: int) -> ConceptDirection:
        """A random direction with as many non-zeros as this one (random support, Gaussian values,
        the same L2 norm), the same standardisation, tap and pooling: a control of matched sparsity."""
        rng = np.random.default_rng(seed)
        v = np.zeros_like(self.vector)
        support = rng.choice(v.size, self.nonzeros, replace=False)
        v[support] = rng.standard_normal(self.nonzeros).astype(np.float32)
        v *= np.linalg.norm(self.vector) / np.linalg.norm(v)
        return replace(self, name=f"random-{self.name}-seed{seed}", vector=v, kind="random-control", seed=seed,
                       provenance={"control_of": self.name, "control_of_sha256": self.sha256})

    def scores(self, activations, dataset=None) -> np.ndarray:
        """Concept score of every position of an :class:`~conceptchess.activations.ActivationFiles`
        (float64, one per position). ``dataset`` is not needed (scorers from the board take it)."""
        shape = activations.shape(self.tap)
        size = int(np.prod(shape))
        if self.pooling is not None and activations.pool != self.pooling:
            raise ConceptChessError(f"direction {self.name!r} reads {self.pooling}-pooled activations; {activations.path} "
                                    f"is {activations.pool}-pooled")
        net = activations.manifest.get("net_sha256")
        if self.network_sha256 is not None and net and net != self.network_sha256:
            raise ConceptChessError(f"direction {self.name!r} reads network {self.network_sha256[:12]}…; the activations of "
                                    f"{activations.path} are network {net[:12]}…'s")
        if size != self.vector.size:
            raise ConceptChessError(f"direction {self.name!r} has {self.vector.size} values; tap {self.tap} of {activations.path} has "
                                    f"{'×'.join(map(str, shape))} = {size} per position ({activations.pool} pooling)")
        w = self.vector.astype(np.float64)
        b = 0.0
        if self.scale is not None:
            w = w / self.scale
        if self.mean is not None:
            b = float(self.mean.astype(np.float64) @ w)
        out = []
        for chunk in activations[self.tap].iter_chunks():
            x = np.asarray(chunk, dtype=np.float32).reshape(len(chunk), -1)
            out.append(x @ w.astype(np.float32) - b)
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def metadata(self) -> dict:
        """Everything but the arrays, as JSON-able values (what :meth:`save` writes as ``meta``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("vector", "mean", "scale")}

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (an ``.npz``: the arrays and the metadata as JSON), through a temporary file renamed into place."""
        path = Path(path)
        arrays = {"vector": self.vector, META_KEY: np.array(json.dumps(self.metadata(), sort_keys=True))}
        arrays.update({k: a for k in ("mean", "scale") if (a := getattr(self, k)) is not None})
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, tap: str | None = None, name: str | None = None, mean: str | os.PathLike | None = None,
             scale: str | os.PathLike | None = None, kind: str | None = None) -> ConceptDirection:
        """From a file :meth:`save` wrote, or from a bare ``.npy`` vector (or an ``.npz`` with
        ``direction``/``vector``/``coef`` and optional ``mean`` and ``scale``/``std``) read at ``tap``;
        ``mean`` and ``scale``: ``.npy`` files of a standardisation (not with a saved direction,
        which carries its own). ``name`` (default: the file's name) and ``kind`` (default ``probe``)
        override what the file says."""
        a = load_array(path, "direction")
        if not isinstance(a, np.lib.npyio.NpzFile):
            return cls._bare(path, a, None, None, tap, name, mean, scale, kind)
        with a:
            keys = set(a.files)
            if META_KEY in keys:
                return cls._saved(path, a, tap, name, mean, scale, kind)
            key = next((k for k in VECTOR_KEYS if k in keys), None)
            if key is None:
                raise ConceptChessError(f"{path}: an .npz direction needs a 'direction', 'vector' or 'coef' array (has {sorted(keys)})")
            m = a["mean"] if "mean" in keys else None
            s = a["scale"] if "scale" in keys else a["std"] if "std" in keys else None
            return cls._bare(path, a[key], m, s, tap, name, mean, scale, kind)

    @classmethod
    def _bare(cls, path, vector, m, s, tap, name, mean, scale, kind) -> ConceptDirection:
        if not tap:
            raise ConceptChessError(f"{path}: a bare direction vector needs its tap")
        if mean is not None:
            m = load_array(mean, "mean")
        if scale is not None:
            s = load_array(scale, "scale")
        return cls(name or Path(path).name.split(".")[0], tap, vector, m, s, kind or "probe")

    @classmethod
    def _saved(cls, path, a, tap, name, mean, scale, kind) -> ConceptDirection:
        try:
            meta = json.loads(str(a[META_KEY]))
        except ValueError as e:
            raise ConceptChessError(f"{path}: its direction metadata is not JSON ({e})") from None
        known = {f.name for f in fields(cls)} - {"vector", "mean", "scale"}
        if not isinstance(meta, dict) or not {"name", "tap"} <= set(meta) or set(meta) - known:
            raise ConceptChessError(f"{path}: direction metadata must name its name and tap and nothing but {', '.join(sorted(known))}")
        if mean is not None or scale is not None:
            raise ConceptChessError(f"{path}: a saved direction carries its own standardisation; mean and scale files do not apply")
        if tap and tap != meta["tap"]:
            raise ConceptChessError(f"{path}: the direction reads tap {meta['tap']}, not {tap}")
        if name:
            meta["name"] = name
        if kind:
            meta["kind"] = kind
        keys = set(a.files)
        return cls(vector=a["vector"], mean=a["mean"] if "mean" in keys else None, scale=a["scale"] if "scale" in keys else None,
                   **meta)

