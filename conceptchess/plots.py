"""Figures and tables people look at: the probing atlas of a run (PNG heatmaps and a sortable HTML index).

:func:`plot_run` writes, into one folder:

- ``concept-<name>.png`` per concept — the *what-when-where* plot (McGrath et al. 2022): score by
  tap (rows) × network or checkpoint (columns), with the same grid for the shuffled-label control
  beside it, and the random-init control network as its own column when it is not part of the series;
  the ``input`` row is the input-plane control;
- ``network-<label>.png`` per network — concepts × taps, one row of panels per metric (R², balanced
  accuracy), each with its own colour bar: the score, and beside it the shuffled-label control and
  the random-init network's score at the same tap (the ``input`` column is the input-plane control);
- ``when-<name>.png`` per concept, when the run's networks are one checkpoint series — the *when* plot
  (McGrath et al. 2022): the best block score of each checkpoint against its training step (log axis,
  step 0 drawn at the left of the first step), with its controls as lines: the random-init network's
  best block score (the series' step 0), the input-plane probe and, per checkpoint, the shuffled-label
  control's best block score (:class:`~conceptchess.probing.results.WhenCurve`); a run of other
  networks gets none, and its index says why;
- ``index.html`` — every concept with its best score, best tap, the first checkpoint where it reaches
  the threshold, its selectivity and controls, the activations it was probed on (full 8×8 or channel
  means), sortable by any column (plain JavaScript), linking to the PNGs.

Every cell carries its number. Colours: R² on [0, 1] and balanced accuracy on [0.5, 1] (chance at the
bottom), so a control that learns nothing is dark. A cell whose probe ended at all-zero weights
(status ``no-fit``) is hatched and marked "×" (a note under the figure says so), and the index counts
such cells per concept: its dark colour is a probe that found nothing, not evidence that the tap holds
nothing. Every figure and the index show the labels a concept was probed on — positives/negatives of
the training and test games, or the label variance of a scalar concept — and flag a binary concept
whose test games hold fewer than 30 positives (or negatives) "too few positives", in red: its score
rests on a handful of positions. Every file is written to a temporary name and renamed. Matplotlib runs headless (the Agg canvas; no pyplot state) and is
imported only where a figure is drawn: it is heavy, and the command line imports this module at start.

>>> plot_run(db, 3, "atlas/")                        # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
import json
import os
import re
from pathlib import Path

import numpy as np

from conceptchess.files import atomic_write_bytes
from conceptchess.names import unique
from conceptchess.probing.results import (
    CHANCE,
    METRIC_NAMES,
    MIN_TEST_CLASS,
    ConceptSummary,
    RunView,
    SplitLabels,
    WhenCurve,
    load_run,
    summarize,
    too_few_note,
    when_curves,
)
from conceptchess.progress import Progress

CMAP = "viridis"
NO_FIT_NOTE = "× (hatched): no fit — the probe ended at all-zero weights, so its score is that of a constant prediction"
FEW_NOTE = (f"too few positives (in red): fewer than {MIN_TEST_CLASS} positive (or negative) positions in the test games — "
            "the score and its interval rest on them")
FLAG_COLOUR = "red"
PANEL_MIN_INCHES = 1.9  # room for a panel's title ("control: shuffled labels") above few columns


def save_figure(fig, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy, as every matplotlib import here (see above)

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def _file_name(prefix: str, name: str) -> str:
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_.=+-]', '_', name)}.png"


def _range(metric: str) -> tuple[float, float]:
    return (CHANCE.get(metric, 0.0), 1.0)


POOL_NAMES = {"full": "full 8×8", "mean": "channel means"}


def _heat(ax, grid: np.ndarray, rows: list[str], cols: list[str], vmin: float, vmax: float, title: str, annotate: bool = True,
          marks: np.ndarray | None = None):
    """A heatmap of ``grid``; cells where ``marks`` is true (no-fit probes) are hatched and marked "×"."""
    from matplotlib.patches import Rectangle

    masked = np.ma.masked_invalid(grid)
    im = ax.imshow(masked, cmap=CMAP, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=7)
    ax.set_title(title, fontsize=9)
    marks = np.zeros(grid.shape, bool) if marks is None else marks
    for i, j in zip(*np.nonzero(marks)):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="xxx", edgecolor="0.8", linewidth=0))
        ax.text(j, i, "×", ha="center", va="center", fontsize=9, color="red")
    if annotate:
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                v = grid[i, j]
                if np.isfinite(v) and not marks[i, j]:
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if v < vmin + 0.6 * (vmax - vmin) else "black")
    return im


def _note_no_fit(fig, marks: list[np.ndarray], few: bool = False) -> None:
    """Say what "×" (and a red "too few positives") means, under the lowest tick label (the PNG is saved
    with a tight bounding box)."""
    notes = ([NO_FIT_NOTE] if any(m.any() for m in marks) else []) + ([FEW_NOTE] if few else [])
    if not notes:
        return
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    if fig.get_layout_engine() is not None:
        fig.get_layout_engine().execute(fig)  # place the axes as saving will (the notes are outside the layout)
    bottom = min(ax.get_tightbbox(renderer).y0 for ax in fig.axes if ax.get_visible())
    y = fig.transFigure.inverted().transform((0.0, bottom))[1]
    line = 0.15 / fig.get_figheight()  # a 7-point line, in figure fractions
    for k, note in enumerate(notes):
        fig.text(0.01, y - 0.2 * line - line * k, note, fontsize=7, ha="left", va="top",
                 color=FLAG_COLOUR if note == FEW_NOTE else "black")


def _labels_text(view: RunView, concept: str) -> str:
    """What ``concept`` was probed on: ``train 130+/4070− · test 28+/872−`` (scalars: the label variance)."""
    train, test = view.labels(concept)
    return f"train {train} · test {test}"


def _subtitle(view: RunView, concept: str) -> str:
    """A concept figure's second title line: its labels, and why it is flagged (too few positives) or blank (skipped)."""
    few = view.too_few(concept)
    skipped = next((r.reason for r in view.rows if r.concept == concept and r.score is None and r.reason), None)
    scored = any(r.concept == concept and r.score is not None for r in view.rows)
    why = f" — {few}" if few else f" — skipped: {skipped}" if skipped and not scored else ""
    return f"labels: {_labels_text(view, concept)}{why}"


