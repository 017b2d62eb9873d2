"""Stockfish 15.1 classical evaluation terms as concepts (``sf_<term>_<column>_<phase>``).

Stockfish 15.1's non-standard ``eval`` command prints a table of the classical evaluation's terms
(Material, Imbalance, Pawns, Knights, Bishops, Rooks, Queens, Mobility, King safety, Threats,
Passed, Space, Winnable, Total), each with White, Black and Total columns split into middlegame (MG)
and endgame (EG) parts, in pawns. We run one long-lived process with ``Use NNUE`` off (the table is
then all it prints, and the final evaluation is the classical one), send ``position fen …`` and
``eval`` per position, and parse the table.

Frames: everything is absolute. The ``white`` column is White's own score (positive is good for
White), the ``black`` column is Black's own score (positive is good for Black), and ``total`` is
White minus Black, i.e. White's view; ``sf_classical_eval``/``sf_final_eval`` are White's view too.
Cells Stockfish prints as ``----`` (Material, Imbalance, Winnable and Total have only a Total
column) are not concepts. When the side to move is in check Stockfish prints no table
("Final evaluation: none (in check)"), so every ``sf_`` concept is NaN there; in endgames that
Stockfish scores with a specialised function (e.g. KPK) the table is printed with zeros.

We talk to the process directly rather than through ``chess.engine.SimpleEngine``: python-chess's
UCI protocol has no way to send ``eval`` and read its free-form reply.

>>> with StockfishEval() as sf:                                     # doctest: +SKIP
...     sf.terms(chess.Board())["sf_mobility_white_mg"]
-0.14
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import chess

from conceptchess.concepts.registry import BACKENDS, CONCEPTS, ConceptUnavailableError, register
from conceptchess.errors import ConceptChessError

FAMILY = "stockfish"
DEFAULT_PATH = "/usr/games/stockfish"
ENV_VAR = "CONCEPTCHESS_STOCKFISH"
TERMS: tuple[str, ...] = ("Material", "Imbalance", "Pawns", "Knights", "Bishops", "Rooks", "Queens", "Mobility",
                          "King safety", "Threats", "Passed", "Space", "Winnable", "Total")
TOTAL_ONLY: frozenset[str] = frozenset({"Material", "Imbalance", "Winnable", "Total"})
COLUMNS: tuple[str, ...] = ("white", "black", "total")
PHASES: tuple[str, ...] = ("mg", "eg")
BATCH = 64  # positions per round trip (their commands must fit the pipe buffer; the replies are read as they come)

_ROW = re.compile(r"^\|\s*([A-Za-z ]+?)\s*\|([^|]*)\|([^|]*)\|([^|]*)\|\s*$")
_EVAL = re.compile(r"^(Classical|Final) evaluation\s+([+-]?\d+(?:\.\d+)?)\s+\(white side\)")


class StockfishError(ConceptChessError):
    """The Stockfish process failed or printed something we cannot parse."""


def term_name(term: str, column: str, phase: str) -> str:
    """Concept name of one cell, e.g. ``term_name("King safety", "white", "eg") == "sf_king_safety_white_eg"``."""
    return f"sf_{term.lower().replace(' ', '_')}_{column}_{phase}"


def concept_names() -> list[str]:
    """Every Stockfish concept name, in table order, then the two evaluations."""
    names = [term_name(t, c, p) for t in TERMS for c in COLUMNS for p in PHASES if c == "total" or t not in TOTAL_ONLY]
    return names + ["sf_classical_eval", "sf_final_eval"]


def find_stockfish() -> str | None:
    """Path of the Stockfish binary: ``$CONCEPTCHESS_STOCKFISH``, else ``stockfish`` on PATH, else /usr/games/stockfish."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env if Path(env).is_file() and os.access(env, os.X_OK) else None
    found = shutil.which("stockfish")
    if found:
        return found
    return DEFAULT_PATH if Path(DEFAULT_PATH).is_file() and os.access(DEFAULT_PATH, os.X_OK) else None


def require_stockfish() -> str:
    """The binary's path, or a :class:`ConceptUnavailableError` naming what is missing."""
    path = find_stockfish()
    if path is None:
        where = os.environ.get(ENV_VAR) or f"`stockfish` on PATH or {DEFAULT_PATH}"
        raise ConceptUnavailableError(f"Stockfish concepts need the Stockfish 15.1 binary, not found ({where}); "
                                      f"install it (apt-get install stockfish) or set {ENV_VAR}")
    return path


def parse_eval(text: str | Iterable[str]) -> dict[str, float]:
    """Parse the reply to one ``eval`` into ``{concept name: value in pawns}``.

    In check (no table) every Stockfish concept is NaN. Raises :class:`StockfishError` when the
    reply holds neither a term table nor the in-check line.

    >>> parse_eval("Final evaluation: none (in check)")["sf_total_total_mg"]
    nan
    """
    lines = text.splitlines() if isinstance(text, str) else list(text)
    out = {n: math.nan for n in concept_names()}
    rows = 0
    for raw in lines:
        line = raw.rstrip()
        if line.startswith("Final evaluation: none"):
            return out
        m = _ROW.match(line)
        if m and m.group(1) in TERMS:
            term = m.group(1)
            for column, cell in zip(COLUMNS, m.groups()[1:], strict=True):
                parts = cell.split()
                if len(parts) != 2:
                    raise StockfishError(f"stockfish eval: malformed cell {cell!r} in row {term!r}")
                for phase, tok in zip(PHASES, parts, strict=True):
                    if tok.startswith("--"):
                        continue
                    try:
                        out[term_name(term, column, phase)] = float(tok)
                    except ValueError:
                        raise StockfishError(f"stockfish eval: malformed number {tok!r} in row {term!r}") from None
            rows += 1
            continue
        m = _EVAL.match(line)
        if m:
            out["sf_classical_eval" if m.group(1) == "Classical" else "sf_final_eval"] = float(m.group(2))
    if rows != len(TERMS):
        raise StockfishError(f"stockfish eval printed {rows} of the {len(TERMS)} classical term rows "
                             "(these concepts need Stockfish 15.1's `eval`)")
    return out


