"""Positions from engine games: Stockfish at a low node count plays both sides from human openings.

Game ``i`` draws everything from its own generator seeded by ``(seed, i)``: one of the given games
(its first ``k`` plies, ``k`` uniform in ``[0, opening_plies]``), then ``random_plies`` uniformly random
legal moves (so games leave the book), then Stockfish (one thread, a new game each time, ``nodes``
per move) plays both sides; with ``blunder_rate`` > 0 each of its moves is replaced, with that
probability, by a uniformly random legal move (positions with something to punish: the hanging
pieces and mates a network must learn to see). Games end by the rules as in self-play
(:class:`conceptchess.selfplay.SelfPlayGame`) or at ``max_plies`` (result ``"*"``). Stockfish at a fixed
node count with one thread is deterministic, so the same seed gives the same dataset, whatever the
number of workers.

Records are those of self-play (``source`` "stockfish"); the opening and random plies are the
"book" and give no record. Label them with :func:`conceptchess.enginelabels.label_engine_dataset`.

>>> engine_games_dataset(["games.pgn"], "out/sf-games", EngineGameSettings(games=100))   # doctest: +SKIP
"""

from __future__ import annotations

import io
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import chess
import chess.engine
import chess.pgn
import numpy as np

from conceptchess.concepts.stockfish import require_stockfish
from conceptchess.datasets import MACHINE_GAMES, DatasetWriter
from conceptchess.enginelabels import stockfish_version
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.games import open_text
from conceptchess.progress import Progress
from conceptchess.provenance import sha256_of, software_versions
from conceptchess.selfplay import Opening, SelfPlayGame


@dataclass(frozen=True)
class EngineGameSettings:
    games: int = 200
    nodes: int = 1000
    opening_plies: int = 10
    random_plies: int = 2
    blunder_rate: float = 0.0
    max_plies: int = 300
    seed: int = 0
    hash_mb: int = 16
    workers: int = max(1, os.cpu_count() or 1)

    def check(self) -> None:
        for name, value, least in (("games", self.games, 1), ("nodes", self.nodes, 1), ("opening_plies", self.opening_plies, 0),
                                   ("random_plies", self.random_plies, 0), ("max_plies", self.max_plies, 1),
                                   ("hash_mb", self.hash_mb, 1), ("workers", self.workers, 1)):
            if value < least:
                raise ArgumentError(f"{{{name}}} must be at least {least}, got {value}", **{name: name})
        if not 0 <= self.blunder_rate <= 1:
            raise ArgumentError(f"{{blunder_rate}} must be in [0, 1], got {self.blunder_rate}", blunder_rate="blunder_rate")


def read_opening_lines(paths: Iterable[str | os.PathLike], plies: int) -> list[list[str]]:
    """The first ``plies`` moves (UCI) of every standard game in the PGN files."""
    lines = []
    for path in paths:
        with open_text(path) as f:
            text = f.read()
        stream = io.StringIO(text)
        while (game := chess.pgn.read_game(stream)) is not None:
            if game.errors or game.headers.get("Variant", "Standard").lower() not in ("standard", "") or "FEN" in game.headers:
                continue
            lines.append([m.uci() for m in list(game.mainline_moves())[:plies]])
    if not lines:
        raise ConceptChessError(f"{', '.join(map(str, paths))}: no standard game to take openings from")
    return lines


def book_of(index: int, lines: list[list[str]], settings: EngineGameSettings) -> Opening:
    """Game ``index``'s opening: a prefix of a human game, then random legal moves (module docstring)."""
    rng = np.random.default_rng([settings.seed, index])
    line = lines[int(rng.integers(len(lines)))]
    k = int(rng.integers(settings.opening_plies + 1))
    board = chess.Board()
    moves = []
    for uci in line[:k]:
        moves.append(board.parse_uci(uci))
        board.push(moves[-1])
    for _ in range(settings.random_plies):
        legal = list(board.legal_moves)
        if not legal or board.is_game_over():
            break
        moves.append(legal[int(rng.integers(len(legal)))])
        board.push(moves[-1])
    return Opening(f"game {index}", chess.Board(), moves)


