"""Puzzles: mined from concept directions, imported from Lichess, verified, tagged and rated.

- :mod:`~conceptchess.puzzles.verify` — the only-good-move check (Stockfish MultiPV 2, lichess-puzzler's
  win-chance criterion) and line extension; :mod:`~conceptchess.puzzles.engine_pool` — single-threaded
  Stockfish processes shared by worker threads.
- :mod:`~conceptchess.puzzles.mine` — concept scores over an activation folder → top 2.5% prototypes →
  puzzles; random-direction and human-concept controls. :mod:`~conceptchess.puzzles.filters` — the
  trivial-puzzle filters and the reasons a prototype is rejected; :mod:`~conceptchess.puzzles.acceptance`
  — what mining gave, concepts and controls side by side.
- :mod:`~conceptchess.puzzles.lichess` — Lichess puzzle CSV import; :mod:`~conceptchess.puzzles.verdicts`
  — verify a stored collection and record the verdicts.
- :mod:`~conceptchess.puzzles.themes` — Lichess theme names from board geometry;
  :mod:`~conceptchess.puzzles.difficulty` — a difficulty estimate before anyone solves it.
- :mod:`~conceptchess.puzzles.records` — the puzzle value (:class:`~conceptchess.puzzles.records.PuzzleRecord`),
  ids, boards, blinded order, and collections in the database.

The concept directions mined are :mod:`conceptchess.directions` (stored probes:
:mod:`conceptchess.store.directions`); PGN export is :mod:`conceptchess.export`; expert studies are
:mod:`conceptchess.study`; the tables are :mod:`conceptchess.store.puzzles`; the puzzles of ``make demo`` are
mined by :mod:`conceptchess.demo`.
"""
