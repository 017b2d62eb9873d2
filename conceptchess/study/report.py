"""The study's report: solve rates, each expert's before → after changes, and concept vs control across experts.

A report is a value (:class:`Report`) of :class:`Rate`, :class:`Change` and :class:`Comparison` rows,
computed from the graded answers in the database with seeded bootstrap intervals; :func:`plot_report`
and :func:`write_report_html` draw it, and the ``*_cells`` functions give its tables as text to any
shell (the HTML page, the terminal).

Which answers a before → after change compares, within each expert and each row (a concept, a control,
imported puzzles): by default the answers to the puzzles that expert answered in both phases, so that a
change is not a change of puzzles. A blinded before/after study often shows different puzzles of the
same kind in each phase (two sheets: that is its design); an expert with no puzzle of a row answered in
both phases has no such comparison, and there the report compares that expert's before set with their
after set, says so in the row (``compared``) and in a sentence under the tables (:func:`compared_sentence`):
such a change also carries the difference in difficulty between the two sets. ``all_puzzles=True``
compares the whole sets everywhere. Every row shows the sizes: puzzles answered before, after, and in both.

Across experts (:class:`Comparison`) a row rests only on the experts who have both phases, is the mean of
their own changes, and is refused with fewer than 2 of them (:func:`bootstrap_delta` draws the interval).

The ``line`` of a :class:`Rate` is the share of the answers that gave a whole line whose line is correct,
shown with how many gave one: an answer gives a line when it goes on past the first move of a longer
puzzle, or answers a one-move puzzle (whose line is that move); a bare first move to a longer puzzle
gives none and is not counted.

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
    """The row label of a puzzle in the report: its concept, the control it belongs to, or what an
    imported puzzle is (``imported (lichess)``)."""
    if p.kind == "concept":
        return p.concept or "concept"
    if p.kind == "control-random":
        return "control: random direction"
    if p.kind == "control-human":
        return f"control: human {p.concept}" if p.concept else "control: human concept"
    return f"{p.kind} ({p.source})" if p.source else p.kind


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
    """One expert's answers to one group's puzzles in one phase (all of them: no comparison here)."""

    expert: str
    group: str  # group_of the puzzles: a concept, a control, imported (lichess)
    phase: str
    n: int  # answers
    solved: int  # first move correct
    rate: float  # solved / n
    line_rate: float | None  # of the answers that gave a whole line, the share whose line is correct (None: none gave one)
    lines: int  # answers that gave a whole line (see the module docstring)
    seconds: float | None  # median time
    confidence: float | None  # mean, 1–5


@dataclass(frozen=True)
class Change:
    """One expert's before → after change on one group's puzzles, over the answers it compares (``paired``: to
    the ``n_common`` puzzles answered in both phases; else the whole before and after sets); the interval
    resamples those answers (None when a phase has a single one: resampling one answer gives a point)."""

    expert: str
    group: str
    n_before: int  # puzzles answered before
    n_after: int  # puzzles answered after
    n_common: int  # puzzles answered in both phases
    paired: bool  # compared on the puzzles in both phases (else the sets: none in common, or all_puzzles)
    n_answers: int  # answers compared, before and after
    before: float  # solve rate
    after: float
    delta: float  # after − before
    ci_low: float | None  # 95% bootstrap interval of delta
    ci_high: float | None


@dataclass(frozen=True)
class Comparison:
    """A before → after change across experts, one puzzle kind (or concept − control) at a time.

    It rests only on the experts who have both phases (for ``concept − control``: both phases of both
    kinds): ``delta`` is the mean of their own changes (for ``concept − control`` the mean of their
    differences-in-differences), ``before``/``after`` the means of their own rates (of their concept − control
    differences); the interval resamples experts, then each one's answers (:func:`bootstrap_delta`).
    Each expert's answers are those the module docstring says (the puzzles in both phases, else the sets).
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
    n_before: int = 0  # puzzles answered before, summed over the experts the row rests on (and both kinds of concept − control)
    n_after: int = 0  # puzzles answered after, likewise
    n_common: int = 0  # puzzles answered in both phases, likewise
    unpaired: tuple[str, ...] = ()  # experts with no puzzle answered in both phases (of a kind): their whole sets compared


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
    all_puzzles: bool = False  # the whole before and after sets compared, puzzles in common or not


@dataclass(frozen=True)
class _Graded:
    expert: str
    phase: str
    group: str
    kind: str
    puzzle: str
    first: bool
    line: bool | None
    seconds: float | None
    confidence: int | None


