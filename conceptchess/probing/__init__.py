"""Sparse linear concept probes: what a network knows, where (which tap) and when (which checkpoint).

For every concept × tap × network, an L1-regularised linear probe (the Lasso for scalar concepts,
L1 logistic regression for binary ones, one-vs-rest for the categories of categorical ones) is fitted
on standardised activations of the training games, its L1 strength chosen on the validation games,
and scored on the test games (R² or balanced accuracy, with a game-level bootstrap interval). Each
score comes with three controls, on by default: the same probe on the ``input`` tap (the raw 112
planes), on a random-initialised network of the same architecture (the step-0 checkpoint of a
series), and on shuffled labels (selectivity = score − shuffled score, Hewitt & Liang 2019). The
probe vectors are kept as ``.npy`` files (concept directions for mining and erasure).

Modules: :mod:`~conceptchess.probing.solvers` (batched ADMM for L1 on a shared Gram matrix),
:mod:`~conceptchess.probing.regularisation` (regularisation paths: warm-started λ sequences, the validation choice),
:mod:`~conceptchess.probing.estimators` (scikit-learn estimators: import them from there, this
package does not load scikit-learn),
:mod:`~conceptchess.probing.split` (split by game, standardisation, bootstrap),
:mod:`~conceptchess.probing.targets` (concepts → targets and labels),
:mod:`~conceptchess.probing.sources` (networks, series, random-init, activation folders),
:mod:`~conceptchess.probing.cell` (one network × tap), :mod:`~conceptchess.probing.sweep` (a run:
validation, then planner → executor → writer), :mod:`~conceptchess.probing.planner` (the cells left to
do), :mod:`~conceptchess.probing.writer` (database rows and probe vector files, resume),
:mod:`~conceptchess.probing.results` (reading results back). Cells run on an executor of
:mod:`conceptchess.executors`; database statements live in :mod:`conceptchess.store.probes`.

>>> from conceptchess.probing import SweepRequest, plan_sweep, run_sweep          # doctest: +SKIP
>>> run_sweep(plan_sweep(SweepRequest("positions/", nets=["engines/"], concepts="in_check")))  # doctest: +SKIP
"""

from conceptchess.probing.cell import ProbeSettings, TargetResult, probe_matrix
from conceptchess.probing.split import Split, Standardizer, split_by_game
from conceptchess.probing.sweep import SweepPlan, SweepRequest, plan_sweep, run_sweep
from conceptchess.probing.targets import Target, resolve_targets

__all__ = ["ProbeSettings", "Split", "Standardizer", "SweepPlan", "SweepRequest", "Target", "TargetResult", "plan_sweep",
           "probe_matrix", "resolve_targets", "run_sweep", "split_by_game"]
