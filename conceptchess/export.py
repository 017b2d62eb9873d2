"""PGN export of puzzle collections (written by python-chess).

One game per puzzle: ``[SetUp "1"]`` and ``[FEN]`` give the position shown, ``Event`` is the
collection's name, custom tags carry the provenance (``PuzzleId, Kind, Concept, Network,
Checkpoint, Tap, ConceptScore, Themes, Difficulty`` and, when known, ``Rating``, ``Source``,
``Verification``), and the solution is the main line, commented (the evaluation of the only move,
the accepted alternatives, the best defence).

A puzzle of a discovered concept, or of its random control, adds :data:`DISCOVERY_TAGS` (from
``PuzzleRecord.discovery``, :class:`~conceptchess.puzzles.discovered.DiscoveryProvenance`):
``DiscoveryRun`` and ``DiscoveryConcept`` (ids, as ``discover list`` shows them), ``DiscoveryRoot``,
``DiscoveryVariant`` (erased | unerased), ``DiscoveryRole`` (``concept``, or ``random-control (seed S)``),
``DiscoveryHeldOut`` (``0.933 (other roots 0.712, swapped-label control 0.520)``), ``DiscoveryTeaching``
(``teachable +0.120 [+0.030, +0.200], student NAME``, ``not teachable …``, the status when it was not
taught, ``?`` before any teaching) and ``DiscoveryNovelty`` (``novel: k=1 +0.021, k=5 +0.004`` or
``not novel: …``; ``?`` before any score).

A *blinded* export is the sheet an expert solves: the puzzles shuffled by a recorded seed
(:func:`~conceptchess.puzzles.records.blind_order`, the same order as an evaluation session with
that seed), each game holding only ``PuzzleId`` and the position — no concept, kind, themes,
difficulty, source, discovery or solution — so concept puzzles and the control puzzles mixed in with
them cannot be told apart.

>>> path = export_collection(db, "fork", blind=True, seed=7)          # doctest: +SKIP
>>> path.name                                                         # doctest: +SKIP
'fork-blind-seed7.pgn'
"""

from __future__ import annotations

import io
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import chess
import chess.engine
import chess.pgn

from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.files import atomic_write_text
from conceptchess.paths import PUZZLES_DIR
from conceptchess.puzzles.discovered import DiscoveryProvenance
from conceptchess.puzzles.records import PuzzleRecord, blind_order, collection_puzzles
from conceptchess.puzzles.verify import fmt_score

PROVENANCE_TAGS = ("PuzzleId", "Kind", "Concept", "Network", "Checkpoint", "Tap", "ConceptScore", "Themes", "Difficulty")
# a discovered concept's puzzles (and its random control's), in a normal export only
DISCOVERY_TAGS = ("DiscoveryRun", "DiscoveryConcept", "DiscoveryRoot", "DiscoveryVariant", "DiscoveryRole", "DiscoveryHeldOut",
                  "DiscoveryTeaching", "DiscoveryNovelty")


@dataclass
class ExportResult:
    path: Path
    puzzles: int
    blind: bool
    seed: int | None
    order: list[str]


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "collection"


def default_path(collection: str, blind: bool = False, seed: int | None = None) -> Path:
    return PUZZLES_DIR / (f"{slug(collection)}-blind-seed{seed}.pgn" if blind else f"{slug(collection)}.pgn")


def _score(cp: int | None, mate: int | None) -> str:
    if mate is not None:
        return fmt_score(chess.engine.Mate(mate))
    if cp is not None:
        return fmt_score(chess.engine.Cp(cp))
    return "?"


def _last_move_note(p: PuzzleRecord) -> str:
    side = "White" if p.side_to_solve == "white" else "Black"
    note = f"{side} to play."
    if p.start_fen and p.leading_moves:
        b = chess.Board(p.start_fen)
        for u in p.leading_moves[:-1]:
            b.push_uci(u)
        last = b.parse_uci(p.leading_moves[-1])
        num = f"{b.fullmove_number}." if b.turn == chess.WHITE else f"{b.fullmove_number}..."
        note += f" Last move: {num}{b.san(last)}."
    return note