def _answers(db) -> list[_Graded]:
    with db.session() as s:
        q = (select(Answer, EvalSession, Expert, Puzzle).join(EvalSession, Answer.session_id == EvalSession.id)
             .join(Expert, EvalSession.expert_id == Expert.id).join(Puzzle, Answer.puzzle_id == Puzzle.id))
        return [_Graded(e.name, sess.phase, group_of(PuzzleRecord.of(p)), p.kind, p.id, bool(a.first_move_correct), a.line_correct,
                        a.seconds, a.confidence) for a, sess, e, p in s.execute(q)]


@dataclass(frozen=True)
class _Pair:
    """One expert's answers to some puzzles, before and after, as a change compares them."""

    before: np.ndarray  # 1.0 solved, 0.0 not
    after: np.ndarray
    n_before: int  # puzzles answered before
    n_after: int
    n_common: int  # puzzles answered in both phases
    paired: bool  # only the answers to the n_common puzzles kept


def _pair(before: Sequence[_Graded], after: Sequence[_Graded], all_puzzles: bool) -> _Pair:
    """The answers compared (see the module docstring): those to the puzzles answered in both phases,
    else (none in common, or ``all_puzzles``) all of them."""
    common = {r.puzzle for r in before} & {r.puzzle for r in after}
    paired = bool(common) and not all_puzzles
    keep = (lambda rs: [r for r in rs if r.puzzle in common]) if paired else list
    return _Pair(np.array([r.first for r in keep(before)], float), np.array([r.first for r in keep(after)], float),
                 len({r.puzzle for r in before}), len({r.puzzle for r in after}), len(common), paired)


COMPARED_KINDS = ("concept", "control", "control-random", "control-human", "imported")
CONCEPT_MINUS_CONTROL = "concept − control"
MIN_EXPERTS = 2


def _kinds_of(kind: str) -> tuple[str, ...]:
    """The comparisons a puzzle of ``kind`` counts in (a control counts as ``control`` and as itself)."""
    return ("control", kind) if kind.startswith("control") else (kind,)


def _comparison(group: str, parts: tuple[str, ...], answered: dict[tuple[str, str, str], list[_Graded]], all_puzzles: bool,
                rng: np.random.Generator, resamples: int) -> Comparison | None:
    """The row of the kinds ``parts`` (one kind, or concept and control for a difference-in-differences);
    None when no expert answered puzzles of one of them before or after."""
    keys = [(kind, phase) for kind in parts for phase in ("before", "after")]
    seen = [{e for (k, e, _) in answered if k == kind} for kind in parts]
    if not all(seen):
        return None
    experts = sorted(set().union(*seen))
    both = [e for e in experts if all((k, e, ph) in answered for k, ph in keys)]
    excluded = tuple(e for e in experts if e not in both)
    pairs = {e: [_pair(answered[(k, e, "before")], answered[(k, e, "after")], all_puzzles) for k in parts] for e in both}
    n_answers = sum(len(p.before) + len(p.after) for ps in pairs.values() for p in ps)
    flat = [p for ps in pairs.values() for p in ps]
    sizes = {"n_before": sum(p.n_before for p in flat), "n_after": sum(p.n_after for p in flat), "n_common": sum(p.n_common for p in flat),
             "unpaired": tuple(e for e in both if any(p.n_common == 0 for p in pairs[e]))}
    if len(both) < MIN_EXPERTS:
        what = " and ".join(parts) + (" puzzles each" if len(parts) > 1 else " puzzles")
        return Comparison(group, len(both), n_answers, None, None, None, None, None, excluded,
                          f"fewer than {MIN_EXPERTS} experts have both phases of {what} ({len(both)} of {len(experts)} do)", **sizes)
    # per expert: (before, after) or, for concept − control, (before, after, base_before, base_after)
    per_expert = [tuple(x for p in pairs[e] for x in (p.before, p.after)) for e in both]
    delta, lo, hi = bootstrap_delta(per_expert, rng, resamples)
    before = float(np.mean([x[0].mean() - (x[2].mean() if len(x) == 4 else 0.0) for x in per_expert]))
    after = float(np.mean([x[1].mean() - (x[3].mean() if len(x) == 4 else 0.0) for x in per_expert]))
    return Comparison(group, len(both), n_answers, before, after, delta, lo, hi, excluded, **sizes)


