"""Figures and an index page for discovered concepts, beside the probe atlas.

:func:`plot_discoveries` writes, into one folder, one PNG per discovered concept and ``index.html``:

- the root position as a board (from the side to move), the optimal rollout's first move as a green
  arrow and the first moves of sub-optimal lines that branch at the root as red ones, with the lines
  written out in SAN under it;
- held-out constraint satisfaction: on the root's held-out sub-optimal lines, on other roots' rollouts,
  and the swapped-label control (a vector fitted with optimal and sub-optimal swapped at random), with
  chance (0.5) marked;
- novelty against k (Schut's rule: novel when the score is positive at every k), with the middle 90 %
  of random sparse directions as the control band, when the concept's novelty was scored;
- amplification: the change in the probability of the optimal rollout's first move as the concept is
  pushed in at its tap (α), beside a random direction of the same norm and sparsity, when it was run.

The index opens with each run's funnel, when `discover filter` stored one (:func:`funnel_figure`: how
many concepts pass each filter, beside their random-vector controls and Schut et al.'s shares), then
lists every concept with its status, sparsity and each check beside its control (teachability: the
concept-trained minus random-trained agreement on held-out prototypes, with its interval), sortable by
any column, linking to the figures. Every file is written to a temporary name and renamed.

>>> plot_discoveries(db, "results/discovery/")                    # doctest: +SKIP
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path

import chess

from conceptchess.datasets import iter_dataset
from conceptchess.files import atomic_write_bytes
from conceptchess.plots import SORT_JS, html_cell, save_figure
from conceptchess.progress import Progress
from conceptchess.store.discovery import (
    CONCEPT,
    DiscoveredConcept,
    DiscoveryFunnel,
    DiscoveryRun,
    all_concepts,
    amplification_of,
    latest_funnel,
    latest_novelty,
    teaching_of,
)
from conceptchess.store.models import Dataset, NetworkRow

GLYPHS = {"K": "♔", "Q": "♕", "R": "♖", "B": "♗", "N": "♘", "P": "♙", "k": "♚", "q": "♛", "r": "♜", "b": "♝", "n": "♞", "p": "♟"}
LIGHT, DARK = "#f0d9b5", "#b58863"
OPTIMAL, SUBOPTIMAL, CONTROL = "#2e7d32", "#c62828", "#757575"


@dataclass
class RootLines:
    """A root's position and the lines of its rollouts (UCI), read from the rollouts dataset."""

    board: chess.Board
    optimal: list[str]
    suboptimal: dict[int, tuple[int, list[str]]] = field(default_factory=dict)  # line index → (branch ply, moves from the branch)


def root_lines(rollouts: str | os.PathLike, roots: set[str]) -> dict[str, RootLines]:
    """The lines of ``roots`` in a rollouts dataset."""
    out: dict[str, RootLines] = {}
    records: dict[str, list] = {}
    for spec in iter_dataset(rollouts):
        r = str(spec.meta.get("root"))
        if r in roots:
            records.setdefault(r, []).append(spec)
    for r, specs in records.items():
        specs.sort(key=lambda s: (s.meta["line_index"], s.meta["ply"]))
        root = next(s for s in specs if s.meta["line_index"] == 0 and s.meta["ply"] == 0)
        board = root.board().copy(stack=False)
        lines = RootLines(board, [s.meta["move"] for s in specs if s.meta["line_index"] == 0 and s.meta.get("move")])
        for s in specs:
            j = s.meta["line_index"]
            if j == 0:
                continue
            b = s.meta["branch_ply"]
            moves = lines.suboptimal.setdefault(j, (b, []))[1]
            if s.meta["ply"] == b + 1:
                moves.append(s.moves[-1])  # the move that left the optimal line
            if s.meta.get("move"):
                moves.append(s.meta["move"])
        out[r] = lines
    return out


def _san_line(board: chess.Board, moves: list[str]) -> str:
    b = board.copy(stack=False)
    out = []
    for u in moves:
        m = chess.Move.from_uci(u)
        if m not in b.legal_moves:
            break
        out.append(b.san(m))
        b.push(m)
    return " ".join(out)


