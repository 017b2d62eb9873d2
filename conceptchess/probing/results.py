"""Reading probe results back: a run's grid of scores, per-concept summaries, one concept across runs.

>>> view = load_run(db, 3)                                  # doctest: +SKIP
>>> view.score("in_check", view.networks[-1].id, "block4")   # doctest: +SKIP
0.97
>>> [s.concept for s in summarize(view)][:2]                # doctest: +SKIP
['us_pawns', 'them_pawns']
"""

from __future__ import annotations

from dataclasses import dataclass

from conceptchess.errors import ConceptChessError
from conceptchess.names import unique
from conceptchess.probing.cell import NO_FIT
from conceptchess.store import probes as queries
from conceptchess.taps import INPUT, is_block, order, sort_key

#: A concept "is there" at a cell when its score reaches this (per metric): R² 0.5, balanced accuracy 0.8.
DEFAULT_THRESHOLDS = {"r2": 0.5, "balanced_accuracy": 0.8}
#: Chance level per metric (for normalised colour scales): what a probe of an unrelated label scores.
CHANCE = {"r2": 0.0, "balanced_accuracy": 0.5}


@dataclass
class NetRow:
    id: int
    sha256: str
    label: str
    role: str
    run: str | None
    step: int | None
    architecture: str | None


@dataclass
class ResultRow:
    network_id: int
    tap: str
    concept: str
    metric: str
    status: str
    reason: str | None
    score: float | None
    ci_low: float | None
    ci_high: float | None
    control_input: float | None
    control_random: float | None
    control_shuffled: float | None
    selectivity: float | None
    nonzero: int | None
    features: int | None
    vector_path: str | None

    @property
    def no_fit(self) -> bool:
        """The probe ended at all-zero weights: its score is that of a constant prediction."""
        return self.status == NO_FIT


@dataclass
class RunView:
    id: int
    settings: dict
    status: str
    dataset: str
    networks: list[NetRow]  # sweep order (random-init controls first)
    rows: list[ResultRow]

    def __post_init__(self):
        self._index = {(r.network_id, r.tap, r.concept): r for r in self.rows}

    @property
    def concepts(self) -> list[str]:
        order = self.settings.get("concepts") or []
        seen = unique(order + [r.concept for r in self.rows])
        return [c for c in seen if any(r.concept == c for r in self.rows)]

    @property
    def taps(self) -> list[str]:
        return order({r.tap for r in self.rows})

    @property
    def probed(self) -> list[NetRow]:
        return [n for n in self.networks if n.role == "probed"]

    @property
    def controls(self) -> list[NetRow]:
        return [n for n in self.networks if n.role == "random-init"]

    def get(self, concept: str, network_id: int, tap: str) -> ResultRow | None:
        return self._index.get((network_id, tap, concept))

    def score(self, concept: str, network_id: int, tap: str) -> float | None:
        r = self.get(concept, network_id, tap)
        return None if r is None else r.score

    def metric(self, concept: str) -> str:
        for r in self.rows:
            if r.concept == concept:
                return r.metric
        raise ConceptChessError(f"concept {concept!r} is not in run {self.id}")


def load_run(db, run_id: int) -> RunView:
    """Everything of one run, from the database."""
    with db.session() as s:
        found = queries.run_with_dataset(s, run_id)
        if found is None:
            raise ConceptChessError(f"no probe run {run_id} in {db.url}")
        run, ds = found
        networks = [NetRow(n.id, n.sha256, rn.label, rn.role, n.run, n.step, n.architecture) for rn, n in queries.run_networks(s, run.id)]
        results = [_result_row(r) for r in queries.run_results(s, run.id)]
        return RunView(run.id, run.settings, run.status, ds.path if ds else "", networks, results)


def _result_row(r) -> ResultRow:
    return ResultRow(r.network_id, r.tap, r.concept, r.metric, r.status, r.reason, r.score, r.ci_low, r.ci_high,
                     r.control_input, r.control_random, r.control_shuffled, r.selectivity, r.nonzero, r.features, r.vector_path)


def latest_run_id(db) -> int:
    with db.session() as s:
        rid = queries.latest_run_id(s)
    if rid is None:
        raise ConceptChessError(f"no probe runs in {db.url} (run `conceptchess probe run` first)")
    return int(rid)


@dataclass
class ConceptSummary:
    """One concept of a run at its best block tap (over the probed networks)."""

    concept: str
    metric: str
    best_score: float | None
    best_tap: str | None
    best_network: str | None
    ci_low: float | None
    ci_high: float | None
    first_network: str | None  # first network (in sweep order) where a block tap reaches the threshold
    threshold: float
    selectivity: float | None
    control_input: float | None
    control_random: float | None
    control_shuffled: float | None
    nonzero: int | None
    skipped: str | None = None
    no_fit: int = 0  # cells of this concept (any network, any tap) whose probe ended at all-zero weights
    cells: int = 0  # cells of this concept with a score


def summarize(view: RunView, thresholds: dict[str, float] | None = None) -> list[ConceptSummary]:
    """Per concept: best block-tap score over the probed networks, where it is, its controls, and when it appears."""
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    labels = {n.id: n.label for n in view.networks}
    probed = [n.id for n in view.probed]
    out = []
    for c in view.concepts:
        rows = [r for r in view.rows if r.concept == c and r.network_id in probed and is_block(r.tap) and r.score is not None]
        metric = view.metric(c)
        thr = thresholds.get(metric, 0.5)
        scored = [r for r in view.rows if r.concept == c and r.score is not None]
        no_fit = sum(r.no_fit for r in scored)
        if not rows:
            reasons = [r.reason for r in view.rows if r.concept == c and r.reason and not r.no_fit]
            inp = next((r.score for r in view.rows if r.concept == c and r.tap == INPUT and r.score is not None), None)
            out.append(ConceptSummary(c, metric, None, None, None, None, None, None, thr, None, inp, None, None, None,
                                      reasons[0] if reasons else None, no_fit, len(scored)))
            continue
        best = max(rows, key=lambda r: r.score)
        first = None
        for nid in probed:
            if any(r.network_id == nid and r.score >= thr for r in rows):
                first = labels[nid]
                break
        out.append(ConceptSummary(c, metric, best.score, best.tap, labels[best.network_id], best.ci_low, best.ci_high, first, thr,
                                  best.selectivity, best.control_input, best.control_random, best.control_shuffled, best.nonzero,
                                  None, no_fit, len(scored)))
    return out


def concept_rows(db, concept: str, run_id: int | None = None) -> list[tuple[int, str, ResultRow]]:
    """``(run id, network label, row)`` for every stored result of ``concept`` (one run, or all)."""
    with db.session() as s:
        rows = sorted(queries.concept_results(s, concept, run_id), key=lambda r: (r[0].run_id, r[2], sort_key(r[0].tap)))
        return [(r[0].run_id, r[1], _result_row(r[0])) for r in rows]
