"""Is there exactly one good move? Stockfish (MultiPV 2) with lichess-puzzler's criterion.

At every solver move Stockfish searches the two best moves. With win chances
``wc(cp) = 2 / (1 + exp(-0.00368208·cp)) - 1`` (±1 for a mate), the best move is the *only* good
move when ``wc(best) > wc(second) + 0.7`` (or when it is the only legal move) — so a forced mate
whose first move has a second mating or winning alternative is refused, as lichess-puzzler does.
Mates in one are handled as mates: every checkmating move is accepted (Lichess accepts any mating
move), and the position qualifies when the best move that does not mate leaves at most 0.6 win
chances (lichess-puzzler's ``is_valid_mate_in_one``).

The solver must also stay winning: the best move at every solver move keeps at least
``min_advantage_cp`` (default +200 cp, lichess-puzzler's ``cook_advantage``: "Not winning enough"
below ``Cp(200)``); a forced mate is exempt. So an only move that merely holds an equal or lost
position (a defensive recapture at +0.26 or −0.15) is no puzzle. ``min_advantage_cp=0`` turns the
floor off.

Two uses:

- :func:`find_line` (mining): from a position, the network's move must be the only good move
  (Stockfish and the network agree), then the line is extended — Stockfish's best reply, then the
  solver's best move — following lichess-puzzler's generator (``generator/generator.py`` of
  github.com/ornicar/lichess-puzzler):

  - a *mate line* (the first move mates in at most ``max_moves``; its ``cook_mate``) must stay
    unique and mating at every solver move until checkmate, else it is rejected whole — not cut
    short into a non-mating puzzle;
  - an *advantage line* (its ``cook_advantage``) stops before the first solver move that is not
    unique, and is rejected whole when a later solver move falls below ``min_advantage_cp``; a
    final solver move that was the only legal move (it just completes the material already won)
    is dropped with the reply before it, repeatedly ("Remove final only-move") — unless it mates.

  The line always ends on a solver move.
- :func:`check_line` (imported or stored puzzles): every solver move of a given solution must be the
  only good move (or a mating move) and keep the advantage; the opponent's moves are taken as given.

:func:`already_decided` tells a position whose outcome no longer hangs on the solver's move (used by
mining to drop such puzzles).

Each search starts from a cleared hash (``ucinewgame``) with a node limit and ``Threads=1``, so a
verdict does not depend on what the process searched before: the same position and settings give
the same verdict.

>>> with StockfishPool(1) as pool:                                  # doctest: +SKIP
...     v = find_line(pool.engines[0], chess.Board("6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"), VerifySettings(nodes=50_000))
>>> v.accepted, v.solution, v.reason                                # doctest: +SKIP
(True, ['a1a8'], 'ok: mate Ra8# (#1)')
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import chess
import chess.engine

from conceptchess.chessfacts import gives_checkmate

WIN_CHANCE_K = 0.00368208
LICHESS_GAP = 0.7
LICHESS_NODES = 25_000_000  # lichess-puzzler's node limit per check (its pair_limit)
MATE_IN_ONE_THRESHOLD = 0.6  # lichess-puzzler: with several mates in one, the best non-mate must be below this
MIN_ADVANTAGE_CP = 200  # lichess-puzzler's cook_advantage: "Not winning enough" below Cp(200)
DECIDED_CP = 500  # already_decided: ±5 pawns, where a move no longer changes the result

# Why a line is refused (Verdict.category); an accepted one says ACCEPTED.
ACCEPTED = "accepted"
GAME_OVER = "game over"
ONE_LEGAL_MOVE = "only one legal move"
BAD_SOLUTION = "bad solution"
NETWORK_DISAGREES = "network disagrees"
NOT_UNIQUE = "not unique"
NOT_WINNING = "not winning enough"
MATE_NOT_FORCED = "mate not forced"
WRONG_MOVE = "wrong move"  # check_line: the given move is not Stockfish's only good move
VERDICT_CATEGORIES = (GAME_OVER, ONE_LEGAL_MOVE, BAD_SOLUTION, NETWORK_DISAGREES, NOT_UNIQUE, NOT_WINNING, MATE_NOT_FORCED, WRONG_MOVE)


def win_chances(score: chess.engine.Score) -> float:
    """Win chances in [-1, 1] of a score from the side it is given for (lichess-puzzler's formula).

    >>> round(win_chances(chess.engine.Cp(300)), 3), win_chances(chess.engine.Mate(2))
    (0.502, 1)
    """
    mate = score.mate()
    if mate is not None:
        return 1 if mate > 0 else -1
    cp = score.score()
    return 2 / (1 + math.exp(-WIN_CHANCE_K * cp)) - 1


def fmt_score(score: chess.engine.Score | None) -> str:
    """``+3.20`` for centipawns, ``#3`` / ``#-2`` for mates, ``?`` for none."""
    if score is None:
        return "?"
    mate = score.mate()
    if mate is not None:
        return f"#{mate}"
    return f"{score.score() / 100:+.2f}"


@dataclass(frozen=True)
class VerifySettings:
    """How hard Stockfish looks. ``nodes`` per MultiPV-2 check of a solver move (lichess-puzzler: 25M);
    ``reply_nodes`` per opponent reply while extending a line (default: ``nodes``); ``gap`` the
    win-chance margin; ``max_moves`` solver moves at most; ``min_advantage_cp``: the best move at
    every solver move must keep at least this advantage for the solver (lichess-puzzler: 200; a
    forced mate is exempt), which drops equal and defensive only-moves — 0 (or None) turns it off."""

    nodes: int = 1_000_000
    reply_nodes: int | None = None
    gap: float = LICHESS_GAP
    max_moves: int = 8
    min_advantage_cp: int | None = MIN_ADVANTAGE_CP

    def __post_init__(self):
        object.__setattr__(self, "min_advantage_cp", int(self.min_advantage_cp or 0))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["reply_nodes"] = self.reply_nodes or self.nodes
        d["multipv"] = 2
        d["criterion"] = ("lichess-puzzler: wc(best) > wc(second) + gap, wc(cp) = 2/(1+exp(-0.00368208 cp)) - 1; mates as mates; "
                          "best >= min_advantage_cp at every solver move unless it mates (0: no floor); "
                          "mate lines unique to the mate or rejected; a final only-legal move dropped")
        return d


@dataclass
class Step:
    """Stockfish's judgement of one solver move (scores from the solver's side)."""

    best: chess.Move
    best_score: chess.engine.Score
    second: chess.Move | None
    second_score: chess.engine.Score | None
    unique: bool  # the best move is the only good move (or it mates)
    accepted: list[chess.Move]  # moves a solver may play here (best first); both top moves when not unique
    depth: int = 0
    nodes: int = 0
    depth_found: int | None = None  # first depth from which the final best move stayed best
    legal: int = 0  # legal moves in the position

    @property
    def mate(self) -> bool:
        """The best move mates in one (then every checkmating move is accepted)."""
        return self.best_score.mate() == 1

    @property
    def gap(self) -> float | None:
        if self.second_score is None:
            return None
        return win_chances(self.best_score) - win_chances(self.second_score)

    def describe(self, board: chess.Board) -> str:
        best = f"{board.san(self.best)} ({fmt_score(self.best_score)})"
        if self.second is None:
            return f"{best}, the only legal move"
        second = f"{board.san(self.second)} ({fmt_score(self.second_score)})"
        if self.mate and self.second not in self.accepted:
            wc = win_chances(self.second_score)
            return f"{best} vs best non-mate {second}, win chances {wc:.2f} {'≤' if wc <= MATE_IN_ONE_THRESHOLD else '>'} {MATE_IN_ONE_THRESHOLD}"
        return f"{best} vs {second}, win-chance gap {self.gap:.2f}"


@dataclass
class Verdict:
    """The outcome of :func:`find_line` or :func:`check_line`; ``category`` is one of
    :data:`VERDICT_CATEGORIES` for a refused line, :data:`ACCEPTED` otherwise."""

    accepted: bool
    reason: str
    solution: list[str] = field(default_factory=list)  # UCI, solver first and last
    steps: list[Step] = field(default_factory=list)  # one per solver move judged
    checkmate: bool = False  # the line ends in checkmate
    settings: dict = field(default_factory=dict)
    category: str = ACCEPTED

    @property
    def first(self) -> Step | None:
        return self.steps[0] if self.steps else None

    @property
    def solver_moves(self) -> int:
        return (len(self.solution) + 1) // 2

    @property
    def final_score(self) -> chess.engine.Score | None:
        """Stockfish's score of the last solver move judged (the solver's side)."""
        return self.steps[-1].best_score if self.steps else None

    def alternatives(self) -> list[list[str]]:
        """For each solver move of the solution: the other accepted moves (UCI)."""
        out = []
        for k, step in enumerate(self.steps[: self.solver_moves]):
            played = self.solution[2 * k] if 2 * k < len(self.solution) else None
            out.append([m.uci() for m in step.accepted if m.uci() != played])
        return out

    def columns(self) -> dict:
        """The verification fields of a :class:`~conceptchess.puzzles.records.PuzzleRecord` (and columns of its stored row)."""
        s = self.first
        d = {"verified": self.accepted, "verify_reason": self.reason, "verify_settings": self.settings,
             "accepted_moves": self.alternatives() if self.accepted else None}
        if s is not None:
            d.update(best_move=s.best.uci(), best_cp=s.best_score.score(), best_mate=s.best_score.mate(),
                     second_move=s.second.uci() if s.second else None,
                     second_cp=s.second_score.score() if s.second_score is not None else None,
                     second_mate=s.second_score.mate() if s.second_score is not None else None,
                     win_chance_gap=s.gap)
        else:
            d.update(best_move=None, best_cp=None, best_mate=None, second_move=None, second_cp=None, second_mate=None,
                     win_chance_gap=None)
        return d


def _is_bound(info: dict) -> bool:
    return bool(info.get("lowerbound") or info.get("upperbound"))


def judge(sf: chess.engine.SimpleEngine, board: chess.Board, settings: VerifySettings) -> Step:
    """Search the two best moves of the side to move and decide whether the best is the only good one.

    lichess-puzzler's rule: unique when ``wc(best) > wc(second) + gap``. A mate in one is the
    exception: every checkmating move is accepted, and it is a puzzle when the best move that does
    not mate has win chances of at most 0.6.
    """
    limit = chess.engine.Limit(nodes=settings.nodes)
    per_depth: dict[int, chess.Move] = {}
    with sf.analysis(board, limit, multipv=2, game=object()) as analysis:
        for info in analysis:
            if info.get("multipv", 1) == 1 and info.get("pv") and "depth" in info and not _is_bound(info):
                per_depth[info["depth"]] = info["pv"][0]
        lines = [i for i in analysis.multipv if i.get("pv")]
    if not lines:
        raise chess.engine.EngineError(f"no move returned for {board.fen()}")
    pov = board.turn
    best, best_score = lines[0]["pv"][0], lines[0]["score"].pov(pov)
    second = lines[1]["pv"][0] if len(lines) > 1 else None
    second_score = lines[1]["score"].pov(pov) if len(lines) > 1 else None
    legal = list(board.legal_moves)
    if best_score.mate() == 1 or gives_checkmate(board, best):
        mating = [m for m in legal if gives_checkmate(board, m)]
        accepted = [best] + [m for m in mating if m != best]
        others = [m for m in legal if m not in mating]
        if not others:
            unique = True
        elif second is not None and second not in mating:
            unique = win_chances(second_score) <= MATE_IN_ONE_THRESHOLD
        else:
            info = sf.analyse(board, limit, root_moves=others, game=object())
            second, second_score = info["pv"][0], info["score"].pov(pov)
            unique = win_chances(second_score) <= MATE_IN_ONE_THRESHOLD
    elif second is None and len(legal) > 1:
        unique, accepted = False, [best]  # a truncated search: no verdict on uniqueness
    else:
        unique = second is None or win_chances(best_score) > win_chances(second_score) + settings.gap
        accepted = [best] if unique else [best, second]
    depth_found = None
    for d in sorted(per_depth, reverse=True):
        if per_depth[d] != best:
            break
        depth_found = d
    return Step(best, best_score, second, second_score, unique, accepted, int(lines[0].get("depth", 0)),
                int(lines[0].get("nodes", 0)), depth_found, len(legal))


def _best_reply(sf, board: chess.Board, settings: VerifySettings) -> chess.Move:
    info = sf.analyse(board, chess.engine.Limit(nodes=settings.reply_nodes or settings.nodes), game=object())
    if not info.get("pv"):
        raise chess.engine.EngineError(f"no reply returned for {board.fen()}")
    return info["pv"][0]


def _too_little(step: Step, settings: VerifySettings) -> bool:
    mate = step.best_score.mate()
    if not settings.min_advantage_cp or (mate is not None and mate > 0):
        return False
    cp = step.best_score.score()
    return cp is None or cp < settings.min_advantage_cp


def _floor(settings: VerifySettings) -> str:
    return f"{settings.min_advantage_cp / 100:+.2f}"


def _opening_problem(board: chess.Board) -> tuple[str, str] | None:
    if board.is_game_over(claim_draw=False):
        return GAME_OVER, f"game over ({board.outcome().termination.name.lower().replace('_', ' ')})"
    if board.legal_moves.count() == 1:
        return ONE_LEGAL_MOVE, "only one legal move"
    return None


def _mate_in(step: Step) -> int | None:
    mate = step.best_score.mate()
    return mate if mate is not None and mate > 0 else None


def find_line(sf: chess.engine.SimpleEngine, board: chess.Board, settings: VerifySettings = VerifySettings(),
              network_move: chess.Move | None = None) -> Verdict:
    """Mine a puzzle line from ``board`` (the solver is the side to move; ``board`` is left as it was).

    ``network_move``: the network's choice; the puzzle is refused unless it is the only good move
    (or any checkmating move in a mate in one). Without it, Stockfish's best move starts the line.
    The line follows lichess-puzzler's generator (module docstring): a mate line is unique to the
    mate or rejected whole; an advantage line stops before the first ambiguous solver move, keeps
    ``min_advantage_cp`` throughout, and loses a final only-legal move.
    """
    b = board.copy()
    sett = settings.as_dict()
    problem = _opening_problem(b)
    if problem:
        return Verdict(False, problem[1], settings=sett, category=problem[0])

    def refuse(category: str, reason: str, steps: list[Step]) -> Verdict:
        return Verdict(False, reason, [m.uci() for m in line], steps, settings=sett, category=category)

    line: list[chess.Move] = []
    first = judge(sf, b, settings)
    if not first.unique:
        return refuse(NOT_UNIQUE, f"no unique move: {first.describe(b)}", [first])
    if _too_little(first, settings):
        return refuse(NOT_WINNING, f"not winning enough: {b.san(first.best)} {fmt_score(first.best_score)} < {_floor(settings)}",
                      [first])
    move = first.best
    if network_move is not None:
        if network_move not in first.accepted:
            return refuse(NETWORK_DISAGREES, f"network plays {b.san(network_move)}, Stockfish's only good move is "
                                             f"{b.san(first.best)} ({fmt_score(first.best_score)})", [first])
        move = network_move
    mate_line = _mate_in(first) is not None and _mate_in(first) <= settings.max_moves
    steps = [first]
    line.append(move)
    b.push(move)
    while not b.is_game_over(claim_draw=False) and len(steps) < settings.max_moves:
        reply = _best_reply(sf, b, settings)
        b.push(reply)
        if b.is_game_over(claim_draw=False) or b.is_repetition(2):
            b.pop()
            break
        step = judge(sf, b, settings)
        k = len(steps) + 1
        if mate_line and not step.unique:
            line.append(reply)
            return refuse(NOT_UNIQUE, f"mate line: solver move {k} is not unique: {step.describe(b)}", steps + [step])
        if mate_line and _mate_in(step) is None:
            line.append(reply)
            return refuse(MATE_NOT_FORCED, f"mate line: solver move {k} no longer mates: {b.san(step.best)} "
                                           f"({fmt_score(step.best_score)})", steps + [step])
        if not step.unique:
            b.pop()  # the line ends on the solver move before
            break
        if _too_little(step, settings):
            line.append(reply)
            return refuse(NOT_WINNING, f"not winning enough at solver move {k}: {b.san(step.best)} {fmt_score(step.best_score)} "
                                       f"< {_floor(settings)}", steps + [step])
        line += [reply, step.best]
        steps.append(step)
        b.push(step.best)
    checkmate = b.is_checkmate()
    if mate_line and not checkmate:
        return refuse(MATE_NOT_FORCED, f"mate line: no checkmate after {len(steps)} solver move(s) "
                                       f"(first move {fmt_score(first.best_score)})", steps)
    dropped = 0
    while not checkmate and len(steps) > 1 and steps[-1].legal == 1:
        del line[-2:]  # lichess-puzzler: "Remove final only-move" (with the reply that forced it)
        steps.pop()
        dropped += 1
    solution = [m.uci() for m in line]
    what = "mate" if checkmate else "only move"
    reason = f"ok: {what} {board.san(line[0])}"
    reason += f" ({fmt_score(first.best_score)})" if first.second is None or first.mate else f"; {first.describe(board)}"
    if dropped:
        reason += f"; final forced move{'s' if dropped > 1 else ''} dropped ({dropped})"
    return Verdict(True, reason, solution, steps, checkmate, sett)


def check_line(sf: chess.engine.SimpleEngine, board: chess.Board, solution: list[str],
               settings: VerifySettings = VerifySettings(), network_move: chess.Move | None = None) -> Verdict:
    """Verify a given solution from ``board``: each solver move must be the only good move (or mate)
    and keep ``min_advantage_cp`` unless it mates; one failing move rejects the whole solution.

    ``network_move``, when given, must be an accepted first move too.
    """
    b = board.copy()
    sett = settings.as_dict()
    problem = _opening_problem(b)
    if problem:
        return Verdict(False, problem[1], list(solution), settings=sett, category=problem[0])
    if not solution or len(solution) % 2 == 0:
        return Verdict(False, f"a solution must end on a solver move ({len(solution)} moves given)", list(solution), settings=sett,
                       category=BAD_SOLUTION)
    steps: list[Step] = []
    for ply, uci in enumerate(solution):
        try:
            move = b.parse_uci(uci)
        except ValueError:
            return Verdict(False, f"move {ply + 1} {uci!r} is illegal", list(solution), steps, settings=sett, category=BAD_SOLUTION)
        if ply % 2 == 0:
            k = ply // 2 + 1
            step = judge(sf, b, settings)
            steps.append(step)
            if not step.unique:
                return Verdict(False, f"move {k} ({b.san(move)}): no unique move: {step.describe(b)}", list(solution), steps,
                               settings=sett, category=NOT_UNIQUE)
            if move not in step.accepted:
                return Verdict(False, f"move {k} ({b.san(move)}): Stockfish's only good move is {b.san(step.best)} "
                                      f"({fmt_score(step.best_score)})", list(solution), steps, settings=sett, category=WRONG_MOVE)
            if _too_little(step, settings):
                return Verdict(False, f"move {k} ({b.san(move)}): not winning enough ({fmt_score(step.best_score)} < "
                                      f"{_floor(settings)})", list(solution), steps, settings=sett, category=NOT_WINNING)
            if ply == 0 and network_move is not None and network_move not in step.accepted:
                return Verdict(False, f"network plays {b.san(network_move)}, not an accepted move ({b.san(move)})",
                               list(solution), steps, settings=sett, category=NETWORK_DISAGREES)
        b.push(move)
    checkmate = b.is_checkmate()
    first = steps[0]
    n = (len(solution) + 1) // 2
    reason = f"ok: mate in {n} ({board.san(chess.Move.from_uci(solution[0]))})" if checkmate else f"ok: {first.describe(board)}"
    return Verdict(True, reason, list(solution), steps, checkmate, sett)


@dataclass(frozen=True)
class Decided:
    """:func:`already_decided`'s answer: ``decided`` with a ``reason``, and the numbers it compared
    (centipawns from the solver's side; a mate counts as ±100,000)."""

    decided: bool
    reason: str
    threshold_cp: int
    best_cp: int | None  # the solver's best move now
    second_cp: int | None  # its second-best move now
    before_cp: int | None  # before the opponent's last move, against its best play (None: no move stack)
    before_move: str | None  # that last move (UCI)

    def as_dict(self) -> dict:
        return asdict(self)


def _cp(score: chess.engine.Score) -> int:
    return int(score.score(mate_score=100_000))


def already_decided(sf: chess.engine.SimpleEngine, board: chess.Board, verdict: Verdict, settings: VerifySettings = VerifySettings(),
                    threshold_cp: int = DECIDED_CP) -> Decided:
    """Was the game decided before the solver's move, whatever was played among the top moves?

    Decided (``threshold_cp`` = 500 by default, mates counting as ±100,000) when

    - *lost*: the solver's best move (``verdict.first``) scores ≤ −500 — whatever is played; or
    - *won anyway*: the second-best move still scores ≥ +500; or
    - *won before*: ``board`` has the opponent's last move in its move stack, and the position
      before it, searched with ``settings.reply_nodes`` (single PV, the opponent to move), already
      scores ≥ +500 for the solver — against the opponent's best move the solver was winning
      anyway, so the opponent's move created no puzzle. lichess-puzzler skips such positions ("Too
      much of a winning position to start with", at ``prev_score > Cp(300)``) unless they hold a
      mate; likewise a line that ends in checkmate is exempt here.

    With the default uniqueness gap of 0.7 win chances no accepted line is *lost* or *won anyway*
    (its best move would need more than wc(+500) + 0.7 = 1.43 of them, or its second less than
    −1.43): those two catch only lines accepted with a narrower ``gap``. *Won before* is the test
    that drops real positions, such as a check evasion in a game already won.
    """
    step = verdict.first
    best_cp = _cp(step.best_score) if step is not None else None
    second_cp = _cp(step.second_score) if step is not None and step.second_score is not None else None

    def decided(reason: str, before_cp=None, before_move=None) -> Decided:
        return Decided(True, reason, threshold_cp, best_cp, second_cp, before_cp, before_move)

    if best_cp is not None and best_cp <= -threshold_cp:
        return decided(f"lost whatever is played: best {fmt_score(step.best_score)} ≤ {-threshold_cp / 100:+.2f}")
    if second_cp is not None and second_cp >= threshold_cp:
        return decided(f"won whatever is played: second best {fmt_score(step.second_score)} ≥ {threshold_cp / 100:+.2f}")
    before_cp = before_move = None
    if board.move_stack and not verdict.checkmate:
        b = board.copy()
        last = b.pop()
        before_move = last.uci()
        info = sf.analyse(b, chess.engine.Limit(nodes=settings.reply_nodes or settings.nodes), game=object())
        score = info["score"].pov(board.turn)
        before_cp = _cp(score)
        if before_cp >= threshold_cp:
            return decided(f"won before {b.san(last)}: {fmt_score(score)} ≥ {threshold_cp / 100:+.2f} against best play",
                           before_cp, before_move)
    return Decided(False, "open before the move", threshold_cp, best_cp, second_cp, before_cp, before_move)
