"""Positions from self-play: a network plays both sides, sampling moves from its policy.

Up to ``batch_size`` games run at once and every ply evaluates all of them in one batch; a finished
game's slot goes to the next game. Game ``i`` starts from opening ``i mod n`` and samples with its
own generator seeded by ``(seed, i)``, so a game does not depend on which games ran beside it, and the
same seed gives the same dataset. Moves are drawn from softmax(logits / T) over the legal moves
(``temperature`` 0: the top move, first in move order on a tie).

A game ends by python-chess's rules: checkmate, stalemate, insufficient material, the 75-move rule and
fivefold repetition, and draws by threefold repetition or the 50-move rule are claimed as soon as
they can be (also by the move about to be made). A game still going after ``max_plies`` plies
(counted from the opening's start, book moves included) stops with result ``"*"`` and termination
``max_plies``; it is not adjudicated.

Records are those of :mod:`conceptchess.games` (``white_elo``/``black_elo``/``clock`` null, ``source``
the network's file name): one per position from the end of the opening's book moves to the final
position (``move`` null).

>>> engine = Engine("maia-1100.pb.gz")                                    # doctest: +SKIP
>>> games = play(engine, 4, temperature=1.0, seed=0, max_plies=60)        # doctest: +SKIP
>>> games[0].result, len(games[0].moves)                                  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import chess
import numpy as np

from conceptchess.datasets import MACHINE_GAMES, DatasetWriter, history_start, position_record
from conceptchess.engine import Engine
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.lc0.encoder import Histories, game_histories
from conceptchess.positions import read_positions_jsonl
from conceptchess.progress import Progress
from conceptchess.provenance import sha256_of, software_versions

# Common openings as UCI book moves from the start position (the start position itself first).
BUILTIN_OPENINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("start position", ()),
    ("Ruy Lopez", ("e2e4", "e7e5", "g1f3", "b8c6", "f1b5", "a7a6")),
    ("Italian Game", ("e2e4", "e7e5", "g1f3", "b8c6", "f1c4", "f8c5")),
    ("Petrov Defence", ("e2e4", "e7e5", "g1f3", "g8f6")),
    ("Sicilian Najdorf", ("e2e4", "c7c5", "g1f3", "d7d6", "d2d4", "c5d4", "f3d4", "g8f6", "b1c3", "a7a6")),
    ("Sicilian Alapin", ("e2e4", "c7c5", "c2c3")),
    ("French Defence", ("e2e4", "e7e6", "d2d4", "d7d5")),
    ("Caro-Kann Defence", ("e2e4", "c7c6", "d2d4", "d7d5")),
    ("Scandinavian Defence", ("e2e4", "d7d5", "e4d5", "d8d5")),
    ("Pirc Defence", ("e2e4", "d7d6", "d2d4", "g8f6", "b1c3", "g7g6")),
    ("Queen's Gambit Declined", ("d2d4", "d7d5", "c2c4", "e7e6", "b1c3", "g8f6")),
    ("Queen's Gambit Accepted", ("d2d4", "d7d5", "c2c4", "d5c4")),
    ("Slav Defence", ("d2d4", "d7d5", "c2c4", "c7c6")),
    ("King's Indian Defence", ("d2d4", "g8f6", "c2c4", "g7g6", "b1c3", "f8g7", "e2e4", "d7d6")),
    ("Nimzo-Indian Defence", ("d2d4", "g8f6", "c2c4", "e7e6", "b1c3", "f8b4")),
    ("London System", ("d2d4", "d7d5", "c1f4")),
    ("Dutch Defence", ("d2d4", "f7f5")),
    ("English Opening", ("c2c4", "e7e5")),
    ("Réti Opening", ("g1f3", "d7d5", "c2c4")),
    ("King's Gambit", ("e2e4", "e7e5", "f2f4")),
)


@dataclass
class Opening:
    """Where a game starts: a position plus book moves played before the network takes over."""

    name: str
    start: chess.Board
    moves: list[chess.Move]


def builtin_openings() -> list[Opening]:
    return [Opening(name, chess.Board(), [chess.Move.from_uci(m) for m in moves]) for name, moves in BUILTIN_OPENINGS]


def read_openings(path: str | os.PathLike) -> list[Opening]:
    """Openings from a JSONL positions file: each position's ``fen`` (or the start) and ``moves``."""
    openings = []
    for spec in read_positions_jsonl(path):
        start, moves = spec.parsed(f"{path}: id={spec.id}")
        openings.append(Opening(str(spec.id), start, moves))
    if not openings:
        raise ConceptChessError(f"{path}: no opening positions")
    return openings


