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

from collections.abc import Mapping

from conceptchess.errors import ConceptChessError


class ArgumentError(ConceptChessError):
    """A refusal that names some of the caller's arguments. ``str(e)`` calls them what the library
    calls them; a shell with its own names for them (the CLI's options) asks :meth:`naming`.

    >>> e = ArgumentError("{seed} orders a blinded session; add {blind}", seed="seed", blind="blind=True")
    >>> str(e), e.naming({"seed": "--seed", "blind": "--blind"})
    ('seed orders a blinded session; add blind=True', '--seed orders a blinded session; add --blind')
    """

    def __init__(self, template: str, prefix: str = "", **arguments: str):
        self.template = template  # str.format placeholders: the arguments' names
        self.prefix = prefix  # where it happened, e.g. "puzzle cc0Fk: "
        self.arguments = arguments  # argument → the library's name for it
        super().__init__(self.naming({}))

    def naming(self, names: Mapping[str, str]) -> str:
        """The message with each argument called ``names[argument]`` (the library's name where ``names`` has none)."""
        return self.prefix + self.template.format(**{a: names.get(a, own) for a, own in self.arguments.items()})

    def within(self, prefix: str) -> ArgumentError:
        """The same refusal, placed: ``prefix`` goes before the message."""
        return ArgumentError(self.template, prefix + self.prefix, **self.arguments)