class StockfishEval:
    """One long-lived Stockfish process answering ``eval`` for many positions.

    >>> with StockfishEval() as sf:                                 # doctest: +SKIP
    ...     rows = sf.terms_many([chess.Board(), chess.Board("7k/8/6K1/8/8/8/8/6Q1 w - - 0 1")])
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path or require_stockfish()
        try:
            self.proc = subprocess.Popen([self.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True, bufsize=1)
        except OSError as e:
            raise StockfishError(f"cannot start stockfish at {self.path} ({e.strerror})") from None
        self.id = ""
        self._send("uci")
        for line in self._until("uciok"):
            if line.startswith("id name "):
                self.id = line[len("id name "):].strip()
        if not self.id.startswith("Stockfish"):
            self.close()
            raise StockfishError(f"{self.path} does not identify as Stockfish (id name {self.id!r})")
        self._send("setoption name Use NNUE value false")
        self._send("isready")
        list(self._until("readyok"))

    def __enter__(self) -> "StockfishEval":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Ask the process to quit; kill it if it does not."""
        proc = getattr(self, "proc", None)
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.stdin.write("quit\n")
            proc.stdin.flush()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def _send(self, *commands: str) -> None:
        try:
            self.proc.stdin.write("".join(c + "\n" for c in commands))
            self.proc.stdin.flush()
        except OSError:
            raise StockfishError(f"stockfish at {self.path} exited (status {self.proc.poll()})") from None

    def _until(self, token: str):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise StockfishError(f"stockfish at {self.path} exited (status {self.proc.wait()}) before {token!r}")
            line = line.rstrip("\n")
            if line == token:
                return
            yield line

    def raw_eval(self, board: chess.Board) -> str:
        """The verbatim reply to ``eval`` for one position (what :func:`parse_eval` reads)."""
        return self._eval_batch([board])[0]

    def terms(self, board: chess.Board) -> dict[str, float]:
        """Every Stockfish concept of one position."""
        return self.terms_many([board])[0]

    def terms_many(self, boards: Sequence[chess.Board]) -> list[dict[str, float]]:
        """Every Stockfish concept of each position, ``BATCH`` positions per round trip."""
        out: list[dict[str, float]] = []
        for s in range(0, len(boards), BATCH):
            try:
                out += [parse_eval(r) for r in self._eval_batch(boards[s : s + BATCH])]
            except StockfishError as e:
                raise StockfishError(f"{self.id} at {self.path}: {e}") from None
        return out

    def _eval_batch(self, boards: Sequence[chess.Board]) -> list[str]:
        cmds = []
        for b in boards:
            cmds += [f"position fen {b.fen()}", "eval"]
        self._send(*cmds, "isready")
        replies, current = [], []
        for line in self._until("readyok"):
            current.append(line)
            if line.startswith("Final evaluation"):
                replies.append("\n".join(current))
                current = []
        if len(replies) != len(boards):
            raise StockfishError(f"stockfish answered {len(replies)} of {len(boards)} eval commands")
        return replies


def available() -> bool:
    """Whether the Stockfish binary is present (its concepts can be computed)."""
    return find_stockfish() is not None


def _definition(term: str, column: str, phase: str) -> str:
    whose = {"white": "White's own score (+ good for White)", "black": "Black's own score (+ good for Black)",
             "total": "White minus Black (White's view)"}[column]
    return f"Stockfish 15.1 classical '{term}' term, {'middlegame' if phase == 'mg' else 'endgame'} part, {whose}, pawns; NaN in check"


for _t in TERMS:
    for _c in COLUMNS:
        if _c != "total" and _t in TOTAL_ONLY:
            continue
        for _p in PHASES:
            _n = term_name(_t, _c, _p)
            register(_n, _definition(_t, _c, _p), "scalar", "black" if _c == "black" else "white", FAMILY,
                     lambda terms, n=_n: terms[n], source="stockfish")
register("sf_classical_eval", "Stockfish 15.1 classical evaluation (phase-tapered, scaled), pawns, White's view; NaN in check",
         "scalar", "white", FAMILY, lambda terms: terms["sf_classical_eval"], source="stockfish")
register("sf_final_eval", "Stockfish 15.1 final evaluation with NNUE off (classical, damped by the 50-move counter), pawns, "
         "White's view; NaN in check", "scalar", "white", FAMILY, lambda terms: terms["sf_final_eval"], source="stockfish")
assert [n for n, c in CONCEPTS.items() if c.source == "stockfish"] == concept_names()


def _terms_of_one(board: chess.Board) -> dict[str, float]:
    """The term table of one board with a Stockfish process of its own (``CONCEPTS[name](board)``; :func:`label` batches)."""
    sf = StockfishEval()
    try:
        return sf.terms(board)
    finally:
        sf.close()


BACKENDS["stockfish"] = _terms_of_one