def draw_board(ax, board: chess.Board, arrows: list[tuple[chess.Move, str]], title: str = "") -> None:
    """``board`` from the side to move, with coloured arrows for moves (drawn with matplotlib only)."""
    from matplotlib.patches import FancyArrow, Rectangle  # lazy: matplotlib is heavy (see conceptchess.plots)

    flip = board.turn == chess.BLACK

    def xy(sq: int) -> tuple[float, float]:
        f, r = chess.square_file(sq), chess.square_rank(sq)
        return (7 - f if flip else f) + 0.5, (7 - r if flip else r) + 0.5

    for sq in chess.SQUARES:
        x, y = xy(sq)
        dark = (chess.square_file(sq) + chess.square_rank(sq)) % 2 == 0
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, color=DARK if dark else LIGHT, lw=0))
        piece = board.piece_at(sq)
        if piece is not None:
            ax.text(x, y, GLYPHS[piece.symbol()], ha="center", va="center", fontsize=19, color="black")
    for move, colour in arrows:
        (x0, y0), (x1, y1) = xy(move.from_square), xy(move.to_square)
        ax.add_patch(FancyArrow(x0, y0, x1 - x0, y1 - y0, width=0.09, head_width=0.32, head_length=0.3,
                                length_includes_head=True, color=colour, alpha=0.8))
    files = "hgfedcba" if flip else "abcdefgh"
    ranks = "87654321" if flip else "12345678"
    for i in range(8):
        ax.text(i + 0.5, -0.3, files[i], ha="center", va="center", fontsize=7)
        ax.text(-0.3, i + 0.5, ranks[i], ha="center", va="center", fontsize=7)
    ax.set_xlim(-0.5, 8)
    ax.set_ylim(-0.5, 8)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)


def concept_figure(concept: DiscoveredConcept, lines: RootLines | None, novelty=None, amplification=()):
    """The four panels of one concept (see the module docstring)."""
    from matplotlib.figure import Figure  # lazy: matplotlib is heavy

    fig = Figure(figsize=(13, 4.2))
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1.15, 1, 1, 1]})
    board_ax, sat_ax, nov_ax, amp_ax = axes
    if lines is not None:
        arrows = [(chess.Move.from_uci(lines.optimal[0]), OPTIMAL)] if lines.optimal else []
        arrows += [(chess.Move.from_uci(moves[0]), SUBOPTIMAL) for b, moves in lines.suboptimal.values() if b == 0 and moves]
        draw_board(board_ax, lines.board, arrows, f"root {concept.root} ({'white' if lines.board.turn else 'black'} to move)")
        text = [f"optimal: {_san_line(lines.board, lines.optimal)}"]
        for j, (b, moves) in sorted(lines.suboptimal.items())[:4]:
            text.append(f"line {j} (branch ply {b}): " + " ".join(moves[:6]))
        board_ax.text(0, -1.0, "\n".join(text), fontsize=6.5, va="top", family="monospace")
    else:
        board_ax.axis("off")
        board_ax.text(0.5, 0.5, "rollouts dataset not found", ha="center")
    names = ["held-out lines\nsame root", "other roots", "swapped labels\n(control)"]
    values = [concept.heldout_same_root, concept.heldout_other_roots, concept.swapped_control]
    sat_ax.bar(range(3), [v if v is not None else 0 for v in values], color=[OPTIMAL, OPTIMAL, CONTROL])
    for i, v in enumerate(values):
        sat_ax.text(i, (v or 0) + 0.02, "–" if v is None else f"{v:.2f}", ha="center", fontsize=8)
    sat_ax.axhline(0.5, color="black", lw=0.8, ls="--")
    sat_ax.set_xticks(range(3), names, fontsize=7)
    sat_ax.set_ylim(0, 1.08)
    sat_ax.set_title(f"constraints satisfied (v·z⁺ > v·z⁻)\n{concept.nonzero} of {concept.features} weights non-zero", fontsize=8)
    if novelty is not None:
        ks = sorted(int(k) for k in novelty.scores)
        nov_ax.plot(ks, [novelty.scores[str(k)] if str(k) in novelty.scores else novelty.scores[k] for k in ks], "o-",
                    color=OPTIMAL, label="concept")
        band = (novelty.control or {}).get("quantiles") or {}
        if band:
            qk = sorted(int(k) for k in band)
            nov_ax.fill_between(qk, [band[str(k)][0] for k in qk], [band[str(k)][1] for k in qk], color=CONTROL, alpha=0.3,
                                label="random sparse (5–95 %)")
        nov_ax.axhline(0, color="black", lw=0.8)
        nov_ax.set_xscale("log", base=2)
        nov_ax.set_xlabel("k (top singular vectors)", fontsize=8)
        nov_ax.set_title(f"novelty: {'novel' if novelty.novel else 'not novel'} (human rank {novelty.human_rank}, "
                         f"machine {novelty.machine_rank})", fontsize=8)
        nov_ax.legend(fontsize=7)
    else:
        nov_ax.axis("off")
        nov_ax.text(0.5, 0.5, "novelty not scored\n(conceptchess discover novelty)", ha="center", va="center", fontsize=8)
    if amplification:
        for res in amplification:
            c = res.curves
            style = "-" if res.positions == "roots" else ":"
            amp_ax.plot(c["alphas"], c["concept"]["mean"], style, color=OPTIMAL, marker="o", ms=3, label=f"concept ({res.positions})")
            amp_ax.plot(c["alphas"], c["control"]["mean"], style, color=CONTROL, marker="o", ms=3, label=f"random ({res.positions})")
            if res.positions == "roots":
                amp_ax.fill_between(c["alphas"], c["concept"]["low"], c["concept"]["high"], color=OPTIMAL, alpha=0.15)
                amp_ax.fill_between(c["alphas"], c["control"]["low"], c["control"]["high"], color=CONTROL, alpha=0.15)
        amp_ax.axhline(0, color="black", lw=0.8)
        amp_ax.set_xlabel("α", fontsize=8)
        amp_ax.set_title("Δ p(optimal first move) when amplified", fontsize=8)
        amp_ax.legend(fontsize=6)
    else:
        amp_ax.axis("off")
        amp_ax.text(0.5, 0.5, "amplification not run\n(conceptchess discover amplify)", ha="center", va="center", fontsize=8)
    fig.suptitle(f"discovered concept {concept.id}: {concept.variant} activations, status {concept.status}", fontsize=10)
    fig.subplots_adjust(bottom=0.3, wspace=0.35)
    return fig