def report(db, *, seed: int = 0, resamples: int = 2000, output: str | os.PathLike | None = REPORT_PREFIX,
           all_puzzles: bool = False) -> Report:
    """Solve rates per expert × concept × phase, each expert's before → after changes, and the changes
    across experts (:class:`Comparison`: concept puzzles, controls, imported, concept − control), with
    seeded bootstrap CIs; writes ``<output>.png`` and ``<output>.html`` unless ``output`` is None.
    Each change compares an expert's answers to the puzzles answered in both phases (the whole sets where
    none is, or everywhere with ``all_puzzles``; see the module docstring)."""
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
                          float(np.mean(lines)) if lines else None, len(lines), float(np.median(secs)) if secs else None,
                          float(np.mean(conf)) if conf else None))
    changes = []
    for expert in sorted({r.expert for r in rows}):
        for group in sorted({r.group for r in rows}):
            before, after = by_cell.get((expert, group, "before"), []), by_cell.get((expert, group, "after"), [])
            if not (before and after):
                continue
            pr = _pair(before, after, all_puzzles)
            b, a = pr.before, pr.after
            d, lo, hi = bootstrap_delta([(b, a)], rng, resamples) if min(len(b), len(a)) > 1 else (expert_delta((b, a)), None, None)
            changes.append(Change(expert, group, pr.n_before, pr.n_after, pr.n_common, pr.paired, len(b) + len(a), float(b.mean()),
                                  float(a.mean()), d, lo, hi))
    answered: dict[tuple[str, str, str], list[_Graded]] = defaultdict(list)  # (kind, expert, phase) → answers
    for r in rows:
        if r.phase in ("before", "after"):
            for kind in _kinds_of(r.kind):
                answered[(kind, r.expert, r.phase)].append(r)
    comparisons = [_comparison(kind, (kind,), answered, all_puzzles, rng, resamples) for kind in COMPARED_KINDS]
    comparisons.append(_comparison(CONCEPT_MINUS_CONTROL, ("concept", "control"), answered, all_puzzles, rng, resamples))
    rep = Report(tuple(rates), tuple(changes), tuple(c for c in comparisons if c is not None), seed, resamples,
                 all_puzzles=all_puzzles)
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
SIZES = "puzzles before / after / both"
RATE_HEAD = ("expert", "concept / kind", "phase", "n", "solved", "rate", "line (n)", "median s", "confidence")
CHANGE_HEAD = ("expert", "concept / kind", "before", "after", "change", "95% CI", SIZES, "compared")
COMPARISON_HEAD = ("comparison", "experts", "answers", "before", "after", "change", "95% CI", SIZES, "compared")  # then comparison_note


def rate_cells(r: Rate) -> list[str]:
    return [r.expert, r.group, r.phase, str(r.n), str(r.solved), _pct(r.rate), f"{_pct(r.line_rate)} ({r.lines})",
            "–" if r.seconds is None else f"{r.seconds:.0f}", "–" if r.confidence is None else f"{r.confidence:.1f}"]


def _sizes(n_before: int, n_after: int, n_common: int) -> str:
    return f"{n_before} / {n_after} / {n_common}"


def change_cells(c: Change) -> list[str]:
    compared = f"the {c.n_common} in both" if c.paired else "all answers" if c.n_common else "the sets: none in both"
    return [c.expert, c.group, _pct(c.before), _pct(c.after), *_pts(c.delta, c.ci_low, c.ci_high),
            _sizes(c.n_before, c.n_after, c.n_common), compared]


def comparison_note(c: Comparison) -> str:
    """Why a row is refused, and who it leaves out."""
    out = [f"refused: {c.refused_reason}"] if c.refused_reason else []
    if c.excluded:
        out.append(f"left out (a phase missing): {', '.join(c.excluded)}")
    return "; ".join(out)


def comparison_cells(c: Comparison, all_puzzles: bool = False) -> list[str]:
    # concept − control's before and after are differences of rates
    rate = (lambda x: "–" if x is None else f"{100 * x:+.0f} pts") if c.group == CONCEPT_MINUS_CONTROL else _pct
    if not c.n_experts:
        compared = "–"
    elif all_puzzles:
        compared = "all answers"
    elif not c.unpaired:
        compared = f"the {c.n_common} in both"
    elif len(c.unpaired) == c.n_experts:
        compared = "the sets: none in both"
    else:
        compared = f"the {c.n_common} in both; the sets for {', '.join(c.unpaired)} (none in both)"
    return [c.group, str(c.n_experts), str(c.n_answers), rate(c.before), rate(c.after), *_pts(c.delta, c.ci_low, c.ci_high),
            _sizes(c.n_before, c.n_after, c.n_common), compared]


def compared_sentence(rep: Report) -> str:
    """What the changes compare, in words: the puzzles in both phases, and where there are none."""
    if rep.all_puzzles:
        return ("Before → after compares all answers: each expert's whole before set with their whole after set, "
                f"whether or not they hold the same puzzles ({SIZES}: the puzzles of each set, and how many are in both).")
    out = ("Before → after compares, within each expert, the answers to the puzzles that expert answered in both phases "
           f"({SIZES}: the puzzles of each set, and how many are in both).")
    none = sorted({c.expert for c in rep.changes if c.n_common == 0}
                  | {e for c in rep.comparisons if c.group != CONCEPT_MINUS_CONTROL for e in c.unpaired})
    if none:
        out += (f" Where an expert answered no puzzle of a row in both phases ({', '.join(none)}; the rows say “the sets: none in "
                "both”), the whole before set is compared with the whole after set: different puzzles, so the change also carries "
                "the difference in difficulty between the two sets.")
    return out


