"""The study's report: solve rates, each expert's before → after changes, and concept vs control across experts.

A report is a value (:class:`Report`) of :class:`Rate`, :class:`Change` and :class:`Comparison` rows,
computed from the graded answers in the database with seeded bootstrap intervals; :func:`plot_report`
and :func:`write_report_html` draw it, and the ``*_cells`` functions give its tables as text to any
shell (the HTML page, the terminal).

>>> rep = report(db, seed=0, output=None)                   # doctest: +SKIP
>>> [(c.group, c.delta) for c in rep.comparisons]           # doctest: +SKIP
[('concept', 0.25), ('control', 0.0), ..., ('concept − control', 0.25)]
"""

from __future__ import annotations

import html
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sqlalchemy import select

from conceptchess.bootstrap import draw_clusters
from conceptchess.errors import ConceptChessError
from conceptchess.files import atomic_path
from conceptchess.paths import PUZZLES_DIR
from conceptchess.puzzles.records import PuzzleRecord
from conceptchess.store.puzzles import PHASES, Answer, EvalSession, Expert, Puzzle

REPORT_PREFIX = PUZZLES_DIR / "eval-report"


def group_of(p: PuzzleRecord) -> str:
    """The row label of a puzzle in the report: its concept, or the control it belongs to."""
    if p.kind == "concept":
        return p.concept or "concept"
    if p.kind == "control-random":
        return "control: random direction"
    if p.kind == "control-human":
        return f"control: human {p.concept}" if p.concept else "control: human concept"
    return "lichess" if p.source == "lichess" else p.kind


# the sign of each cell's solve rate in an expert's change: before, after, then (difference-in-differences)
# the baseline's before and after
_SIGNS = (-1.0, 1.0, 1.0, -1.0)


def expert_delta(cells: Sequence[np.ndarray]) -> float:
    """One expert's change: ``after − before`` solve rate of ``(before, after)``, or the difference-in-differences
    ``(after − before) − (base_after − base_before)`` of ``(before, after, base_before, base_after)``.

    >>> expert_delta((np.array([0., 1.]), np.array([1., 1.]), np.array([0., 0.]), np.array([0., 1.])))
    0.0
    """
    return float(sum(s * np.mean(c) for s, c in zip(_SIGNS, cells)))


def bootstrap_delta(experts: Sequence[Sequence[np.ndarray]], rng: np.random.Generator,
                    resamples: int = 2000) -> tuple[float, float, float]:
    """The mean over ``experts`` of each one's :func:`expert_delta` (its cells: 1.0 solved, 0.0 not), and its
    95% percentile interval from a two-level bootstrap: the experts are drawn with replacement, then each
    drawn expert's answers in each cell are drawn with replacement (afresh for every draw of that expert).

    With one expert this is the bootstrap of that expert's answers alone.

    >>> bootstrap_delta([(np.zeros(3), np.ones(3))] * 2, np.random.default_rng(0), 100)
    (1.0, 1.0, 1.0)
    """
    cells = [tuple(np.asarray(c, dtype=float) for c in e) for e in experts]
    if not cells:
        raise ConceptChessError("a change needs at least one expert")
    for e in cells:
        if len(e) not in (2, 4) or any(c.ndim != 1 or not len(c) for c in e):
            raise ConceptChessError("each expert needs answers in each of (before, after) or (before, after, base_before, base_after)")
    n = len(cells)
    point = float(np.mean([expert_delta(e) for e in cells]))
    drawn = draw_clusters(rng, n, resamples)
    deltas = np.zeros((resamples, n))
    for i, e in enumerate(cells):
        slots = drawn == i
        k = int(slots.sum())
        if k:
            d = np.zeros(k)
            for sign, c in zip(_SIGNS, e):
                d += sign * c[rng.integers(0, len(c), size=(k, len(c)))].mean(axis=1)
            deltas[slots] = d
    lo, hi = np.percentile(deltas.mean(axis=1), [2.5, 97.5])
    return point, float(lo), float(hi)


@dataclass(frozen=True)
class Rate:
    """One expert's answers to one group's puzzles in one phase."""

    expert: str
    group: str  # group_of the puzzles: a concept, a control, lichess
    phase: str
    n: int  # answers
    solved: int  # first move correct
    rate: float  # solved / n
    line_rate: float | None  # correct lines among the answers whose line is known
    seconds: float | None  # median time
    confidence: float | None  # mean, 1–5


@dataclass(frozen=True)
class Change:
    """One expert's before → after change on one group's puzzles; the interval resamples that expert's answers
    (None when a phase has a single answer: resampling one answer gives a point, not an interval)."""

    expert: str
    group: str
    n_before: int  # answers before
    n_after: int  # answers after
    before: float  # solve rate
    after: float
    delta: float  # after − before
    ci_low: float | None  # 95% bootstrap interval of delta
    ci_high: float | None

    @property
    def n_answers(self) -> int:
        return self.n_before + self.n_after