#: Schut et al. (2025): the share of AlphaZero candidates removed by teachability, then by novelty.
SCHUT_REMOVED = {"teachable": 0.976, "novel": 0.271}


def funnel_figure(funnel: DiscoveryFunnel):
    """Concepts left after each filter (bars, with the share of the previous stage kept), the random-vector
    controls at the stages they go through, and Schut et al.'s shares at the same stages."""
    from matplotlib.figure import Figure  # lazy: matplotlib is heavy

    stages = [(str(a), int(b)) for a, b in funnel.stages]
    controls = dict(funnel.controls or {})
    fig = Figure(figsize=(9, 0.6 + 0.55 * len(stages)))
    ax = fig.subplots()
    ys = list(range(len(stages)))[::-1]
    top = max(1, stages[0][1])
    ax.barh(ys, [n for _, n in stages], color=OPTIMAL, height=0.55, label="discovered concepts")
    ctrl = {"candidates": controls.get("random vectors"), "enough prototypes": controls.get("enough prototypes"),
            "a student": controls.get("a student"), "teachable": controls.get("teachable")}
    for y, (name, n) in zip(ys, stages):
        k = [s for s, _ in stages].index(name)
        prev = stages[k - 1][1] if k else None
        kept = "" if prev is None else (f"  {n / prev:.1%} of the previous stage kept" if prev else "  (none to filter)")
        schut = SCHUT_REMOVED.get(name)
        note = kept + (f"; Schut et al.: {1 - schut:.1%} kept" if schut is not None else "")
        ax.text(n + top * 0.01, y, f"{n}{note}", va="center", fontsize=8)
        if ctrl.get(name) is not None:
            ax.plot([ctrl[name]], [y], marker="|", markersize=16, color=CONTROL, mew=2)
    if any(v is not None for v in ctrl.values()):
        ax.plot([], [], marker="|", color=CONTROL, linestyle="none", markersize=10, mew=2,
                label=f"random-vector controls (of {controls.get('random vectors', '?')})")
    ax.set_yticks(ys, [s for s, _ in stages])
    ax.set_xlim(0, top * 1.9)
    ax.set_xlabel("concepts")
    ax.legend(loc="lower right", fontsize=8)
    untaught = (funnel.settings or {}).get("untaught") or 0
    more = f"; {untaught} more candidates not taught (a budget)" if untaught else ""
    ax.set_title(f"discovery run {funnel.run_id} ({funnel.variant} activations): the funnel{more}", fontsize=10)
    return fig


