"""Expert studies: experts solve puzzle collections before, while and after studying concepts.

- :mod:`~conceptchess.study.grading` — a move from SAN or UCI, an answer's moves, and the one grading
  of an answer against a puzzle's accepted moves (checkmate always counts).
- :mod:`~conceptchess.study.sessions` — experts, sessions and answers in the database: start a
  session, record an answer, import a CSV of answers, list the puzzles still to do.
- :mod:`~conceptchess.study.terminal` — the interactive terminal mode (input and output only).
- :mod:`~conceptchess.study.report` — solve rates, before → after changes with bootstrap intervals,
  concept vs control across experts; PNG and HTML.

The CLI (``conceptchess eval …``) and any other shell (a web page) call the same functions.

>>> from conceptchess.study import report, sessions                                    # doctest: +SKIP
>>> sid = sessions.new_session(db, "Alice", "before", "fork", blind=True, seed=3).id    # doctest: +SKIP
>>> sessions.record_answer(db, sid, "a1b2c3d4e5", "Nc7+", seconds=40, confidence=4)    # doctest: +SKIP
>>> report.report(db, seed=0).comparisons                                              # doctest: +SKIP
"""

from __future__ import annotations
