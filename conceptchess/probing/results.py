"""Reading probe results back: a run's grid of scores, per-concept summaries, one concept across runs.

>>> view = load_run(db, 3)                                  # doctest: +SKIP
>>> view.score("in_check", view.networks[-1].id, "block4")   # doctest: +SKIP
0.97
>>> [s.concept for s in summarize(view)][:2]                # doctest: +SKIP
['us_pawns', 'them_pawns']
>>> curves, why_not = when_curves(view)                     # doctest: +SKIP
>>> curves[0].steps, curves[0].best                         # doctest: +SKIP
([0, 1, 2, 6, …, 1000], [0.68, 0.66, …, 0.74])

Every row knows the labels it was trained and tested on (:meth:`ResultRow.labels`: positives and
negatives per split side, or the label variance of a scalar concept) and says when its test side has
too few of a class to carry a score (:attr:`ResultRow.too_few`). :func:`mining_handoffs` names the
best probe of a concept the way ``puzzles mine --direction`` takes it, with the activation folder and
dataset that command reads. :func:`when_curves` reads a checkpoint series' run as McGrath et al.'s
"when" plot: per checkpoint, the best block score and the same statistic of each control.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conceptchess.datasets import read_manifest
from conceptchess.errors import ConceptChessError
from conceptchess.names import unique
from conceptchess.probing.cell import NO_FIT
from conceptchess.probing.sources import find_activation_folder, folder_name, prefix_dataset, scan_activation_folders
from conceptchess.store import probes as queries
from conceptchess.taps import INPUT, is_block, order, sort_key

#: A concept "is there" at a cell when its score reaches this (per metric): R² 0.5, balanced accuracy 0.8.
DEFAULT_THRESHOLDS = {"r2": 0.5, "balanced_accuracy": 0.8}
#: Chance level per metric (for normalised colour scales): what a probe of an unrelated label scores.
CHANCE = {"r2": 0.0, "balanced_accuracy": 0.5}
#: A binary probe whose test games hold fewer positives (or negatives) than this is flagged: its
#: balanced accuracy and interval rest on a handful of positions (28 mates in one of 6,000 positions
#: gave 0.843, CI 0.616–0.966).
MIN_TEST_CLASS = 30
METRIC_NAMES = {"r2": "R²", "balanced_accuracy": "balanced accuracy"}


@dataclass(frozen=True)
class SplitLabels:
    """The labels of one split side of a probe: positives and negatives (binary) or their variance (scalar).

    >>> str(SplitLabels(28, 872)), str(SplitLabels(variance=1.2345)), str(SplitLabels())
    ('28+/872−', 'var 1.23', '–')
    """

    positives: int | None = None
    negatives: int | None = None
    variance: float | None = None

    def __str__(self) -> str:
        if self.positives is not None and self.negatives is not None:
            return f"{self.positives}+/{self.negatives}−"
        return "–" if self.variance is None else f"var {self.variance:.3g}"

    @property
    def minority(self) -> int | None:
        """The rarer class's count (binary)."""
        return None if self.positives is None or self.negatives is None else min(self.positives, self.negatives)


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
    details: dict | None = None

    @property
    def no_fit(self) -> bool:
        """The probe ended at all-zero weights: its score is that of a constant prediction."""
        return self.status == NO_FIT

    def labels(self, side: str) -> SplitLabels:
        """The labels of split side ``side`` (train, val, test); empty for rows stored before they were recorded."""
        d = self.details or {}
        return SplitLabels(d.get(f"{side}_positives"), d.get(f"{side}_negatives"), d.get(f"{side}_variance"))

    @property
    def too_few(self) -> str | None:
        """``too few positives`` (or ``negatives``) when a scored binary probe's test games hold fewer than
        :data:`MIN_TEST_CLASS` of that class; else None."""
        return too_few(self.labels("test")) if self.score is not None else None


def too_few(test: SplitLabels) -> str | None:
    """The flag of a test side with fewer than :data:`MIN_TEST_CLASS` positives (or negatives), else None."""
    if test.positives is not None and test.positives < MIN_TEST_CLASS:
        return "too few positives"
    if test.negatives is not None and test.negatives < MIN_TEST_CLASS:
        return "too few negatives"
    return None


