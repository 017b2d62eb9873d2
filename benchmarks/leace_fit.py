"""LEACE fit speed: :class:`~conceptchess.erasure.HumanConceptEraser` on 50,000 × 4,096 activations, against the
covariance alone, measured in the same run on one core.

Data: synthetic float32 activations the size of a full ``block`` tap of a 64-filter network (64 × 8 × 8 =
4,096 features) over 50,000 positions, carrying random values of every python-chess concept of the library
(89 scalar, 20 binary, 3 categorical), encoded by :func:`~conceptchess.erasure.concept_matrix` (K = 118
columns) and each mixed into the activations along a random direction, plus 256 shared latent factors and
noise (seeded). Timed: ``fit`` (float64 covariance accumulated in batches, eigendecomposition, whitening, SVD —
the ``concept-erasure`` package's LeaceFitter) and ``transform`` of all rows, torch on one thread (target:
fit ≤ 60 s). Baseline: the 4,096 × 4,096 covariance alone (torch float64 ``XᵀX`` over the same batches —
the least any LEACE fit must do) and, beside it, one float64 eigendecomposition of that size. The
largest |cross-covariance| between activations and concepts before and after erasure shows the fit worked.

    .venv/bin/python benchmarks/leace_fit.py [--positions 50000] [--features 4096] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import machine_load
from threadpoolctl import threadpool_limits

from conceptchess.concepts import CONCEPTS
from conceptchess.erasure import BATCH, HumanConceptEraser, concept_matrix


def synthetic(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Activations ``(n, d)`` float32 and the concept matrix of random values of every python-chess concept."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for c in CONCEPTS.values():
        if c.source != "python-chess":
            continue
        if c.type == "scalar":
            columns[c.name] = rng.gamma(2.0, 3.0, n)  # skewed, like counts of pieces, moves, squares
        elif c.type == "binary":
            columns[c.name] = (rng.random(n) < rng.uniform(0.03, 0.5)).astype(np.float64)
        else:
            columns[c.name] = rng.integers(0, len(c.categories), n).astype(np.float64)
    C, names = concept_matrix(columns)
    X = (rng.standard_normal((n, 256), dtype=np.float32) @ rng.standard_normal((256, d), dtype=np.float32)) * np.float32(0.2)
    X += C @ (rng.standard_normal((C.shape[1], d), dtype=np.float32) * np.float32(0.05))
    X += rng.standard_normal((n, d), dtype=np.float32)
    return X, C, names


def max_cross_cov(X: np.ndarray, C: np.ndarray) -> float:
    """max |Cov(x_i, c_j)| over features and concept columns (float64, a batch of rows at a time)."""
    mx, mc = X.mean(0, dtype=np.float64), C.mean(0, dtype=np.float64)
    acc = np.zeros((X.shape[1], C.shape[1]))
    for s in range(0, len(X), BATCH):
        acc += (X[s : s + BATCH] - mx).T @ (C[s : s + BATCH] - mc)
    return float(np.abs(acc / (len(X) - 1)).max())


def covariance_alone(X: np.ndarray) -> float:
    """Seconds for XᵀX in float64 over the same batches the fit uses (torch, one thread)."""
    t0 = time.perf_counter()
    acc = torch.zeros(X.shape[1], X.shape[1], dtype=torch.float64)
    for s in range(0, len(X), BATCH):
        x = torch.from_numpy(X[s : s + BATCH].astype(np.float64))
        acc.addmm_(x.T, x)
    return time.perf_counter() - t0


def eigh_alone(d: int, seed: int) -> float:
    a = torch.randn(d, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    a = a @ a.T
    t0 = time.perf_counter()
    torch.linalg.eigh(a)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--positions", type=int, default=50_000)
    ap.add_argument("--features", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with threadpool_limits(1):  # numpy's BLAS too: one core for everything measured
        X, C, names = synthetic(args.positions, args.features, args.seed)
        before = max_cross_cov(X, C)
        t0 = time.perf_counter()
        eraser = HumanConceptEraser().fit(X, C, columns=names)
        fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        E = eraser.transform(X)
        transform = time.perf_counter() - t0
        after = max_cross_cov(E, C)
        cov = covariance_alone(X)
        eig = eigh_alone(args.features, args.seed)
    n, d = X.shape
    print(f"LEACE fit | {n:,} positions × {d:,} features (float32), {C.shape[1]} concept columns | torch 1 thread | {machine_load()}")
    print(f"HumanConceptEraser.fit:        {fit:6.1f} s  (rank {eraser.rank_}; target ≤ 60 s)")
    print(f"HumanConceptEraser.transform:  {transform:6.1f} s  ({n / transform:,.0f} positions/s)")
    print(f"baseline: covariance XᵀX alone, float64, same batches: {cov:6.1f} s")
    print(f"baseline: one {d}×{d} float64 eigendecomposition:   {eig:6.1f} s")
    print(f"ratio: fit / covariance alone = {fit / cov:.2f}; fit / (covariance + eigendecomposition) = {fit / (cov + eig):.2f}")
    print(f"max |cross-covariance| of activations and concepts: before {before:.3g}, after erasure {after:.3g}")


if __name__ == "__main__":
    main()