def concept_figure(view: RunView, concept: str):
    """The what-when-where figure of one concept (a matplotlib Figure)."""
    from matplotlib.figure import Figure

    metric = view.metric(concept)
    vmin, vmax = _range(metric)
    taps = view.taps
    probed, controls = view.probed, view.controls
    cols = [n.label for n in probed]
    score = np.full((len(taps), len(probed)), np.nan)
    shuffled = np.full_like(score, np.nan)
    no_fit = np.zeros(score.shape, bool)
    for j, n in enumerate(probed):
        for i, t in enumerate(taps):
            r = view.get(concept, n.id, t)
            if r is not None and r.score is not None:
                score[i, j] = r.score
                shuffled[i, j] = np.nan if r.control_shuffled is None else r.control_shuffled
                no_fit[i, j] = r.no_fit
    # The shuffled-label control is meant to find nothing: its all-zero probes are not marked.
    panels = [(score, cols, "score", no_fit), (shuffled, cols, "control: shuffled labels", None)]
    if controls:
        rnd = np.full((len(taps), len(controls)), np.nan)
        rnd_no_fit = np.zeros(rnd.shape, bool)
        for j, n in enumerate(controls):
            for i, t in enumerate(taps):
                r = view.get(concept, n.id, t)
                if r is not None and r.score is not None:
                    rnd[i, j] = r.score
                    rnd_no_fit[i, j] = r.no_fit
        panels.append((rnd, [n.label for n in controls], "control: random init", rnd_no_fit))
    widths = [max(PANEL_MIN_INCHES, 0.45 * g.shape[1]) for g, _, _, _ in panels]
    fig = Figure(figsize=(sum(widths) + 2.2, 1.2 + 0.32 * len(taps) + 0.6), layout="constrained")
    axes = fig.subplots(1, len(panels), gridspec_kw={"width_ratios": widths}, squeeze=False)[0]
    im = None
    for ax, (g, c, title, marks) in zip(axes, panels):
        im = _heat(ax, g, taps if ax is axes[0] else [""] * len(taps), c, vmin, vmax, title, marks=marks)
    name = METRIC_NAMES.get(metric, metric)
    few = view.too_few(concept)
    fig.suptitle(f"{concept} — test {name} by tap and network, {POOL_NAMES.get(view.pool(concept), view.pool(concept))} "
                 f"(input row = input-plane control)\n{_subtitle(view, concept)}", fontsize=10,
                 color=FLAG_COLOUR if few else "black")
    fig.colorbar(im, ax=list(axes), shrink=0.8, label=f"test {name}")
    _note_no_fit(fig, [m for _, _, _, m in panels if m is not None], few=bool(few))
    return fig