@dataclass
class SelfPlayGame:
    """One game: its opening, every move from the opening's start (book moves first) and the result."""

    index: int
    opening: Opening
    moves: list[chess.Move] = field(default_factory=list)
    result: str = "*"
    termination: str | None = None

    def __post_init__(self):
        self.board = self.opening.start.copy()
        self.hmc = [self.board.halfmove_clock]  # rule-50 counter after i plies
        self.origins: list[chess.Board | None] = [self.board.copy(stack=False)]  # where histories may start
        self.fens: dict[int, str] = {}
        for move in self.opening.moves:
            self.push(move)

    @property
    def book_plies(self) -> int:
        return len(self.opening.moves)

    def push(self, move: chess.Move) -> None:
        self.board.push(move)
        self.moves.append(move)
        self.hmc.append(self.board.halfmove_clock)
        self.origins.append(self.board.copy(stack=False) if self.board.halfmove_clock == 0 else None)

    def finish(self, max_plies: int) -> bool:
        """Decide whether the game is over now (setting result and termination)."""
        # a threefold or 50-move claim needs at least 7 reversible plies before the claiming move
        outcome = self.board.outcome(claim_draw=self.board.halfmove_clock >= 7)
        if outcome is not None:
            self.result, self.termination = outcome.result(), outcome.termination.name.lower()
            return True
        if len(self.moves) >= max_plies:
            self.result, self.termination = "*", "max_plies"
            return True
        return False

    def histories(self) -> Histories:
        """Encoder history of the current position, replayed from the last point it needs."""
        t = len(self.moves)
        s = history_start(self.hmc, t)
        h, _ = game_histories(self.origins[s], self.moves[s:t], plies=[t - s])
        return h

    def records(self, source: str) -> Iterator[dict]:
        for t in range(self.book_plies, len(self.moves) + 1):
            rec = {"id": f"g{self.index}-p{t}"}
            rec.update(position_record(self.opening.start, self.moves, t, self.hmc, self.origins, self.fens))
            rec.update(game=self.index, ply=t, move=self.moves[t].uci() if t < len(self.moves) else None,
                       result=self.result, white_elo=None, black_elo=None, clock=None, source=source)
            yield rec


def choose_move(moves: list[chess.Move], logits: np.ndarray, temperature: float, rng: np.random.Generator) -> chess.Move:
    """A move drawn from softmax(logits / temperature); temperature 0 takes the first maximum."""
    if temperature <= 0:
        return moves[int(np.argmax(logits))]
    z = np.asarray(logits, dtype=np.float64) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    return moves[int(rng.choice(len(p), p=p))]


def _check_play_arguments(games: int, temperature: float, max_plies: int, batch_size: int) -> None:
    for name, value, least in (("games", games, 0), ("temperature", temperature, 0), ("max_plies", max_plies, 1),
                               ("batch_size", batch_size, 1)):
        if value < least:
            raise ArgumentError(f"{{{name}}} must be {least} or more", **{name: name})


def play(engine: Engine, games: int, *, temperature: float = 1.0, seed: int = 0, openings: list[Opening] | None = None,
         max_plies: int = 400, batch_size: int = 256, progress: Progress | None = None) -> Iterator[SelfPlayGame]:
    """Play ``games`` games with ``engine``; yields them in index order.

    ``progress(finished_games, games)`` is called after every batch.
    """
    _check_play_arguments(games, temperature, max_plies, batch_size)
    openings = openings or builtin_openings()
    active: list[tuple[SelfPlayGame, np.random.Generator]] = []
    done: dict[int, SelfPlayGame] = {}
    started = finished = 0
    next_out = 0
    while next_out < games:
        while len(active) < batch_size and started < games:
            g = SelfPlayGame(started, openings[started % len(openings)])
            active.append((g, np.random.default_rng([seed, started])))
            started += 1
        still = []
        for g, rng in active:
            if g.finish(max_plies):
                done[g.index] = g
                finished += 1
            else:
                still.append((g, rng))
        active = still
        if active:
            evs = engine.evaluate(Histories.concat([g.histories() for g, _ in active]), [g.board for g, _ in active])
            for (g, rng), ev in zip(active, evs, strict=True):
                g.push(choose_move(ev.moves, ev.logits, temperature, rng))
        if progress is not None:
            progress(finished, games)
        while next_out in done:
            yield done.pop(next_out)
            next_out += 1


def selfplay_dataset(net: str | os.PathLike, output: str | os.PathLike, *, games: int, temperature: float = 1.0, seed: int = 0,
                     openings: str | os.PathLike | None = None, max_plies: int = 400, batch_size: int = 256,
                     threads: int | None = None, device: str = "auto", overwrite: bool = False,
                     progress: Progress | None = None) -> dict:
    """Play self-play games with the network file ``net`` and write their positions as a dataset; returns the manifest.

    ``progress(finished_games, games)`` as for :func:`play`. The arguments, the openings and the network are
    checked before anything is played or written.
    """
    _check_play_arguments(games, temperature, max_plies, batch_size)
    if Path(output).exists() and not overwrite:
        raise ArgumentError("already exists (choose another output or pass {overwrite})", prefix=f"{output}: ",
                            overwrite="overwrite=True")
    book = read_openings(openings) if openings is not None else builtin_openings()
    engine = Engine(net, batch_size=batch_size, threads=threads, device=device)
    source = Path(net).name
    results: Counter = Counter()
    terminations: Counter = Counter()
    plies = 0
    with DatasetWriter(output, overwrite=overwrite) as w:
        for g in play(engine, games, temperature=temperature, seed=seed, openings=book, max_plies=max_plies,
                      batch_size=batch_size, progress=progress):
            results[g.result] += 1
            terminations[g.termination] += 1
            plies += len(g.moves) - g.book_plies
            for rec in g.records(source):
                w.write(rec)
        w.manifest = {
            "kind": "positions",
            "origin": MACHINE_GAMES,
            "made_by": "positions selfplay",
            "net": {"file": source, "sha256": engine.network.sha256},
            "temperature": temperature,
            "seed": seed,
            "openings": {"source": str(openings) if openings is not None else "built-in",
                         "sha256": sha256_of(openings) if openings is not None else None,
                         "names": [o.name for o in book], "assignment": "game i starts from opening i mod n"},
            "max_plies": max_plies,
            "max_plies_result": "*",
            "batch_size": batch_size,
            "provider": engine.provider,
            "counts": {"games": games, "positions_written": w.count, "plies_played": plies,
                       "results": dict(sorted(results.items())), "terminations": dict(sorted(terminations.items()))},
            "positions": w.count,
            "software": software_versions("chess", "numpy", "onnxruntime"),
        }
        manifest = w.manifest
    return manifest