def too_few_note(flag: str, test: SplitLabels) -> str:
    """Why a row is flagged, in one sentence."""
    cls = "positive" if flag.endswith("positives") else "negative"
    n = test.positives if cls == "positive" else test.negatives
    return (f"{flag}: {n} {cls} position{'s' if n != 1 else ''} in the test games (fewer than {MIN_TEST_CLASS}): "
            "the score and its interval rest on them")


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

    def pool(self, concept: str) -> str:
        """The pooling of the activations ``concept`` was probed on: ``full`` (8×8) or ``mean`` (per channel)."""
        return queries.result_pool(self.settings, concept) or "full"

    def metric(self, concept: str) -> str:
        for r in self.rows:
            if r.concept == concept:
                return r.metric
        raise ConceptChessError(f"concept {concept!r} is not in run {self.id}")

    def labels(self, concept: str) -> tuple[SplitLabels, SplitLabels]:
        """The labels of ``concept`` in the training and the test games (the same in every cell of a run)."""
        row = next((r for r in self.rows if r.concept == concept and r.details), None)
        return (row.labels("train"), row.labels("test")) if row else (SplitLabels(), SplitLabels())

    def too_few(self, concept: str) -> str | None:
        """``too few positives`` / ``negatives`` when ``concept`` has a score and its test games hold too few of a class."""
        return too_few(self.labels(concept)[1]) if any(r.concept == concept and r.score is not None for r in self.rows) else None

    def control_of(self, network_id: int) -> NetRow | None:
        """The random-init control of a network (None: the network is its own control, or the run has none)."""
        net = next(n for n in self.networks if n.id == network_id)
        sha = ((self.settings.get("random_init") or {}).get(net.architecture) or {}).get("sha256")
        return next((n for n in self.networks if n.sha256 == sha and n.id != network_id), None)


def load_run(db, run_id: int) -> RunView:
    """Everything of one run, from the database."""
    with db.session() as s:
        found = queries.run_with_dataset(s, run_id)
        if found is None:
            raise ConceptChessError(f"no probe run {run_id} in {db.url}")
        run, ds = found
        networks = [NetRow(n.id, n.sha256, rn.label, rn.role, n.run, n.step, n.architecture) for rn, n in queries.run_networks(s, run.id)]
        results = [_result_row(r) for r in queries.run_results(s, run.id)]
        return RunView(run.id, run.settings, run.status, (ds.path or "") if ds else "", networks, results)


def _result_row(r) -> ResultRow:
    return ResultRow(r.network_id, r.tap, r.concept, r.metric, r.status, r.reason, r.score, r.ci_low, r.ci_high,
                     r.control_input, r.control_random, r.control_shuffled, r.selectivity, r.nonzero, r.features, r.vector_path,
                     r.details)


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
    train: SplitLabels = SplitLabels()  # the labels of the training games (the same in every cell of a run)
    test: SplitLabels = SplitLabels()  # and of the test games
    too_few: str | None = None  # "too few positives" / "too few negatives" in the test games (see MIN_TEST_CLASS)


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
        train, test = view.labels(c)
        flag = view.too_few(c)
        if not rows:
            reasons = [r.reason for r in view.rows if r.concept == c and r.reason and not r.no_fit]
            inp = next((r.score for r in view.rows if r.concept == c and r.tap == INPUT and r.score is not None), None)
            out.append(ConceptSummary(c, metric, None, None, None, None, None, None, thr, None, inp, None, None, None,
                                      reasons[0] if reasons else None, no_fit, len(scored), train, test, flag))
            continue
        best = max(rows, key=lambda r: r.score)
        first = None
        for nid in probed:
            if any(r.network_id == nid and r.score >= thr for r in rows):
                first = labels[nid]
                break
        out.append(ConceptSummary(c, metric, best.score, best.tap, labels[best.network_id], best.ci_low, best.ci_high, first, thr,
                                  best.selectivity, best.control_input, best.control_random, best.control_shuffled, best.nonzero,
                                  None, no_fit, len(scored), train, test, flag))
    return out


# -- when: one concept across a checkpoint series ------------------------------------------------------------
@dataclass(frozen=True)
class WhenCurve:
    """One concept across the checkpoint series of a run (McGrath et al.'s "when" plot): per checkpoint,
    the best test score over its block taps, beside the same statistic of its controls.

    Each control is the best block score too, so that the selection over taps, which favours the probed
    network, favours its controls equally.
    """

    concept: str
    metric: str  # r2 | balanced_accuracy
    pool: str  # full | mean: the activations it was probed on
    steps: list[int]  # training step of each checkpoint, in series order
    labels: list[str]  # each checkpoint's label in the run
    best: list[float | None]  # per checkpoint: its highest block-tap test score (None: no block tap scored)
    best_taps: list[str | None]  # where that score is
    ci_low: list[float | None]  # the bootstrap interval of that cell
    ci_high: list[float | None]
    shuffled: list[float | None]  # per checkpoint: the shuffled-label control's highest block-tap score
    random_init: float | None  # the random-init network's (step 0 of a series) highest block-tap score; None: no control
    random_label: str | None  # that network's label in the run
    input: float | None  # the input-plane control (one probe of the raw planes, the same for every checkpoint)


def series_steps(view: RunView) -> tuple[list[NetRow], str | None]:
    """The run's probed networks as one checkpoint series in step order, or ``([], why not)``."""
    probed = view.probed
    if not probed:
        return [], "the run probed no network"
    if any(n.step is None for n in probed):
        return [], ("the run's networks are not a checkpoint series: no training step is recorded for "
                    + ", ".join(n.label for n in probed if n.step is None))
    if len({n.run for n in probed}) > 1:
        return [], "the run's networks come from several training runs (" + ", ".join(sorted({str(n.run) for n in probed})) + ")"
    if len(probed) < 2:
        return [], f"the run probed a single checkpoint ({probed[0].label})"
    return sorted(probed, key=lambda n: n.step), None


