"""Import the Lichess puzzle database (CSV, optionally ``.zst``).

Columns are read by header name: ``PuzzleId, FEN, Moves`` are required; ``Rating, RatingDeviation,
Popularity, NbPlays, Themes, GameUrl, OpeningTags`` are kept when present. ``FEN`` is the position
*before* the opponent's move; the first move of ``Moves`` is the opponent's, the puzzle is shown
after it, and the rest (UCI) is the solution, which ends on a solver move.

Every row is checked (FEN, move legality, ids) before anything is stored; then all rows are stored
in one transaction. Re-importing the same file is a no-op; an id already stored with another
position is refused.

>>> puzzles = read_lichess_csv("tests/data/lichess_puzzles.csv")    # doctest: +SKIP
>>> import_lichess(db, "tests/data/lichess_puzzles.csv", "lichess-sample")   # doctest: +SKIP
(8, 0)
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from conceptchess.errors import ConceptChessError
from conceptchess.games import open_text
from conceptchess.positions import parse_fen, parse_moves
from conceptchess.puzzles.records import GENERATOR_VERSION, PuzzleRecord, add_to_collection, side_name
from conceptchess.puzzles.themes import tag

REQUIRED = ("PuzzleId", "FEN", "Moves")
OPTIONAL = ("Rating", "RatingDeviation", "Popularity", "NbPlays", "Themes", "GameUrl", "OpeningTags")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _int(value: str | None, where: str, column: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ConceptChessError(f"{where}: {column} {value!r} is not a whole number") from None


def row_to_puzzle(row: dict, where: str) -> PuzzleRecord:
    """One CSV row (a dict by column name) as a puzzle (not stored)."""
    pid = (row.get("PuzzleId") or "").strip()
    if not _ID.match(pid):
        raise ConceptChessError(f"{where}: PuzzleId {pid!r} must be 1–32 letters, digits, '_' or '-'")
    start = parse_fen((row.get("FEN") or "").strip(), where)
    moves_text = (row.get("Moves") or "").split()
    if len(moves_text) < 2:
        raise ConceptChessError(f"{where}: Moves needs the opponent's move and at least one solver move, got {row.get('Moves')!r}")
    if len(moves_text) % 2 != 0:
        raise ConceptChessError(f"{where}: Moves has {len(moves_text)} moves; the opponent's move plus a solution ending on a "
                                "solver move makes an even count")
    moves = parse_moves(start, moves_text, where)
    shown = start.copy(stack=False)
    shown.push(moves[0])
    solution = [m.uci() for m in moves[1:]]
    themes_src = (row.get("Themes") or "").split()
    opening = (row.get("OpeningTags") or "").split()
    return PuzzleRecord(
        id=pid, fen=shown.fen(), start_fen=start.fen(), leading_moves=[moves[0].uci()], solution=solution,
        side_to_solve=side_name(shown.turn), kind="imported", source="lichess",
        source_game=(row.get("GameUrl") or "").strip() or None,
        themes=tag(shown, solution), source_themes=themes_src,
        rating=_int(row.get("Rating"), where, "Rating"), rating_deviation=_int(row.get("RatingDeviation"), where, "RatingDeviation"),
        popularity=_int(row.get("Popularity"), where, "Popularity"), nb_plays=_int(row.get("NbPlays"), where, "NbPlays"),
        opening_tags=opening or None, generator_version=GENERATOR_VERSION,
    )


def read_lichess_csv(path: str | os.PathLike, limit: int | None = None) -> list[PuzzleRecord]:
    """Every row of a Lichess puzzle CSV as puzzles (not stored); a bad row raises a one-line error naming file:line."""
    path = Path(path)
    if not path.is_file():
        raise ConceptChessError(f"{path}: no such file")
    out: list[PuzzleRecord] = []
    seen: dict[str, int] = {}
    with open_text(path, newline="") as f:
        try:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise ConceptChessError(f"{path}: no header row naming {', '.join(REQUIRED)} (missing {', '.join(missing)}; "
                                        f"first row: {','.join(header)[:80]!r})")
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row:
                    raise ConceptChessError(f"{where}: more fields than the header has")
                if not any((v or "").strip() for v in row.values()):
                    continue
                p = row_to_puzzle(row, where)
                if p.id in seen:
                    raise ConceptChessError(f"{where}: PuzzleId {p.id} appears twice (first on line {seen[p.id]})")
                seen[p.id] = reader.line_num
                out.append(p)
                if limit is not None and len(out) >= limit:
                    break
        except (csv.Error, UnicodeDecodeError) as e:
            raise ConceptChessError(f"{path}: not a readable CSV file ({e})") from None
    if not out:
        raise ConceptChessError(f"{path}: no puzzles in the file")
    return out


def import_lichess(db, path: str | os.PathLike, collection: str, limit: int | None = None) -> tuple[int, int]:
    """Read, check and store a Lichess CSV into ``collection`` (one transaction).
    Returns ``(added to the collection, already there)``."""
    puzzles = read_lichess_csv(path, limit)
    with db.begin() as s:
        return add_to_collection(s, collection, puzzles, description=f"Lichess puzzles from {Path(path).name}")