def network_figure(view: RunView, network_id: int):
    """Concepts × taps for one network: a row of panels per metric (its own colour bar), each the score
    beside its shuffled-label and random-init controls; every cell carries its number."""
    from matplotlib.figure import Figure

    taps = view.taps
    control = view.control_of(network_id)
    label = next(n.label for n in view.networks if n.id == network_id)
    groups = [(m, [c for c in view.concepts if view.metric(c) == m]) for m in unique(view.metric(c) for c in view.concepts)]
    rows = []  # per metric: its concepts and panels (grid, title, no-fit marks)
    for metric, concepts in groups:
        score, shuffled, rnd = (np.full((len(concepts), len(taps)), np.nan) for _ in range(3))
        no_fit, rnd_no_fit = np.zeros(score.shape, bool), np.zeros(score.shape, bool)
        for i, c in enumerate(concepts):
            for j, t in enumerate(taps):
                r = view.get(c, network_id, t)
                if r is not None and r.score is not None:
                    score[i, j], no_fit[i, j] = r.score, r.no_fit
                    shuffled[i, j] = np.nan if r.control_shuffled is None else r.control_shuffled
                rc = view.get(c, control.id, t) if control is not None else None
                if rc is not None and rc.score is not None:
                    rnd[i, j], rnd_no_fit[i, j] = rc.score, rc.no_fit
        panels = [(score, "score", no_fit), (shuffled, "control: shuffled labels", None)]
        if control is not None:
            panels.append((rnd, f"control: {control.label}", rnd_no_fit))
        rows.append((metric, concepts, panels))
    n_panels = max(len(p) for _, _, p in rows)
    heights = [max(1.0, 0.24 * len(concepts)) for _, concepts, _ in rows]
    fig = Figure(figsize=(3.5 + n_panels * max(PANEL_MIN_INCHES, 0.5 * len(taps) + 0.4), sum(heights) + 1.2 * len(rows) + 0.4),
                 layout="constrained")
    axes = fig.subplots(len(rows), n_panels, gridspec_kw={"height_ratios": heights}, squeeze=False)
    marks = []
    few_any = False
    for k, (metric, concepts, panels) in enumerate(rows):
        vmin, vmax = _range(metric)
        names = []
        for i, c in enumerate(concepts):
            few = view.too_few(c)
            few_any |= bool(few)
            skipped = np.isnan(panels[0][0][i]).all()  # a blank row says why
            names.append(f"{c} ({_labels_text(view, c)})" + (f" — {few}" if few else " — skipped" if skipped else ""))
        im = None
        for j, ax in enumerate(axes[k]):
            if j >= len(panels):
                ax.set_visible(False)
                continue
            grid, title, m = panels[j]
            im = _heat(ax, grid, names if j == 0 else [""] * len(concepts), taps, vmin, vmax,
                       f"{label}: {title}" if j == 0 else title, marks=m)
            if m is not None:
                marks.append(m)
        for tick, c in zip(axes[k][0].get_yticklabels(), concepts):
            if view.too_few(c):
                tick.set_color(FLAG_COLOUR)
        name = METRIC_NAMES.get(metric, metric)
        fig.colorbar(im, ax=[ax for ax in axes[k] if ax.get_visible()], shrink=0.9, label=f"test {name}")
    own = control is None and any(v.get("sha256") == next(n.sha256 for n in view.networks if n.id == network_id)
                                  for v in (view.settings.get("random_init") or {}).values())
    fig.suptitle(f"{label}: concepts × taps (input column = input-plane control)"
                 + (" — the run's random-init control" if own else ""), fontsize=10)
    _note_no_fit(fig, marks, few=few_any)
    return fig