def index_html(rows: list[tuple[DiscoveredConcept, object, list, str | None]], title: str, intro: str = "", teaching=None,
               funnels: list[str] = ()) -> str:
    teaching = teaching or {}
    head = ["id", "run", "root", "activations", "status", "constraints", "non-zero", "held-out (same root)", "other roots",
            "swapped-label control", "prototypes", "teachable", "taught − random", "novel", "novelty min score", "amplified Δp",
            "random Δp", "note"]
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
           "th,td{border:1px solid #ccc;padding:2px 6px}th{cursor:pointer;background:#eee}td{text-align:right}"
           "td:nth-child(3),td:nth-child(4),td:nth-child(5),td:last-child{text-align:left}</style>",
           f"<script>{SORT_JS}</script></head><body><h1>{html.escape(title)}</h1>",
           f"<p>{intro}</p>" if intro else "",
           "".join(f"<p><img src='{html.escape(f)}' alt='funnel'></p>" for f in funnels),
           "<p>Held-out: the share of constraints v·z⁺ &gt; v·z⁻ satisfied on the root's held-out sub-optimal lines and on other "
           "roots' rollouts; the swapped-label control fits the same root with optimal and sub-optimal swapped at random. Novel: "
           "Schut's rule (the novelty score is positive at every k). Teachable: a student trained on 80 % of the prototype roots "
           "beats the same student trained on as many random positions of the teacher's games, on the held-out prototypes, by the "
           "margin with a bootstrap interval over roots above zero (taught − random: that difference). Amplified Δp: the change in the probability of the optimal "
           "rollout's first move at the largest α, beside a random direction of the same norm and sparsity. Click a column to sort.</p>",
           "<table><thead><tr>" + "".join(f"<th onclick='sortTable(this)'>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for c, novelty, amps, link in rows:
        ident = f"<a href='{html.escape(link)}'>{c.id}</a>" if link else str(c.id)
        roots = next((a for a in amps if a.positions == "roots"), None)
        min_score = min(novelty.scores.values()) if novelty is not None and novelty.scores else None
        out.append(f"<tr><td data-v='{c.id}'>{ident}</td>" + html_cell(c.run_id, "{:d}") + html_cell(c.root) + html_cell(c.variant)
                   + html_cell(c.status) + html_cell(c.constraints, "{:d}") + html_cell(c.nonzero, "{:d}")
                   + html_cell(c.heldout_same_root) + html_cell(c.heldout_other_roots) + html_cell(c.swapped_control)
                   + html_cell(None if (t := teaching.get(c.id)) is None else t.prototypes, "{:d}")
                   + html_cell(None if t is None or t.teachable is None else ("yes" if t.teachable else "no"))
                   + html_cell(None if t is None else t.difference, "{:+.3f}")
                   + html_cell(None if novelty is None else ("yes" if novelty.novel else "no")) + html_cell(min_score, "{:.4f}")
                   + html_cell(None if roots is None else roots.effect, "{:+.4f}")
                   + html_cell(None if roots is None else roots.control_effect, "{:+.4f}") + html_cell(c.reason or "") + "</tr>")
    out.append("</tbody></table></body></html>")
    return "\n".join(out)


def plot_discoveries(db, out_dir: str | os.PathLike, run_id: int | None = None, progress: Progress | None = None) -> list[Path]:
    """Write a PNG per discovered concept (of run ``run_id``, or all) and ``index.html`` into ``out_dir``."""
    out = Path(out_dir)
    written: list[Path] = []
    with db.session() as s:
        concepts = [c for c in all_concepts(s) if run_id is None or c.run_id == run_id]
        runs = {r: s.get(DiscoveryRun, r) for r in {c.run_id for c in concepts}}
        rollouts = {r: s.get(Dataset, run.dataset_id).path for r, run in runs.items()}
        nets = {r: s.get(NetworkRow, run.network_id) for r, run in runs.items()}
        extra = {c.id: (latest_novelty(s, c.id), amplification_of(s, c.id)) for c in concepts}
        teaching = {c.id: t for c in concepts if (t := teaching_of(s, c.id, CONCEPT)) is not None}
        funnels = [f for r in sorted(runs) for v in ("erased", "unerased") if (f := latest_funnel(s, r, v)) is not None]
        for row in [*teaching.values(), *funnels]:
            s.expunge(row)
        for c in concepts:
            s.expunge(c)
        for v in extra.values():
            if v[0] is not None:
                s.expunge(v[0])
            for a in v[1]:
                s.expunge(a)
    lines: dict[int, dict[str, RootLines]] = {}
    for r, path in rollouts.items():
        wanted = {c.root for c in concepts if c.run_id == r}
        lines[r] = root_lines(path, wanted) if path and Path(path).exists() else {}
    funnel_files = []
    for f in funnels:
        name = f"funnel-run-{f.run_id}-{f.variant}.png"
        save_figure(funnel_figure(f), out / name)
        written.append(out / name)
        funnel_files.append(name)
    rows = []
    for k, c in enumerate(concepts):
        novelty, amps = extra[c.id]
        link = None
        if c.status != "failed":
            link = f"concept-{c.id}.png"
            save_figure(concept_figure(c, lines[c.run_id].get(c.root), novelty, amps), out / link)
            written.append(out / link)
        rows.append((c, novelty, amps, link))
        if progress is not None:
            progress(k + 1, len(concepts) + 1)
    intro = "; ".join(f"run {r}: network {html.escape(nets[r].path or nets[r].sha256[:12])}, tap {html.escape(run.tap)}, "
                      f"rollouts {html.escape(rollouts[r] or '?')}" for r, run in runs.items())
    atomic_write_bytes(out / "index.html", index_html(rows, "Discovered concepts", intro, teaching, funnel_files).encode("utf-8"))
    written.append(out / "index.html")
    if progress is not None:
        progress(len(concepts) + 1, len(concepts) + 1)
    return written