LINE_METHOD = ("line: of the answers that gave a whole line (n), the share whose line is correct; a first move alone to a "
               "longer puzzle gives no line, an answer to a one-move puzzle is its line")
CHANGE_METHOD = ("before and after: solve rates of the answers compared; 95% interval: the expert's answers resampled "
                 "(none from a single answer in a phase)")
COMPARISON_TITLE = "Concept puzzles vs controls (across experts)"
COMPARISON_METHOD = (f"each row: the mean of each expert's own after − before change (concept − control: of each one's "
                     f"difference-in-differences) over the experts with both phases; 95% interval: experts resampled with "
                     f"replacement, then each one's answers; refused with fewer than {MIN_EXPERTS} such experts")


def report_figure(rep: Report):
    """The report's matplotlib figure: solve rate by group and phase, the mean over experts (left), and before →
    after changes with 95% CIs, per expert (with the puzzles compared) and across experts (right). The legend
    sits below both panels, clear of every bar and point."""
    import matplotlib  # lazy: matplotlib is heavy and only the report draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({r.group for r in rep.rates})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, max(3.5, 0.5 * max(len(groups), len(rep.changes) + len(rep.comparisons)) + 2.5)),
                                   layout="constrained")
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
    ax1.set_title("Solve rate by concept and phase")
    labels, deltas, los, his, refused = [], [], [], [], []
    for c in rep.changes:
        what = f"{c.n_common} in both" if c.paired else f"sets of {c.n_before} and {c.n_after}"
        labels.append(f"{c.expert} · {c.group} ({what})")
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
        for k, reason in refused:
            ax2.text(-1.0, k, reason, va="center", fontsize=8, color="dimgrey", bbox={"color": "white"})
        ax2.axvline(0, color="grey", lw=1)
        ax2.set_xlim(-1.05, 1.05)
        ax2.set_ylim(-0.6, len(labels) - 0.4)
        ax2.set_yticks(y, labels)
    else:
        ax2.text(0.5, 0.5, "no expert has both a before and an after session", ha="center", va="center", transform=ax2.transAxes)
    compared = "all answers" if rep.all_puzzles else "each expert's puzzles in both phases (else the sets)"
    ax2.set_xlabel(f"after − before solve rate, 95% bootstrap CI\nover {compared}\n(seed {rep.seed}, {rep.resamples} resamples;\n"
                   "across experts: experts resampled, then their answers)")
    ax2.set_title("Change after studying, concept vs control")
    handles, names = [], []
    for ax in (ax1, ax2):
        h, n = ax.get_legend_handles_labels()
        handles += h
        names += n
    # below the panels: inside an axes the legend covered a bar (issue 14)
    fig.legend(handles, names, loc="outside lower center", ncol=max(1, len(names)), fontsize=9)
    return fig


def plot_report(rep: Report, path: Path) -> Path:
    """Draw :func:`report_figure` to a PNG."""
    import matplotlib.pyplot as plt  # lazy: matplotlib is heavy and only the report draws

    fig = report_figure(rep)
    _atomic(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return path


def write_report_html(rep: Report, path: Path) -> Path:
    def table(title: str, head: Sequence[str], rows: list[list[str]], note: str = "") -> str:
        h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<h2>{html.escape(title)}</h2>" + (f"<p>{html.escape(note)}</p>" if note else "") + f"<table><tr>{h}</tr>{body}</table>"

    parts = [table("Solve rates", RATE_HEAD, [rate_cells(r) for r in rep.rates], LINE_METHOD),
             table("Before → after, per expert", CHANGE_HEAD, [change_cells(c) for c in rep.changes], CHANGE_METHOD),
             table(COMPARISON_TITLE, (*COMPARISON_HEAD, "note"), [[*comparison_cells(c, rep.all_puzzles), comparison_note(c)]
                                                                 for c in rep.comparisons], COMPARISON_METHOD)]
    doc = ("<!doctype html><meta charset='utf-8'><title>conceptchess expert evaluation</title>"
           "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
           f"<h1>Expert evaluation</h1><p>bootstrap seed {rep.seed}, {rep.resamples} resamples</p>"
           f"<p>{html.escape(compared_sentence(rep))}</p>" + "".join(parts) +
           (f"<p><img src='{html.escape(rep.png.name)}'></p>" if rep.png else ""))
    return _atomic(path, lambda p: p.write_text(doc, encoding="utf-8"))