BEST_LABEL = "best block score"  # the label of a when figure's main line


def when_figure(curve: WhenCurve, subtitle: str = "", flagged: bool = False):
    """The "when" figure of one concept (a matplotlib Figure): its best block score per checkpoint against
    the training step, with the controls as lines. The step axis is logarithmic above the first positive
    step and linear below it (matplotlib's symlog), so that step 0 sits half a decade to its left.
    ``subtitle``: a second title line, in red when ``flagged`` (too few positives)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    steps = np.asarray(curve.steps, dtype=float)
    best = np.array([np.nan if v is None else v for v in curve.best])
    fig = Figure(figsize=(6.4, 3.9), layout="constrained")
    ax = fig.subplots()
    first = float(steps[steps > 0].min()) if (steps > 0).any() else 1.0
    ax.set_xscale("symlog", linthresh=first, linscale=0.5)
    ax.set_xlim(-0.4 * first, steps.max() * 1.5 if steps.max() > 0 else 1)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ok = np.isfinite(best)
    low = np.array([np.nan if v is None else v for v in curve.ci_low])
    high = np.array([np.nan if v is None else v for v in curve.ci_high])
    band = ok & np.isfinite(low) & np.isfinite(high)
    if band.any():
        ax.fill_between(steps[band], low[band], high[band], color="C0", alpha=0.15, linewidth=0, label="95% CI of the best cell")
    ax.plot(steps[ok], best[ok], "o-", color="C0", label=BEST_LABEL, zorder=3)
    for x, y, tap in zip(steps[ok], best[ok], np.asarray(curve.best_taps, dtype=object)[ok]):
        ax.annotate(str(tap).replace("block", "b"), (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=6,
                    color="C0")
    shuffled = np.array([np.nan if v is None else v for v in curve.shuffled])
    if np.isfinite(shuffled).any():
        ax.plot(steps, shuffled, "--", color="0.45", label="control: shuffled labels (best block)")
    if curve.random_init is not None:
        ax.axhline(curve.random_init, color="C3", linestyle=":", label=f"control: {curve.random_label} (best block)")
    if curve.input is not None:
        ax.axhline(curve.input, color="C2", linestyle="-.", label="control: input planes")
    chance, top = _range(curve.metric)
    values = [v for v in (*best[ok], *shuffled[np.isfinite(shuffled)], curve.random_init, curve.input) if v is not None]
    ax.set_ylim(min([chance, *values]) - 0.03 * (top - chance), top + 0.02 * (top - chance))
    name = METRIC_NAMES.get(curve.metric, curve.metric)
    ax.set_xlabel(f"training step (log scale; linear below step {first:g}, so that step 0 shows)", fontsize=8)
    ax.set_ylabel(f"test {name}", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=6.5, loc="best")
    fig.suptitle(f"{curve.concept} — when: best block score by training step ({POOL_NAMES.get(curve.pool, curve.pool)})"
                 + (f"\n{subtitle}" if subtitle else ""), fontsize=9, color=FLAG_COLOUR if flagged else "black")
    return fig


SORT_JS = """
function sortTable(th) {
  const table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
  const asc = th.dataset.order !== 'asc'; th.dataset.order = asc ? 'asc' : 'desc';
  const key = td => { const v = td.dataset.v !== undefined ? td.dataset.v : td.textContent; const n = parseFloat(v);
                      return isNaN(n) ? v.toLowerCase() : n; };
  const rows = Array.from(body.rows);
  rows.sort((a, b) => { const x = key(a.cells[col]), y = key(b.cells[col]);
    if (typeof x !== typeof y) return typeof x === 'number' ? -1 : 1;
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
  rows.forEach(r => body.appendChild(r));
}
"""


def html_cell(v, fmt="{:.3f}") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return '<td data-v="-1e9">–</td>'
    if isinstance(v, (int, float, np.floating)):
        return f'<td data-v="{float(v)}">{fmt.format(v)}</td>'
    return f"<td>{html.escape(str(v))}</td>"


def _note(s: ConceptSummary) -> str:
    notes = [s.skipped] if s.skipped else []
    if s.too_few:
        notes.append(too_few_note(s.too_few, s.test))
    if s.no_fit:
        notes.append(f"no fit in {s.no_fit} of {s.cells} cells (all weights zero at the chosen λ; × in the plots)")
    return "; ".join(notes)


def _labels_cell(labels: SplitLabels) -> str:
    key = labels.minority if labels.minority is not None else labels.variance
    return f'<td data-v="{-1e9 if key is None else float(key)}">{html.escape(str(labels))}</td>'


def index_html(view: RunView, concept_files: dict[str, str], network_files: dict[int, str], thresholds=None,
               when_files: dict[str, str] | None = None, no_when: str | None = None) -> str:
    """The atlas's index page. ``when_files``: concept → its when figure; ``no_when``: why the run has none."""
    rows = summarize(view, thresholds)
    when_files = when_files or {}
    head = ["concept", "metric", "activations", "best score", "95% CI", "training games +/− (var)", "test games +/− (var)", "best tap", "best network",
            "first network ≥ threshold", "threshold", "selectivity", "input control", "random-init control", "shuffled control",
            "non-zero weights", "note"]
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>Probe run {view.id}</title>",
           "<style>body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
           "th,td{border:1px solid #ccc;padding:2px 6px}th{cursor:pointer;background:#eee}td{text-align:right}"
           "td:first-child,td:nth-child(2),td:nth-child(3),td:nth-child(8),td:nth-child(9),td:nth-child(10),td:last-child{text-align:left}"
           f"tr.few td{{color:{FLAG_COLOUR}}}</style>",
           f"<script>{SORT_JS}</script></head><body>",
           f"<h1>Probe run {view.id}</h1><p>dataset {html.escape(view.dataset)} · status {html.escape(view.status)} · "
           f"{len(view.concepts)} concepts × {len(view.taps)} taps × {len(view.networks)} networks · split "
           f"{html.escape(str(view.settings.get('split')))} {html.escape(str(view.settings.get('split_sizes')))} · seed "
           f"{html.escape(str(view.settings.get('seed')))}</p>",
           "<p>Best score: the highest test score over block taps of the probed networks (R² for scalar concepts, balanced "
           "accuracy for binary ones and one-vs-rest categories), with a game-level bootstrap interval. Selectivity = score − "
           "shuffled-label control (Hewitt &amp; Liang). Controls are those of the best cell. Training / test games: the positive and "
           "negative positions of a binary concept (or the label variance of a scalar one) the probes were trained and scored on; "
           f"a row in red has fewer than {MIN_TEST_CLASS} positives (or negatives) in the test games: <b>too few positives</b> to "
           "carry its score. Click a column to sort.</p>",
           *(["<p><b>No fit</b>: in the cells counted in the note column the probe ended at all-zero weights (the validation "
              "games preferred λ<sub>max</sub>), so their score is that of a constant prediction — a probe that found nothing, "
              "not evidence that the tap holds nothing. The plots hatch them and mark them ×.</p>"] if any(s.no_fit for s in rows) else []),
           ("<p><b>When</b>: each concept's <i>when</i> figure (linked beside its name) draws its best block score at every "
            "checkpoint against the training step, with the controls as lines: the best block score of the random-init network "
            "and of the shuffled labels, and the input-plane probe.</p>" if when_files else
            f"<p><b>No when figures</b>: {html.escape(no_when)}.</p>" if no_when else ""),
           "<p>Networks: " + " · ".join(f"<a href='{html.escape(f)}'>{html.escape(n.label)}</a>"
                                        for n in view.networks for nid, f in network_files.items() if nid == n.id) + "</p>",
           "<table><thead><tr>" + "".join(f"<th onclick='sortTable(this)'>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for s in rows:
        link = concept_files.get(s.concept)
        name = f"<a href='{html.escape(link)}'>{html.escape(s.concept)}</a>" if link else html.escape(s.concept)
        if s.concept in when_files:
            name += f" · <a href='{html.escape(when_files[s.concept])}'>when</a>"
        ci = "–" if s.ci_low is None or s.ci_high is None else f"{s.ci_low:.3f} – {s.ci_high:.3f}"
        out.append(("<tr class='few'>" if s.too_few else "<tr>") + f"<td data-v='{html.escape(s.concept)}'>{name}</td>" + html_cell(s.metric)
                   + html_cell(POOL_NAMES.get(view.pool(s.concept), view.pool(s.concept)))
                   + html_cell(s.best_score) + f"<td>{ci}</td>" + _labels_cell(s.train) + _labels_cell(s.test) + html_cell(s.best_tap) + html_cell(s.best_network) + html_cell(s.first_network) + html_cell(s.threshold, "{:g}")
                   + html_cell(s.selectivity) + html_cell(s.control_input) + html_cell(s.control_random) + html_cell(s.control_shuffled)
                   + html_cell(s.nonzero, "{:d}") + html_cell(_note(s)) + "</tr>")
    out.append("</tbody></table>")
    out.append(f"<p><small>settings: <code>{html.escape(json.dumps(view.settings.get('probe', {})))}</code></small></p></body></html>")
    return "\n".join(out)


def plot_run(db, run_id: int, out_dir: str | os.PathLike, thresholds: dict[str, float] | None = None,
             progress: Progress | None = None) -> list[Path]:
    """Write the atlas of run ``run_id`` into ``out_dir``; returns the files written."""
    view = load_run(db, run_id)
    out = Path(out_dir)
    written: list[Path] = []
    concept_files: dict[str, str] = {}
    network_files: dict[int, str] = {}
    when_files: dict[str, str] = {}
    concepts = view.concepts
    curves, no_when = when_curves(view)
    total = len(concepts) + len(curves) + len(view.networks) + 1
    done = 0
    for c in concepts:
        name = _file_name("concept", c)
        save_figure(concept_figure(view, c), out / name)
        concept_files[c] = name
        written.append(out / name)
        done += 1
        if progress:
            progress(done, total)
    for curve in curves:
        name = _file_name("when", curve.concept)
        save_figure(when_figure(curve, _subtitle(view, curve.concept), flagged=bool(view.too_few(curve.concept))), out / name)
        when_files[curve.concept] = name
        written.append(out / name)
        done += 1
        if progress:
            progress(done, total)
    for n in view.networks:
        name = _file_name("network", f"{n.label}-{n.sha256[:8]}")
        save_figure(network_figure(view, n.id), out / name)
        network_files[n.id] = name
        written.append(out / name)
        done += 1
        if progress:
            progress(done, total)
    atomic_write_bytes(out / "index.html",
                       index_html(view, concept_files, network_files, thresholds, when_files, no_when).encode("utf-8"))
    written.append(out / "index.html")
    if progress:
        progress(total, total)
    return written