@dataclass(frozen=True)
class Comparison:
    """A before → after change across experts, one puzzle kind (or concept − control) at a time.

    It rests only on the experts who have both phases (for ``concept − control``: both phases of both
    kinds): ``delta`` is the mean of their own changes (for ``concept − control`` the mean of their
    differences-in-differences), ``before``/``after`` the means of their own rates (of their concept − control
    differences); the interval resamples experts, then each one's answers (:func:`bootstrap_delta`).
    With fewer than 2 such experts there is no estimate: the numbers are None and ``refused_reason``
    says why.
    """

    group: str  # concept, control, control-random, control-human, imported, or concept − control
    n_experts: int  # experts the row rests on
    n_answers: int  # their answers in the cells compared
    before: float | None
    after: float | None
    delta: float | None
    ci_low: float | None  # 95% bootstrap interval of delta
    ci_high: float | None
    excluded: tuple[str, ...] = ()  # experts with answers here but a phase missing
    refused_reason: str | None = None


@dataclass(frozen=True)
class Report:
    """What :func:`report` found: rates, each expert's changes, the comparisons across experts, and the files."""

    rates: tuple[Rate, ...] = ()  # per expert × group × phase
    changes: tuple[Change, ...] = ()  # per expert × group with both phases
    comparisons: tuple[Comparison, ...] = ()  # across experts: concept, controls, imported, concept − control
    seed: int = 0
    resamples: int = 2000
    png: Path | None = None
    html: Path | None = None


@dataclass(frozen=True)
class _Graded:
    expert: str
    phase: str
    group: str
    kind: str
    first: bool
    line: bool | None
    seconds: float | None
    confidence: int | None


def _answers(db) -> list[_Graded]:
    with db.session() as s:
        q = (select(Answer, EvalSession, Expert, Puzzle).join(EvalSession, Answer.session_id == EvalSession.id)
             .join(Expert, EvalSession.expert_id == Expert.id).join(Puzzle, Answer.puzzle_id == Puzzle.id))
        return [_Graded(e.name, sess.phase, group_of(PuzzleRecord.of(p)), p.kind, bool(a.first_move_correct), a.line_correct, a.seconds,
                        a.confidence) for a, sess, e, p in s.execute(q)]


COMPARED_KINDS = ("concept", "control", "control-random", "control-human", "imported")
CONCEPT_MINUS_CONTROL = "concept − control"
MIN_EXPERTS = 2


def _kinds_of(kind: str) -> tuple[str, ...]:
    """The comparisons a puzzle of ``kind`` counts in (a control counts as ``control`` and as itself)."""
    return ("control", kind) if kind.startswith("control") else (kind,)


def _comparison(group: str, parts: tuple[str, ...], cells: dict[tuple[str, str, str], list[float]], rng: np.random.Generator,
                resamples: int) -> Comparison | None:
    """The row of the kinds ``parts`` (one kind, or concept and control for a difference-in-differences);
    None when no expert answered puzzles of one of them before or after."""
    keys = [(kind, phase) for kind in parts for phase in ("before", "after")]
    seen = [{e for (k, e, _) in cells if k == kind} for kind in parts]
    if not all(seen):
        return None
    experts = sorted(set().union(*seen))
    both = [e for e in experts if all((k, e, ph) in cells for k, ph in keys)]
    excluded = tuple(e for e in experts if e not in both)
    n_answers = sum(len(cells[(k, e, ph)]) for e in both for k, ph in keys)
    if len(both) < MIN_EXPERTS:
        what = " and ".join(parts) + (" puzzles each" if len(parts) > 1 else " puzzles")
        return Comparison(group, len(both), n_answers, None, None, None, None, None, excluded,
                          f"fewer than {MIN_EXPERTS} experts have both phases of {what} ({len(both)} of {len(experts)} do)")
    # per expert: (before, after) or, for concept − control, (before, after, base_before, base_after)
    per_expert = [tuple(np.array(cells[(k, e, ph)]) for k, ph in keys) for e in both]
    delta, lo, hi = bootstrap_delta(per_expert, rng, resamples)
    before = float(np.mean([x[0].mean() - (x[2].mean() if len(x) == 4 else 0.0) for x in per_expert]))
    after = float(np.mean([x[1].mean() - (x[3].mean() if len(x) == 4 else 0.0) for x in per_expert]))
    return Comparison(group, len(both), n_answers, before, after, delta, lo, hi, excluded)