def puzzle_game(p: PuzzleRecord, event: str, round_: int | None = None, blind: bool = False) -> chess.pgn.Game:
    """One puzzle as a python-chess game (see the module docstring for what a blinded one omits)."""
    board = chess.Board(p.fen)
    game = chess.pgn.Game()
    game.setup(board)
    h = game.headers
    h["Event"] = event
    h["Site"] = "?" if blind else (p.source_game or "?")
    h["Date"] = "????.??.??" if blind or p.created_at is None else p.created_at.strftime("%Y.%m.%d")
    h["Round"] = str(round_) if round_ is not None else "?"
    h["White"] = "?"
    h["Black"] = "?"
    h["Result"] = "*"
    h["PuzzleId"] = p.id
    game.comment = _last_move_note(p)
    if blind:
        return game
    h["Kind"] = p.kind
    h["Concept"] = p.concept or ("lichess" if p.source == "lichess" else "?")
    h["Network"] = p.network_sha256 or "?"
    h["Checkpoint"] = p.checkpoint or "?"
    h["Tap"] = p.tap or "?"
    h["ConceptScore"] = f"{p.concept_score:.6g}" if p.concept_score is not None else "?"
    h["Themes"] = " ".join(p.themes or [])
    h["Difficulty"] = f"{p.difficulty:.3f}" if p.difficulty is not None else "?"
    if p.rating is not None:
        h["Rating"] = str(p.rating)
    if p.source:
        h["Source"] = p.source
    if p.verify_reason:
        h["Verification"] = f"{'accepted' if p.verified else 'rejected'}: {p.verify_reason}"
    if p.discovery is not None:
        h.update(discovery_tags(DiscoveryProvenance.from_dict(p.discovery)))
    node: chess.pgn.GameNode = game
    alts = p.accepted_moves or []
    for ply, uci in enumerate(p.solution):
        b = node.board()
        move = b.parse_uci(uci)
        notes = []
        if ply % 2 == 0:
            k = ply // 2
            if ply == 0 and (p.best_cp is not None or p.best_mate is not None):
                ev = f"Stockfish {_score(p.best_cp, p.best_mate)}"
                if p.second_move:
                    try:
                        second = b.san(b.parse_uci(p.second_move))
                        ev += f"; next best {second} {_score(p.second_cp, p.second_mate)}"
                    except ValueError:
                        pass
                if p.win_chance_gap is not None:
                    ev += f", win-chance gap {p.win_chance_gap:.2f}"
                notes.append(ev + ".")
            if ply == 0 and p.network_policy is not None:
                notes.append(f"Network policy {p.network_policy:.2f}.")
            others = alts[k] if k < len(alts) else []
            if others:
                sans = []
                for a in others:
                    try:
                        sans.append(b.san(b.parse_uci(a)))
                    except ValueError:
                        sans.append(a)
                notes.append("Also accepted: " + ", ".join(sans) + ".")
        else:
            notes.append("Best defence.")
        node = node.add_variation(move, comment=" ".join(notes))
    if node.board().is_checkmate():
        node.comment = (node.comment + " Checkmate.").strip()
    return game


def _num(x: float | None, fmt: str = "{:.3f}") -> str:
    return "?" if x is None else fmt.format(x)


def discovery_tags(d: DiscoveryProvenance) -> dict[str, str]:
    """The PGN tags of a discovered concept's provenance (:data:`DISCOVERY_TAGS`, in that order)."""
    t, n = d.teaching, d.novelty
    if t is None:
        teaching = "?"
    elif t.teachable is None:
        teaching = t.status
    else:
        low, high = t.interval
        teaching = (f"{'teachable' if t.teachable else 'not teachable'} {_num(t.difference, '{:+.3f}')} "
                    f"[{_num(low, '{:+.3f}')}, {_num(high, '{:+.3f}')}], student {t.student or '?'}")
    if n is None:
        novelty = "?"
    else:
        ks = sorted(n.scores, key=lambda k: (len(k), k))
        novelty = f"{'novel' if n.novel else 'not novel'}: " + ", ".join(f"k={k} {n.scores[k]:+.3f}" for k in ks)
    values = (d.run, d.concept, d.root, d.variant, d.role if d.seed is None else f"{d.role} (seed {d.seed})",
              f"{_num(d.heldout_same_root)} (other roots {_num(d.heldout_other_roots)}, swapped-label control {_num(d.swapped_control)})",
              teaching, novelty)
    return {tag: str(v) for tag, v in zip(DISCOVERY_TAGS, values, strict=True)}


def write_games(games: list[chess.pgn.Game], path: str | os.PathLike) -> Path:
    """Write PGN games to ``path`` through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    for g in games:
        print(g, file=buf, end="\n\n")
    atomic_write_text(path, buf.getvalue())
    return path


def export_collection(db, collection: str, path: str | os.PathLike | None = None, *, blind: bool = False,
                      seed: int | None = None, verified_only: bool = False) -> ExportResult:
    """Write ``collection`` as PGN (default ``puzzles/<name>.pgn`` or ``puzzles/<name>-blind-seed<S>.pgn``).

    ``blind``: shuffled by ``seed`` (drawn and returned when not given) and stripped of everything but
    the position. ``verified_only``: leave out puzzles whose latest verification rejected them.
    """
    if seed is not None and not blind:
        raise ArgumentError("{seed} orders a blinded export; add {blind}", seed="seed", blind="blind=True")
    with db.session() as s:
        puzzles = collection_puzzles(s, collection)
    if verified_only:
        puzzles = [p for p in puzzles if p.verified is not False]
    if not puzzles:
        raise ConceptChessError(f"collection {collection!r} has no puzzles to export")
    if blind:
        seed = secrets.randbelow(2**31) if seed is None else int(seed)
        by_id = {p.id: p for p in puzzles}
        puzzles = [by_id[i] for i in blind_order([p.id for p in puzzles], seed)]
    games = [puzzle_game(p, collection, k, blind) for k, p in enumerate(puzzles, start=1)]
    if blind:
        for g in games:
            g.headers["OrderSeed"] = str(seed)
    out = write_games(games, path or default_path(collection, blind, seed))
    return ExportResult(out, len(games), blind, seed, [p.id for p in puzzles])


def read_pgn_puzzles(path: str | os.PathLike) -> list[chess.pgn.Game]:
    """Every game of a PGN file (python-chess), for checking an export."""
    out = []
    with open(path, encoding="utf-8") as f:
        while (g := chess.pgn.read_game(f)) is not None:
            out.append(g)
    return out