def _best_block(rows: list[ResultRow]) -> ResultRow | None:
    scored = [r for r in rows if is_block(r.tap) and r.score is not None]
    return max(scored, key=lambda r: r.score) if scored else None


def when_curves(view: RunView) -> tuple[list[WhenCurve], str | None]:
    """A :class:`WhenCurve` per concept of a run whose probed networks are one checkpoint series (training
    steps recorded, :func:`series_steps`); else ``([], why there is none)``."""
    series, why = series_steps(view)
    if why:
        return [], why
    by_cell: dict[tuple[str, int], list[ResultRow]] = {}
    for r in view.rows:
        by_cell.setdefault((r.concept, r.network_id), []).append(r)
    control = view.control_of(series[-1].id)
    out = []
    for c in view.concepts:
        best = [_best_block(by_cell.get((c, n.id), [])) for n in series]
        shuffled = [max((r.control_shuffled for r in by_cell.get((c, n.id), []) if is_block(r.tap) and r.control_shuffled is not None),
                        default=None) for n in series]
        rnd = _best_block(by_cell.get((c, control.id), [])) if control is not None else None
        inp = next((r.score for r in view.rows if r.concept == c and r.tap == INPUT and r.score is not None), None)
        out.append(WhenCurve(c, view.metric(c), view.pool(c), [n.step for n in series], [n.label for n in series],
                             [None if b is None else b.score for b in best], [None if b is None else b.tap for b in best],
                             [None if b is None else b.ci_low for b in best], [None if b is None else b.ci_high for b in best],
                             shuffled, None if rnd is None else rnd.score, None if control is None else control.label, inp))
    return out, None


def concept_rows(db, concept: str, run_id: int | None = None) -> list[tuple[int, str, ResultRow]]:
    """``(run id, network label, row)`` for every stored result of ``concept`` (one run, or all)."""
    with db.session() as s:
        rows = sorted(queries.concept_results(s, concept, run_id), key=lambda r: (r[0].run_id, r[2], sort_key(r[0].tap)))
        return [(r[0].run_id, r[1], _result_row(r[0])) for r in rows]


# -- the hand-off to mining ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class MiningHandoff:
    """How to mine puzzles with a run's best probe of a concept: what ``puzzles mine`` takes.

    The stored probe vector is in raw activation space (the sweep maps it back from the standardised
    space it was fitted in), so mining needs no ``--mean``/``--scale``: ``--direction`` names it.
    """

    run: int
    concept: str
    tap: str
    network: str  # its label in the run
    network_path: str | None
    metric: str
    score: float
    too_few: str | None
    pool: str
    dataset: str  # the positions dataset the activation folder was (or would be) extracted from: mining's --dataset
    activations: Path | None  # an activation folder holding the tap; None: none is left (see extract_to)
    extract_to: Path  # where `activations extract` would put one

    @property
    def direction(self) -> str:
        """``RUN:CONCEPT:TAP``, as ``puzzles mine --direction`` takes it."""
        return f"{self.run}:{self.concept}:{self.tap}"


def mining_handoffs(db, concept: str, run_id: int | None = None) -> list[MiningHandoff]:
    """Per run (one, or every run with ``concept``): its best probe of ``concept`` — the highest test score
    of a fitted probe (status ``ok``) at a block tap of a probed network — with the activation folder
    under the run's results folder that holds that tap of that network, if one is left."""
    out = []
    with db.session() as s:
        rows = queries.concept_results(s, concept, run_id)
        for rid in sorted({r.run_id for r, _, _ in rows}):
            run, ds = queries.run_with_dataset(s, rid)
            nets = {n.id: (rn, n) for rn, n in queries.run_networks(s, rid)}
            fitted = [r for r, _, _ in rows if r.run_id == rid and r.status == "ok" and r.score is not None and is_block(r.tap)
                      and nets[r.network_id][0].role == "probed"]
            if not fitted or ds is None:
                continue
            best = max(fitted, key=lambda r: r.score)
            rn, net = nets[best.network_id]
            settings = run.settings or {}
            pool, positions = queries.result_pool(settings, concept) or "full", int(settings.get("positions") or ds.positions or 0)
            results = Path(run.results_dir) if run.results_dir else Path(ds.path).parent
            shas = [ds.sha256]
            prefix = prefix_dataset(results, ds.sha256, positions)
            if (prefix / "manifest.json").exists():
                shas += [sha for sha in [read_manifest(prefix).get("positions_sha256")] if sha]
            found = find_activation_folder(scan_activation_folders([results / "activations"]), net.sha256, best.tap, pool, shas, positions)
            out.append(MiningHandoff(rid, concept, best.tap, rn.label, net.path, best.metric, best.score, _result_row(best).too_few,
                                     pool, str(prefix) if found and found.dataset_sha256 != ds.sha256 else ds.path,
                                     found.path if found else None,
                                     results / "activations" / folder_name(net.sha256, ds.sha256, pool, [best.tap])))
    return out