def report(db, *, seed: int = 0, resamples: int = 2000, output: str | os.PathLike | None = REPORT_PREFIX) -> Report:
    """Solve rates per expert × concept × phase, each expert's before → after changes, and the changes
    across experts (:class:`Comparison`: concept puzzles, controls, imported, concept − control), with
    seeded bootstrap CIs; writes ``<output>.png`` and ``<output>.html`` unless ``output`` is None."""
    rows = _answers(db)
    if not rows:
        raise ConceptChessError("no answers recorded yet")
    rng = np.random.default_rng(seed)
    by_cell: dict[tuple, list[_Graded]] = defaultdict(list)
    for r in rows:
        by_cell[(r.expert, r.group, r.phase)].append(r)
    phase_rank = {p: i for i, p in enumerate(PHASES)}
    rates = []
    for (expert, group, phase), rs in sorted(by_cell.items(), key=lambda kv: (kv[0][0], kv[0][1], phase_rank[kv[0][2]])):
        lines = [r.line for r in rs if r.line is not None]
        secs = [r.seconds for r in rs if r.seconds is not None]
        conf = [r.confidence for r in rs if r.confidence is not None]
        rates.append(Rate(expert, group, phase, len(rs), sum(r.first for r in rs), float(np.mean([r.first for r in rs])),
                          float(np.mean(lines)) if lines else None, float(np.median(secs)) if secs else None,
                          float(np.mean(conf)) if conf else None))
    changes = []
    for expert in sorted({r.expert for r in rows}):
        for group in sorted({r.group for r in rows}):
            b = np.array([r.first for r in by_cell.get((expert, group, "before"), [])], float)
            a = np.array([r.first for r in by_cell.get((expert, group, "after"), [])], float)
            if not (len(b) and len(a)):
                continue
            d, lo, hi = bootstrap_delta([(b, a)], rng, resamples) if min(len(b), len(a)) > 1 else (expert_delta((b, a)), None, None)
            changes.append(Change(expert, group, len(b), len(a), float(b.mean()), float(a.mean()), d, lo, hi))
    cells: dict[tuple[str, str, str], list[float]] = defaultdict(list)  # (kind, expert, phase) → 1.0 solved / 0.0 not
    for r in rows:
        if r.phase in ("before", "after"):
            for kind in _kinds_of(r.kind):
                cells[(kind, r.expert, r.phase)].append(float(r.first))
    comparisons = [_comparison(kind, (kind,), cells, rng, resamples) for kind in COMPARED_KINDS]
    comparisons.append(_comparison(CONCEPT_MINUS_CONTROL, ("concept", "control"), cells, rng, resamples))
    rep = Report(tuple(rates), tuple(changes), tuple(c for c in comparisons if c is not None), seed, resamples)
    if output is not None:
        rep = replace(rep, png=plot_report(rep, Path(str(output) + ".png")))
        rep = replace(rep, html=write_report_html(rep, Path(str(output) + ".html")))
    return rep


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    with atomic_path(path) as tmp:
        write(tmp)
    return path


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _pts(delta: float | None, lo: float | None, hi: float | None) -> tuple[str, str]:
    if delta is None:
        return "–", "–"
    return f"{100 * delta:+.0f} pts", "–" if lo is None else f"[{100 * lo:+.0f}, {100 * hi:+.0f}]"


# the report's tables as text, shared by the HTML page and the terminal
RATE_HEAD = ("expert", "concept", "phase", "n", "solved", "rate", "line", "median s", "confidence")
CHANGE_HEAD = ("expert", "concept", "answers", "before", "after", "change", "95% CI")
COMPARISON_HEAD = ("comparison", "experts", "answers", "before", "after", "change", "95% CI", "note")


def rate_cells(r: Rate) -> list[str]:
    return [r.expert, r.group, r.phase, str(r.n), str(r.solved), _pct(r.rate), _pct(r.line_rate),
            "–" if r.seconds is None else f"{r.seconds:.0f}", "–" if r.confidence is None else f"{r.confidence:.1f}"]


def change_cells(c: Change) -> list[str]:
    return [c.expert, c.group, f"{c.n_before} + {c.n_after}", _pct(c.before), _pct(c.after), *_pts(c.delta, c.ci_low, c.ci_high)]


def comparison_note(c: Comparison) -> str:
    """Why a row is refused, and who it leaves out."""
    out = [f"refused: {c.refused_reason}"] if c.refused_reason else []
    if c.excluded:
        out.append(f"left out (a phase missing): {', '.join(c.excluded)}")
    return "; ".join(out)


def comparison_cells(c: Comparison) -> list[str]:
    # concept − control's before and after are differences of rates
    rate = (lambda x: "–" if x is None else f"{100 * x:+.0f} pts") if c.group == CONCEPT_MINUS_CONTROL else _pct
    return [c.group, str(c.n_experts), str(c.n_answers), rate(c.before), rate(c.after), *_pts(c.delta, c.ci_low, c.ci_high),
            comparison_note(c)]


