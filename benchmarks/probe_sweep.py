"""Probe sweep speed and accuracy against naive per-cell scikit-learn LassoCV, measured in the same run.

Sweep: ``run_sweep`` over C concepts × every tap (input + 6 blocks) × K checkpoints of the default
series in engines/ (step 0 included: it is the random-init control), on the first N positions of the
shared Lichess games, controls on (input planes, random init, shuffled labels), written to a fresh
SQLite database with every probe vector saved — everything the CLI does. Activations and labels are
prepared first (extraction and labelling are not timed: "activations already extracted").

Baseline: ``sklearn.linear_model.LassoCV`` fitted naively per cell (one concept × tap × checkpoint,
default 100 alphas, the same standardised features and the same validation games as its single CV
fold) on a few scalar-concept cells. LassoCV then refits on train + validation, i.e. on 20 % more
positions than any probe of the sweep sees, so the comparison that measures the solver uses
scikit-learn's choice of α fitted (``Lasso``) on the sweep's own training rows; the refit's score is
printed beside it. Printed: the sweep's wall time (target ≤ 300 s for 60 × 7 × 8 on 20,000
positions, 2 cores), the baseline's time per cell and its extrapolation to the sweep's cells, and the
largest test-R² difference between the two on the baseline's cells (target ≤ 0.01).

    .venv/bin/python benchmarks/probe_sweep.py [--positions 20000] [--concepts 60] [--checkpoints 8]
                                               [--baseline-cells 4] [--work build/probe_bench]

The work folder keeps the dataset, activation stores and labels between runs (extraction of 8 × 20,000
positions takes several minutes the first time).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import GAMES, need

from conceptchess.paths import BUILD_DIR


def build_dataset(path: Path, n: int) -> Path:
    """Every position of the first games of the shared PGN, up to ``n`` (kept between runs)."""
    from conceptchess.games import Sampling, pgn_dataset

    if not (path / "manifest.json").exists():
        pgn_dataset([need(GAMES)], path, sampling=Sampling(max_positions=n))
    return path


def pick_checkpoints(k: int) -> list[Path]:
    from conceptchess.probing.sources import default_series, series

    nets = series(default_series())
    if len(nets) < k:
        print(f"note: the default series has {len(nets)} checkpoints; using all of them")
        return [n.path for n in nets]
    idx = sorted({int(round(i)) for i in np.linspace(0, len(nets) - 1, k)})
    return [nets[i].path for i in idx]


def baseline(plan, view, cells, acts) -> list[tuple[str, str, str, float, float, float, float]]:
    """Naive LassoCV per cell: (network, tap, concept, seconds, test R² of its α on the training rows,
    the sweep's test R², test R² of LassoCV's own refit on train + validation)."""
    from sklearn.linear_model import Lasso, LassoCV
    from sklearn.model_selection import PredefinedSplit

    from conceptchess.probing.split import Standardizer

    s = plan.split
    out = []
    for net, tap, concept, Y in cells:
        X, _ = acts.load(net.sha256, tap)
        std = Standardizer.fit(X, s.train)
        Z = std.transform(X)
        y = Y
        tv = np.concatenate([s.train, s.val])
        fold = np.r_[np.full(len(s.train), -1), np.zeros(len(s.val))]
        t0 = time.perf_counter()
        model = LassoCV(cv=PredefinedSplit(fold), max_iter=5000, tol=1e-4).fit(Z[tv], y[tv])
        secs = time.perf_counter() - t0
        refit = float(model.score(Z[s.test], y[s.test]))
        same_rows = Lasso(alpha=model.alpha_, max_iter=5000, tol=1e-4).fit(Z[s.train], y[s.train])
        ours = next(r.score for r in view.rows if r.concept == concept and r.tap == tap
                    and r.network_id == next(n.id for n in view.networks if n.sha256 == net.sha256))
        out.append((net.label, tap, concept, secs, float(same_rows.score(Z[s.test], y[s.test])), float(ours), refit))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=int, default=20000)
    ap.add_argument("--concepts", type=int, default=60)
    ap.add_argument("--checkpoints", type=int, default=8)
    ap.add_argument("--baseline-cells", type=int, default=4, help="LassoCV cells to time (0: skip the baseline)")
    ap.add_argument("--work", type=Path, default=BUILD_DIR / "probe_bench")
    ap.add_argument("--threads", type=int, default=None, help="torch threads with --jobs 1 (default: torch's, i.e. every core)")
    ap.add_argument("--jobs", type=int, default=None, help="worker processes (default: the sweep's auto choice)")
    args = ap.parse_args()

    import torch

    from conceptchess.probing import SweepRequest, plan_sweep, resolve_targets, run_sweep
    from conceptchess.probing.results import load_run
    from conceptchess.probing.sources import Activations
    from conceptchess.store import Database

    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    dataset = build_dataset(work / f"positions-{args.positions}", args.positions)
    nets = pick_checkpoints(args.checkpoints)
    targets = [t.name for t in resolve_targets(None)][: args.concepts]
    results = work / "results"
    req = SweepRequest(dataset=dataset, nets=nets, concepts=targets, results=results, jobs=args.jobs)
    plan = plan_sweep(req)
    print(f"{len(plan.targets)} concepts × {len(plan.taps[plan.networks[0].sha256])} taps × {len(plan.networks)} checkpoints "
          f"({', '.join(n.label for n in plan.networks)}) on {plan.positions} positions")
    from conceptchess.probing.sweep import sweep_workers

    jobs, threads = sweep_workers(args.jobs, 10**9, plan.positions)
    print(f"cells solved by {jobs} worker process{'es' if jobs > 1 else ''} × {threads if jobs > 1 else torch.get_num_threads()} torch thread(s)")

    # Preparation (not timed): activations of every checkpoint, concept labels.
    acts = Activations(plan.dataset, plan.dataset_sha, plan.dataset_size, plan.positions, plan.ids, "full", results, [])
    t0 = time.perf_counter()
    for k, n in enumerate(plan.networks):
        acts.ensure(n, plan.taps[n.sha256] if k == 0 else [t for t in plan.taps[n.sha256] if t != "input"])
    from conceptchess.probing.sweep import _labels

    Y = _labels(plan, None)
    print(f"prepared activations and labels in {time.perf_counter() - t0:.0f} s (not part of the timing)")

    # The sweep, timed, into a fresh database.
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.sqlite")
        stamps: list[tuple[float, int]] = []

        def progress_for(stage: str):
            """Time stamps of the probing stage (cells done); other stages unrecorded."""
            return (lambda done, total: stamps.append((time.perf_counter(), done))) if stage == "probing" else (lambda done, total: None)

        start = time.perf_counter()
        run_id = run_sweep(plan, db=db, progress_for=progress_for)
        sweep_s = time.perf_counter() - start
        view = load_run(db, run_id)
    cells = len(plan.networks) * len(plan.taps[plan.networks[0].sha256])
    probes = len(view.rows)
    first_cell = stamps[1][0] - stamps[0][0] if len(stamps) > 1 else float("nan")
    print(f"sweep: {sweep_s:.1f} s for {probes} probes ({cells} network × tap cells, input tap computed once in "
          f"{first_cell:.1f} s), {1000 * sweep_s / max(probes, 1):.1f} ms per probe incl. its shuffled control — target ≤ 300 s")

    if args.baseline_cells <= 0:
        return
    scalar = [j for j, t in enumerate(plan.targets) if t.kind == "regression"]
    last = plan.networks[-1]
    rng = np.random.default_rng(0)
    picks = []
    taps = [t for t in plan.taps[last.sha256] if t != "input"]
    for c in range(args.baseline_cells):
        j = scalar[int(rng.integers(len(scalar)))]
        tap = taps[c % len(taps)] if c % 2 == 0 else taps[-1 - (c % len(taps))]
        picks.append((last, tap, plan.targets[j].name, Y[:, j]))
    rows = baseline(plan, view, picks, acts)
    per_cell = float(np.mean([r[3] for r in rows]))
    worst = max(abs(r[4] - r[5]) for r in rows)
    for net, tap, concept, secs, theirs, ours, refit in rows:
        print(f"  {net} {tap} {concept}: LassoCV {secs:.1f} s, its α on the training rows: test R² {theirs:.4f} "
              f"(refit on train+val {refit:.4f}); sweep {ours:.4f} (Δ {ours - theirs:+.4f})")
    regression_probes = sum(1 for r in view.rows if r.metric == "r2")
    print(f"baseline: naive LassoCV {per_cell:.1f} s per cell → ~{per_cell * regression_probes / 60:.0f} min for the sweep's "
          f"{regression_probes} scalar probes alone, without controls (sweep: {sweep_s:.0f} s for all {probes}, "
          f"~{per_cell * regression_probes / sweep_s:.0f}× faster)")
    print(f"largest |test R² difference| on the baseline's cells: {worst:.4f} (target ≤ 0.01)")


if __name__ == "__main__":
    main()