_engine: chess.engine.SimpleEngine | None = None
_settings: EngineGameSettings | None = None
_lines: list[list[str]] = []


def _start_worker(path: str, settings: EngineGameSettings, lines: list[list[str]]) -> None:
    global _engine, _settings, _lines
    _engine = chess.engine.SimpleEngine.popen_uci(path)
    _engine.configure({"Threads": 1, "Hash": settings.hash_mb})
    _settings, _lines = settings, lines


def play_one(engine: chess.engine.SimpleEngine, index: int, lines: list[list[str]], settings: EngineGameSettings) -> SelfPlayGame:
    """Game ``index`` (module docstring)."""
    game = SelfPlayGame(index, book_of(index, lines, settings))
    rng = np.random.default_rng([settings.seed, index, 1])
    limit = chess.engine.Limit(nodes=settings.nodes)
    key = object()  # one engine game: the hash is cleared at its start only
    while not game.finish(settings.max_plies):
        if settings.blunder_rate > 0 and rng.random() < settings.blunder_rate:
            legal = list(game.board.legal_moves)
            move = legal[int(rng.integers(len(legal)))]
        else:
            move = engine.play(game.board, limit, game=key).move
        game.push(move)
    return game


def _play(index: int) -> tuple[int, list[str], str, str | None]:
    game = play_one(_engine, index, _lines, _settings)
    return index, [m.uci() for m in game.moves[game.book_plies:]], game.result, game.termination


def engine_games_dataset(pgns: list[str | os.PathLike], output: str | os.PathLike, settings: EngineGameSettings = EngineGameSettings(),
                         *, overwrite: bool = False, progress: Progress | None = None) -> dict:
    """Play ``settings.games`` Stockfish games from the openings of ``pgns`` and write their positions;
    returns the manifest. ``progress(finished_games, games)``."""
    settings.check()
    if Path(output).exists() and not overwrite:
        raise ArgumentError("already exists (choose another output or pass {overwrite})", prefix=f"{output}: ",
                            overwrite="overwrite=True")
    path = require_stockfish()
    lines = read_opening_lines(pgns, settings.opening_plies)
    version = stockfish_version(path)
    results: Counter = Counter()
    terminations: Counter = Counter()
    ctx = multiprocessing.get_context("spawn")
    workers = min(settings.workers, settings.games)
    with (DatasetWriter(output, overwrite=overwrite) as w,
          ctx.Pool(workers, initializer=_start_worker, initargs=(path, settings, lines)) as pool):
        for done, (index, moves, result, termination) in enumerate(pool.imap(_play, range(settings.games)), start=1):
            game = SelfPlayGame(index, book_of(index, lines, settings))
            for uci in moves:
                game.push(chess.Move.from_uci(uci))
            game.result, game.termination = result, termination
            results[result] += 1
            terminations[termination] += 1
            for rec in game.records("stockfish"):
                w.write(rec)
            if progress is not None:
                progress(done, settings.games)
        w.manifest = {
            "kind": "positions",
            "origin": MACHINE_GAMES,
            "made_by": "positions engine-games",
            "engine": {"stockfish": version, "binary": path, "options": {"Threads": 1, "Hash": settings.hash_mb}},
            "settings": {k: v for k, v in asdict(settings).items() if k != "workers"},
            "openings": {"files": [{"file": str(p), "sha256": sha256_of(p)} for p in pgns], "games": len(lines)},
            "counts": {"games": settings.games, "positions_written": w.count, "results": dict(sorted(results.items())),
                       "terminations": dict(sorted(terminations.items()))},
            "software": software_versions("chess", "numpy"),
        }
        manifest = w.manifest
    return manifest