CHANGE_METHOD = "answers: before + after; 95% interval: the expert's answers resampled (none from a single answer in a phase)"
COMPARISON_TITLE = "Concept puzzles vs controls (across experts)"
COMPARISON_METHOD = (f"each row: the mean of each expert's own after − before change (concept − control: of each one's "
                     f"difference-in-differences) over the experts with both phases; 95% interval: experts resampled with "
                     f"replacement, then each one's answers; refused with fewer than {MIN_EXPERTS} such experts")


def plot_report(rep: Report, path: Path) -> Path:
    """Solve rate by group and phase, the mean over experts (left), and before → after changes with 95% CIs,
    per expert and across experts with their numbers of experts and answers (right)."""
    import matplotlib  # lazy: matplotlib is heavy and only the report draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({r.group for r in rep.rates})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, max(3.5, 0.5 * max(len(groups), len(rep.changes) + len(rep.comparisons)) + 2)))
    width = 0.8 / len(PHASES)
    for j, phase in enumerate(PHASES):
        vals = []
        for g in groups:
            rs = [r.rate for r in rep.rates if r.group == g and r.phase == phase]
            vals.append(np.mean(rs) if rs else np.nan)
        ax1.barh(np.arange(len(groups)) + (j - 1) * width, vals, height=width, label=phase)
    ax1.set_yticks(np.arange(len(groups)), groups)
    ax1.set_xlim(0, 1)
    ax1.set_xlabel("first move solved (mean over the experts who answered in that phase)")
    ax1.legend(loc="lower right")
    ax1.set_title("Solve rate by concept and phase")
    labels, deltas, los, his, refused = [], [], [], [], []
    for c in rep.changes:
        labels.append(f"{c.expert} · {c.group} ({c.n_answers} answers)")
        deltas.append(c.delta), los.append(np.nan if c.ci_low is None else c.ci_low), his.append(np.nan if c.ci_high is None else c.ci_high)
    for c in rep.comparisons:
        labels.append(f"all · {c.group} ({c.n_experts} experts, {c.n_answers} answers)")
        if c.delta is None:
            refused.append((len(labels) - 1, f"refused: {c.n_experts} experts with both phases, {MIN_EXPERTS} needed"))
            deltas.append(np.nan), los.append(np.nan), his.append(np.nan)
        else:
            deltas.append(c.delta), los.append(c.ci_low), his.append(c.ci_high)
    if labels:
        y = np.arange(len(labels))
        d = np.array(deltas, float)
        lo, hi = np.array(los, float), np.array(his, float)
        point = ~np.isnan(d) & np.isnan(lo)
        ax2.errorbar(np.where(point, np.nan, d), y, xerr=[d - lo, hi - d], fmt="o", capsize=3)
        if point.any():
            ax2.scatter(d[point], y[point], marker="x", color="black", zorder=3, label="no interval (a single answer in a phase)")
            ax2.legend(loc="lower right", fontsize=8)
        for k, reason in refused:
            ax2.text(-1.0, k, reason, va="center", fontsize=8, color="dimgrey", bbox={"color": "white"})
        ax2.axvline(0, color="grey", lw=1)
        ax2.set_xlim(-1.05, 1.05)
        ax2.set_ylim(-0.6, len(labels) - 0.4)
        ax2.set_yticks(y, labels)
    else:
        ax2.text(0.5, 0.5, "no expert has both a before and an after session", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_xlabel(f"after − before solve rate, 95% bootstrap CI\n(seed {rep.seed}, {rep.resamples} resamples; across experts:\n"
                   "experts resampled, then their answers)")
    ax2.set_title("Change after studying, concept vs control")
    fig.tight_layout()
    _atomic(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return path


def write_report_html(rep: Report, path: Path) -> Path:
    def table(title: str, head: Sequence[str], rows: list[list[str]], note: str = "") -> str:
        h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<h2>{html.escape(title)}</h2>" + (f"<p>{html.escape(note)}</p>" if note else "") + f"<table><tr>{h}</tr>{body}</table>"

    parts = [table("Solve rates", RATE_HEAD, [rate_cells(r) for r in rep.rates]),
             table("Before → after, per expert", CHANGE_HEAD, [change_cells(c) for c in rep.changes], CHANGE_METHOD),
             table(COMPARISON_TITLE, COMPARISON_HEAD, [comparison_cells(c) for c in rep.comparisons], COMPARISON_METHOD)]
    doc = ("<!doctype html><meta charset='utf-8'><title>conceptchess expert evaluation</title>"
           "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
           f"<h1>Expert evaluation</h1><p>bootstrap seed {rep.seed}, {rep.resamples} resamples</p>" + "".join(parts) +
           (f"<p><img src='{html.escape(rep.png.name)}'></p>" if rep.png else ""))
    return _atomic(path, lambda p: p.write_text(doc, encoding="utf-8"))
