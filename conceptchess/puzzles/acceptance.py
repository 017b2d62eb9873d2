"""What mining gave, counted: each concept's puzzles and rejected prototypes (:class:`MineResult`), and
concepts and controls side by side (:func:`acceptance_report`).

Every prototype is a puzzle, a :class:`~conceptchess.puzzles.filters.Rejection` under one of
:data:`~conceptchess.puzzles.filters.REJECTION_REASONS`, or left unexamined once ``max_puzzles``
were accepted. A control with fewer than :data:`MIN_CONTROL_PUZZLES` (5) puzzles is too few to
compare with: an acceptance rate counted from under five puzzles has a relative standard error above
1/√5 ≈ 45%.

>>> r = MineResult("fork", "concept", positions=400, prototypes=10, unchecked=2)
>>> acceptance_report([r]).notes
["no control was mined: the concepts' acceptance has nothing to compare with"]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from conceptchess.puzzles.filters import REJECTION_REASONS, Rejection
from conceptchess.puzzles.records import PuzzleRecord

MIN_CONTROL_PUZZLES = 5  # fewer control puzzles than this: too few to compare acceptance with (module docstring)


@dataclass
class MineResult:
    """What mining one concept gave: its puzzles, and every other prototype with the reason it is none.

    ``prototypes`` = puzzles + rejected + ``unchecked`` (candidates left when ``max_puzzles`` was reached).
    ``kind`` is the puzzles' kind (``concept``, ``control-random``, ``control-human``).
    """

    concept: str
    kind: str
    puzzles: list[PuzzleRecord] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    positions: int = 0
    prototypes: int = 0
    candidates: int = 0  # prototypes sent to Stockfish (after duplicates, finished games and the board filters)
    unchecked: int = 0  # candidates left unjudged once max_puzzles were accepted
    duplicates: int = 0  # puzzles left out because the collection already had their position and line
    settings: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Rejected prototypes by reason, every reason of :data:`REJECTION_REASONS` in order (zeros too)."""
        c = Counter(r.category for r in self.rejected)
        return {reason: c[reason] for reason in REJECTION_REASONS}

    @property
    def examined(self) -> int:
        """Prototypes that got a verdict (all of them unless ``max_puzzles`` stopped the run)."""
        return self.prototypes - self.unchecked

    @property
    def acceptance(self) -> float | None:
        """Puzzles per examined prototype (None when none was examined)."""
        return len(self.puzzles) / self.examined if self.examined else None

    def summary(self) -> str:
        """One line: the funnel, the acceptance and the rejections by reason.

        >>> MineResult("fork", "concept", positions=400, prototypes=10, unchecked=2,
        ...            rejected=[Rejection("a", 1, "…", "recapture")] * 8).summary()
        'fork (concept): 400 positions → 10 prototypes → 0 puzzles, 0 of 8 examined (0.0%); rejected: recapture 8; 2 not examined (max_puzzles reached)'
        """
        acc = f"{self.acceptance:.1%}" if self.acceptance is not None else "–"
        out = (f"{self.concept} ({self.kind}): {self.positions} positions → {self.prototypes} prototypes → {len(self.puzzles)} puzzles, "
               f"{len(self.puzzles)} of {self.examined} examined ({acc})")
        reasons = [f"{k} {v}" for k, v in self.counts().items() if v]
        if reasons:
            out += "; rejected: " + ", ".join(reasons)
        if self.unchecked:
            out += f"; {self.unchecked} not examined (max_puzzles reached)"
        return out


@dataclass
class AcceptanceReport:
    """Concepts and controls side by side (a value for the CLI and for people).

    ``columns``: (name, kind) of each mined concept or control; ``rows``: (label, one cell per
    column) — positions, prototypes, each rejection reason, unexamined, puzzles, acceptance;
    ``notes``: what cannot be compared, e.g. a control with fewer than :data:`MIN_CONTROL_PUZZLES`.
    """

    columns: list[tuple[str, str]]
    rows: list[tuple[str, list[str]]]
    notes: list[str]

    def text(self) -> str:
        width = max([len(r[0]) for r in self.rows] + [8])
        cols = [max(len(n), len(k) + 2, *(len(r[1][j]) for r in self.rows)) for j, (n, k) in enumerate(self.columns)]
        lines = [" " * width + "  " + "  ".join(n.rjust(w) for (n, _), w in zip(self.columns, cols, strict=True)),
                 " " * width + "  " + "  ".join(f"({k})".rjust(w) for (_, k), w in zip(self.columns, cols, strict=True))]
        lines += [label.ljust(width) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, cols, strict=True)) for label, cells in self.rows]
        return "\n".join(lines + self.notes)


def acceptance_report(results: list[MineResult], min_control: int | None = None) -> AcceptanceReport:
    """Concept and control acceptance side by side, with the counts behind it.

    A control with fewer than ``min_control`` (default :data:`MIN_CONTROL_PUZZLES`) puzzles is too
    few to compare with: the notes say so, as they do when no control or no concept was mined.
    """
    min_control = MIN_CONTROL_PUZZLES if min_control is None else min_control
    columns = [(r.concept, r.kind) for r in results]
    rows: list[tuple[str, list[str]]] = [("positions", [str(r.positions) for r in results]),
                                         ("prototypes", [str(r.prototypes) for r in results])]
    counts = [r.counts() for r in results]
    rows += [(reason, [str(c[reason]) for c in counts]) for reason in REJECTION_REASONS]
    rows.append(("not examined (max reached)", [str(r.unchecked) for r in results]))
    rows.append(("puzzles", [str(len(r.puzzles)) for r in results]))
    rows.append(("acceptance", [f"{len(r.puzzles)}/{r.examined} = {r.acceptance:.1%}" if r.acceptance is not None else "–"
                                for r in results]))
    concepts = [r for r in results if not r.kind.startswith("control")]
    controls = [r for r in results if r.kind.startswith("control")]
    notes = []
    if concepts and not controls:
        notes.append("no control was mined: the concepts' acceptance has nothing to compare with")
    if controls and not concepts:
        notes.append("no concept was mined: the controls have nothing to be compared with")
    for r in controls:
        if concepts and len(r.puzzles) < min_control:
            notes.append(f"control {r.concept}: {len(r.puzzles)} puzzle(s) of {r.examined} examined prototypes, fewer than "
                         f"{min_control}: too few to compare with the concepts")
    return AcceptanceReport(columns, rows, notes)
