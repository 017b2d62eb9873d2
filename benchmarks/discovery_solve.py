"""Discovery solve time: one dynamic concept at a 4,096-feature tap against scikit-learn's L1 SVM, same run.

Setup (not timed; kept in ``--work`` between runs): roots from the shared Lichess games, Schut-style
rollouts from them by maia-1900's search (:func:`~conceptchess.rollouts.rollouts_dataset`) in two sizes,
and the rollouts' ``block5`` activations, full (64 filters × 8 × 8 = 4,096 features per position):

- small: depth 5, 2 lines a branch ply, 400 playouts: tens of (optimal, sub-optimal) pairs a root (all plies);
- big: depth 10, 8 lines a branch ply (value gap 0.05, visit share 0.5), 800 playouts: a few hundred pairs a root.

Timed per root and case, the median of ``--repeats`` on one core (BLAS/OpenMP threads 1, HiGHS threads 1):

(a) ``DynamicConceptDiscoverer(plies="all").fit``: pairs, standardisation and the L1 LP (HiGHS through
    cvxpy, column generation): one concept. Target ≤ 1 s.
(b) baseline: scikit-learn's ``LinearSVC(penalty="l1", dual=False, fit_intercept=False)`` on the same
    constraints: the standardised pairwise differences z⁺ − z⁻ labelled +1 and their mirrors labelled −1
    (built beforehand: only its fit is timed).

Beside each: non-zeros, and the shares of pairs meeting margin 1 and ordered (v·(z⁺ − z⁻) > 0). The LP
meets the margin on every pair (or says it fell back to a soft margin); the SVM's squared hinge trades
pairs for sparsity. The first fit of the process (importing cvxpy) is timed apart.

    .venv/bin/python benchmarks/discovery_solve.py [--roots 4] [--repeats 5] [--work build/discovery_bench]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from _common import DATA, machine_load, need, read_games
from threadpoolctl import threadpool_limits

from conceptchess.activations import ActivationFiles, extract_activations
from conceptchess.discovery import DynamicConceptDiscoverer, rollout_activations, rollout_pairs
from conceptchess.paths import BUILD_DIR
from conceptchess.rollouts import RolloutSettings, rollouts_dataset

MAIA1900 = DATA / "weights" / "maia-1900.pb.gz"
TAP = "block5"
CASES = {
    "small": RolloutSettings(nodes=400, depth=5, lines_per_ply=2),
    "big": RolloutSettings(nodes=800, depth=10, lines_per_ply=8, value_gap=0.05, visit_share=0.5),
}


def roots_file(path: Path, count: int) -> Path:
    """``count`` middle-game positions of the shared games (ply 16, then every 40th), one a game at most."""
    if not path.exists():
        recs = []
        for gi, game in enumerate(read_games()):
            moves = [m.uci() for m in game.mainline_moves()]
            if len(moves) > 30:
                recs.append({"id": f"g{gi}-p16", "moves": moves[:16]})
            if len(recs) == count:
                break
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def prepare(work: Path, roots: int) -> dict[str, Path]:
    """The rollouts and activation folders of every case (made once, reused)."""
    src = roots_file(work / f"roots{roots}.jsonl", roots)
    out = {}
    for name, settings in CASES.items():
        data, acts = work / f"{name}{roots}", work / f"{name}{roots}_acts"
        if not (data / "manifest.json").exists():
            t0 = time.perf_counter()
            rollouts_dataset(MAIA1900, src, data, settings, threads=1, device="cpu", overwrite=True)
            print(f"  (setup) rollouts {name}: {time.perf_counter() - t0:.1f} s")
        if not acts.exists():
            extract_activations(MAIA1900, data, acts, [TAP], threads=1, device="cpu")
        out[name] = acts
    return out


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--roots", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--work", type=Path, default=BUILD_DIR / "discovery_bench")
    args = ap.parse_args()
    need(MAIA1900, "the network maia-1900.pb.gz")
    from sklearn.svm import LinearSVC

    folders = prepare(args.work, args.roots)
    print(f"tap {TAP} of maia-1900 (full: 4,096 features) | one core | median of {args.repeats} | {machine_load()}")
    est = DynamicConceptDiscoverer(plies="all", solver_options={"threads": 1})
    rows = []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LinearSVC's convergence notes; soft margins are reported below
        first = True
        for name, folder in folders.items():
            X, meta = rollout_activations(ActivationFiles(folder), TAP)
            for root, pairs in rollout_pairs(meta, "all").items():
                if first:
                    t0 = time.perf_counter()
                    est.fit(X, meta, root)
                    print(f"first fit of the process (imports cvxpy): {time.perf_counter() - t0:.2f} s")
                    first = False
                t_lp, fitted = median_time(lambda: est.fit(X, meta, root), args.repeats)
                D = (X[pairs.pairs[:, 0]].astype(np.float64) - X[pairs.pairs[:, 1]]) / fitted.scale_
                svc = LinearSVC(penalty="l1", dual=False, fit_intercept=False, max_iter=10_000)
                t_svc, svc = median_time(lambda: svc.fit(np.vstack([D, -D]), np.r_[np.ones(len(D)), -np.ones(len(D))]), args.repeats)
                g_lp, g_svc = D @ fitted.coef_, D @ svc.coef_[0]
                rows.append((name, str(root), len(pairs), t_lp, fitted.rounds_, fitted.n_nonzero_, fitted.soft_margin_, g_lp, t_svc,
                             int(np.count_nonzero(svc.coef_)), g_svc))
    print(f"{'case':6} {'root':10} {'pairs':>5} | {'LP s':>6} {'rounds':>6} {'nnz':>4} {'margin':>6} {'order':>6} {'soft':>4} | "
          f"{'SVC s':>6} {'nnz':>4} {'margin':>6} {'order':>6} | LP/SVC")
    for name, root, n, t_lp, rounds, nnz, soft, g_lp, t_svc, svc_nnz, g_svc in rows:
        print(f"{name:6} {root:10} {n:5d} | {t_lp:6.3f} {rounds:6d} {nnz:4d} {np.mean(g_lp >= 1 - 1e-6):6.2f} "
              f"{np.mean(g_lp > 0):6.2f} {'yes' if soft else 'no':>4} | {t_svc:6.3f} {svc_nnz:4d} "
              f"{np.mean(g_svc >= 1 - 1e-6):6.2f} {np.mean(g_svc > 0):6.2f} | {t_lp / t_svc:5.2f}")
    worst = max(r[3] for r in rows)
    print(f"slowest concept: {worst:.3f} s (target ≤ 1 s: {'met' if worst <= 1.0 else 'NOT met'})")


if __name__ == "__main__":
    main()
