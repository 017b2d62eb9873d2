"""PUCT Monte-Carlo tree search over a network, in the style of lc0's classic search.

A :class:`SearchTree` grows from one root position (with its game history) by playouts: each descends
from the root by the PUCT rule to a leaf, the network evaluates the leaf, and its value is backed up.
Leaves are gathered and evaluated in batches (:attr:`SearchSettings.batch_size`).

Selection, with lc0's formula and defaults (``src/search/classic/params.cc`` and ``search.cc`` of
LeelaChessZero/lc0, and ``src/neural/shared_params.cc`` for the policy temperature), at a node with N
visits whose children have priors P, visits n and in-flight visits f:

- ``cpuct(N) = cpuct + cpuct_factor · ln((N + cpuct_base) / cpuct_base)`` with lc0's ``--cpuct=1.745``,
  ``--cpuct-base=38739``, ``--cpuct-factor=3.894`` (``ComputeCpuct``);
- ``score = Q + cpuct(N) · √max(N − 1, 1) · P / (1 + n + f)``: Q of a visited child is its mean value for
  the side to move; an unvisited child gets the first-play urgency ``FPU = Q_parent − 0.330 · √(Σ P of
  visited children)`` (``--fpu-strategy=reduction``, ``--fpu-value=0.330``, the same at the root);
- priors are the network's policy logits over the legal moves through a softmax at temperature
  ``--policy-softmax-temp=1.359``;
- Dirichlet noise on the root's priors is off (lc0's ``--noise-epsilon=0``); ``noise_epsilon`` > 0 mixes
  ``Dir(noise_alpha = 0.3)`` in with the tree's seed;
- a batch stops gathering after as many descents ended on a leaf already waiting for the network as
  lc0 allows (``CalculateCollisionsLeft``: 1 while the tree has ≤ 28 visits, then growing with its size
  as ``((N − 28)/(145000 − 28))^1.25`` towards ``--max-collision-visits=80000``, and never more than
  ``--max-collision-events=917``); those descents' in-flight marks are taken back once the batch is
  evaluated. lc0's moves-left utility is not applied: Maia and the project's own series have no
  moves-left head, where lc0 applies none either (a network with one is searched without it). There
  is no NN cache: a node is evaluated once, and transpositions are separate nodes.

Values come from the WDL head (Q = W − L, D kept beside it) or a tanh value head, in the side-to-move frame.
Terminal nodes are exact, tested in lc0's order (``SearchWorker::ExtendNode``): no legal move (mate: a
loss for the side to move; stalemate: a draw), then, below the root, insufficient material, the
fifty-move rule (rule-50 count ≥ 100), a third occurrence (threefold, counting the game history), and a
second occurrence whose first one is inside the searched line (lc0's ``--two-fold-draws``, on by default).
Proven results travel up (lc0's sticky endgames): a move to a mate proves its parent, and a node all of
whose moves are proven takes the best of them. The root's moves are checked for mate when the root is
expanded, so a mate in one is found by the root's evaluation alone.

The history planes of every node come from its real move path: the node's ancestors up to the root,
then the root's game history (filled as lc0's encoder does; :func:`conceptchess.lc0.encoder.game_histories`).

>>> tree = SearchTree(Engine("maia-1900.pb.gz"), chess.Board())        # doctest: +SKIP
>>> result = tree.search(800)                                           # doctest: +SKIP
>>> result.best_move, [m.uci() for m in result.pv][:3], result.children[0].visits   # doctest: +SKIP
(Move.from_uci('e2e4'), ['e2e4', 'e7e5', 'g1f3'], 412)
>>> tree.advance(result.best_move)                                      # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import chess
import numpy as np

from conceptchess.datasets import iter_dataset
from conceptchess.engine import Engine, softmax_segments
from conceptchess.errors import ArgumentError, ConceptChessError, PositionError
from conceptchess.lc0.encoder import HISTORY, Histories, _castling_row, _fill_row, board_row, starts_at_standard_position
from conceptchess.positions import PositionSpec
from conceptchess.progress import Progress


@dataclass(frozen=True)
class SearchSettings:
    """How the tree grows; defaults are lc0's (see the module docstring)."""

    batch_size: int = 32
    cpuct: float = 1.745
    cpuct_base: float = 38739.0
    cpuct_factor: float = 3.894
    fpu_reduction: float = 0.330
    policy_temperature: float = 1.359
    noise_epsilon: float = 0.0
    noise_alpha: float = 0.3
    max_collisions: int = 917
    max_collision_visits: int = 80000
    collision_scaling_start: int = 28
    collision_scaling_end: int = 145000
    collision_scaling_power: float = 1.25
    two_fold_draws: bool = True
    overlap: bool = True
    seed: int = 0

    def check(self) -> None:
        if self.batch_size < 1:
            raise ArgumentError("{batch_size} must be at least 1", batch_size="batch_size")
        if self.policy_temperature <= 0:
            raise ArgumentError("{policy_temperature} must be positive", policy_temperature="policy_temperature")
        if not 0 <= self.noise_epsilon <= 1:
            raise ArgumentError("{noise_epsilon} must be in [0, 1]", noise_epsilon="noise_epsilon")
        if self.noise_epsilon > 0 and self.noise_alpha <= 0:
            raise ArgumentError("{noise_alpha} must be positive", noise_alpha="noise_alpha")
        if self.cpuct < 0 or self.cpuct_factor < 0 or self.cpuct_base <= 0:
            raise ArgumentError("{cpuct} and {cpuct_factor} must be ≥ 0 and {cpuct_base} > 0", cpuct="cpuct",
                                cpuct_factor="cpuct_factor", cpuct_base="cpuct_base")
        if self.max_collisions < 1:
            raise ArgumentError("{max_collisions} must be at least 1", max_collisions="max_collisions")

    def as_dict(self) -> dict:
        return asdict(self)


def check_nodes(nodes: int) -> None:
    if nodes < 1:
        raise ArgumentError("{nodes} must be at least 1 (playouts per search)", nodes="nodes")


def require_value_head(engine: Engine) -> None:
    """Refuse a network without a WDL or value head: a search backs up values."""
    if "wdl" not in engine.heads and "value" not in engine.heads:
        raise ConceptChessError(f"{engine.network.path}: the network has no value head (WDL or value); search needs one")


def collisions_left(settings: SearchSettings, n: int) -> int:
    """lc0's ``CalculateCollisionsLeft``: how many colliding descents a batch may make when the tree's
    top has ``n`` visits — 1 up to ``collision_scaling_start``, growing as a power of the tree's size to
    ``max_collision_visits`` at ``collision_scaling_end`` — capped by ``max_collisions`` (events)."""
    s = settings
    if n >= s.collision_scaling_end:
        left = s.max_collision_visits
    elif n <= s.collision_scaling_start:
        left = 1
    else:
        ratio = ((n - s.collision_scaling_start) / (s.collision_scaling_end - s.collision_scaling_start)) ** s.collision_scaling_power
        left = int(round(1 + (s.max_collision_visits - 1) * ratio))
    return min(left, s.max_collisions)


def cpuct_at(settings: SearchSettings, n: int) -> float:
    """lc0's ``ComputeCpuct``: the exploration constant at a node visited ``n`` times."""
    return settings.cpuct + (settings.cpuct_factor * math.log((n + settings.cpuct_base) / settings.cpuct_base)
                             if settings.cpuct_factor else 0.0)


# terminal kinds
MATE, STALEMATE, INSUFFICIENT, FIFTY, THREEFOLD, TWOFOLD, PROVEN = (
    "checkmate", "stalemate", "insufficient-material", "fifty-move-rule", "threefold", "twofold", "proven")


class Node:
    """One position of the tree. Values are sums over visits, from the view of the player who made
    the move into this node (so a parent picks the child with the highest Q); ``terminal`` is that
    player's exact result (+1 win, 0 draw, −1 loss) when the node is decided."""

    __slots__ = ("parent", "move", "prior", "board", "row", "key", "hmc", "reps", "cycle", "n", "inflight", "wl", "d",
                 "terminal", "kind", "edges", "priors", "children", "visited_policy", "nn_wl", "nn_d")

    def __init__(self, parent: Node | None, move: chess.Move | None, prior: float, board: chess.Board):
        self.parent, self.move, self.prior, self.board = parent, move, prior, board
        self.row = board_row(board)
        self.key = (*self.row, board.turn, board.castling_rights)
        self.hmc = board.halfmove_clock
        self.reps = 0  # earlier occurrences of this position (lc0's repetitions)
        self.cycle = 0  # plies back to the last earlier occurrence
        self.n = 0
        self.inflight = 0
        self.wl = 0.0
        self.d = 0.0
        self.terminal: float | None = None
        self.kind: str | None = None
        self.edges: list[chess.Move] | None = None  # legal moves, highest prior first (None: not expanded)
        self.priors: list[float] = []
        self.children: list[Node | None] = []
        self.visited_policy = 0.0
        self.nn_wl: float | None = None  # the network's own value (side to move), once evaluated
        self.nn_d: float | None = None

    @property
    def q(self) -> float | None:
        """Mean W − L of the visits, for the player who moved into this node."""
        return self.wl / self.n if self.n else None

    def wdl(self) -> tuple[float, float, float] | None:
        """Mean (win, draw, loss) of the visits, for the player who moved into this node."""
        if not self.n:
            return None
        q, d = self.wl / self.n, self.d / self.n
        return ((1 + q - d) / 2, d, (1 - q - d) / 2)

    def child(self, move: chess.Move) -> Node | None:
        if self.edges is None:
            return None
        for m, c in zip(self.edges, self.children):
            if m == move:
                return c
        return None


@dataclass(frozen=True)
class ChildStats:
    """A root move after a search; ``q`` and ``wdl`` are for the side to move at the root."""

    move: chess.Move
    san: str
    visits: int
    q: float | None
    wdl: tuple[float, float, float] | None
    prior: float
    terminal: str | None

    def as_dict(self) -> dict:
        return {"move": self.move.uci(), "san": self.san, "visits": self.visits, "q": self.q,
                "wdl": list(self.wdl) if self.wdl else None, "prior": self.prior, "terminal": self.terminal}


@dataclass
class SearchResult:
    """What a search says about its root: ``q``/``wdl`` for the side to move there."""

    fen: str
    best_move: chess.Move
    pv: list[chess.Move]
    children: list[ChildStats]  # most visited first
    visits: int  # the root's visits (playouts, reused ones included)
    evaluations: int  # network evaluations this tree made
    collisions: int
    q: float
    wdl: tuple[float, float, float]
    value: float  # the network's own W − L at the root, before any search
    proven: str | None  # the root's proven result, if any ("win", "draw", "loss")
    tree: SearchTree

    def as_dict(self) -> dict:
        return {"fen": self.fen, "best_move": self.best_move.uci(), "pv": [m.uci() for m in self.pv],
                "visits": self.visits, "evaluations": self.evaluations, "collisions": self.collisions, "q": self.q,
                "wdl": list(self.wdl), "value": self.value, "proven": self.proven,
                "children": [c.as_dict() for c in self.children], "settings": self.tree.settings.as_dict()}


def started(node: Node | None) -> bool:
    """Whether a move has visits or visits in flight."""
    return node is not None and (node.n > 0 or node.inflight > 0)


def _rank(child: Node | None) -> tuple:
    """lc0's final move choice: a proven win first, a proven loss last, then visits, Q, prior."""
    if child is None:
        return (0, 0, -2.0, 0.0)
    t = child.terminal
    bound = 0 if t is None or t == 0 else (1 if t > 0 else -1)
    return (bound, child.n, child.wl / child.n if child.n else -2.0, child.prior)


class SearchTree:
    """A search tree over ``engine`` from ``board``'s position.

    ``board`` carries the game history in its move stack (replayed from ``board.root()``); or pass the
    start position and ``moves`` separately. The engine must have a WDL or value head.
    """

    def __init__(self, engine: Engine, board: chess.Board, moves: Iterable[chess.Move] | None = None,
                 settings: SearchSettings = SearchSettings()):
        settings.check()
        require_value_head(engine)
        self.engine, self.settings = engine, settings
        if moves is None:
            start, moves = board.root(), list(board.move_stack)
        else:
            start, moves = board.copy(stack=False), list(moves)
        self.rng = np.random.default_rng(settings.seed)
        self.evaluations = 0
        self.collisions = 0
        self._set_root(start, moves)

    # -- the root and its game history ----------------------------------------------------------------
    def _set_root(self, start: chess.Board, moves: list[chess.Move]) -> None:
        """Replay the game to the root: rows and repetition counts of the earlier positions."""
        b = start.copy(stack=False)
        fill = [0] * 12 if starts_at_standard_position(b) else _fill_row(b)
        rows, keys, reps = [], [], []
        node_reps = cycle = 0
        for t in range(len(moves) + 1):
            if t:
                if not b.is_legal(moves[t - 1]):
                    raise ConceptChessError(f"move {t} {moves[t - 1].uci()!r} is illegal in {b.fen()}")
                b.push(moves[t - 1])
            row = board_row(b)
            key = (*row, b.turn, b.castling_rights)
            node_reps = cycle = 0
            for back in range(2, b.halfmove_clock + 1, 2):
                if back <= len(keys) and keys[-back] == key:
                    node_reps, cycle = reps[-back] + 1, back
                    break
            rows.append(row)
            keys.append(key)
            reps.append(node_reps)
        root = Node(None, None, 1.0, b.copy(stack=False))
        root.reps, root.cycle = node_reps, cycle
        self.root = root
        # positions before the root, newest first: rows (filled to HISTORY − 1), and since the last
        # irreversible move the keys and repetition counts
        earlier = rows[-2::-1]
        self.prefix_rows = (earlier + [fill] * HISTORY)[: HISTORY - 1]
        self.prefix_reps = ([1 if r else 0 for r in reps[-2::-1]] + [0] * HISTORY)[: HISTORY - 1]
        self.prefix_keys = keys[-2::-1][: root.hmc]
        self.prefix_counts = reps[-2::-1][: root.hmc]
        if not any(True for _ in root.board.generate_legal_moves()):
            raise ConceptChessError(f"the game is over at the root ({root.board.fen()}): nothing to search")

    def advance(self, move: chess.Move) -> None:
        """Play ``move`` at the root: its subtree becomes the tree (reused), the old root joins the history."""
        if not self.root.board.is_legal(move):
            raise ConceptChessError(f"{move.uci()} is illegal in {self.root.board.fen()}")
        old = self.root
        child = old.child(move)
        if child is None:
            b = old.board.copy(stack=False)
            b.push(move)
            child = Node(None, move, 1.0, b)
        if not any(True for _ in child.board.generate_legal_moves()):
            raise ConceptChessError(f"the game is over after {move.uci()}: nothing to search")
        child.parent = None
        self.prefix_rows = [old.row, *self.prefix_rows][: HISTORY - 1]
        self.prefix_reps = [1 if old.reps else 0, *self.prefix_reps][: HISTORY - 1]
        self.prefix_keys = [old.key, *self.prefix_keys][: child.hmc]
        self.prefix_counts = [old.reps, *self.prefix_counts][: child.hmc]
        self.root = child
        self._count_repetitions(child, 0)
        if child.terminal is not None:  # lc0 ends no search at the root by rule: a drawn leaf is a leaf again
            if child.edges is None:
                child.n, child.wl, child.d = 0, 0.0, 0.0
            child.terminal = child.kind = None
        self._revert_twofolds(child, 0)
        if child.edges is not None:
            self._check_root_mates()

    def _revert_twofolds(self, node: Node, depth: int) -> None:
        """After :meth:`advance`, a twofold draw whose first occurrence left the tree is no longer one:
        its visits are taken back and it becomes an ordinary leaf again (as lc0 does)."""
        for c in node.children:
            if c is None:
                continue
            if c.kind == TWOFOLD and c.cycle > depth + 1:
                self._remove_visits(c)
            elif c.n:
                self._revert_twofolds(c, depth + 1)

    def _remove_visits(self, node: Node) -> None:
        n, wl, d = node.n, node.wl, node.d
        p, sign = node.parent, -1.0
        while p is not None:
            p.n -= n
            p.wl -= sign * wl
            p.d -= d
            if p.terminal is not None and p.kind == PROVEN:
                p.terminal = p.kind = None  # its proof may have rested on the draw
            sign = -sign
            p = p.parent
        parent = node.parent
        if parent is not None and n:
            parent.visited_policy -= node.prior
        node.n, node.wl, node.d, node.terminal, node.kind = 0, 0.0, 0.0, None, None
        node.edges, node.priors, node.children, node.visited_policy = None, [], [], 0.0
        if parent is not None:  # keep the started moves first, the others by prior (what _select relies on)
            i = parent.children.index(node)
            move, prior = parent.edges.pop(i), parent.priors.pop(i)
            parent.children.pop(i)
            j = 0
            while j < len(parent.children) and (started(parent.children[j]) or parent.priors[j] >= prior):
                j += 1
            parent.edges.insert(j, move)
            parent.priors.insert(j, prior)
            parent.children.insert(j, node)

    # -- growing the tree -----------------------------------------------------------------------------
    def _make_child(self, parent: Node, i: int, depth: int) -> Node:
        """The node reached by ``parent``'s i-th move, ``depth`` plies below the root, with its
        repetition count and any by-rule terminal result."""
        b = parent.board.copy(stack=False)
        move = parent.edges[i]
        capture = b.is_capture(move)
        b.push(move)
        node = Node(parent, move, parent.priors[i], b)
        parent.children[i] = node
        self._count_repetitions(node, depth)
        hmc = node.hmc
        if (capture or move.promotion) and b.is_insufficient_material():
            self._terminal(node, 0.0, INSUFFICIENT)
        elif hmc >= 100:
            self._terminal(node, 1.0 if b.is_checkmate() else 0.0, MATE if b.is_checkmate() else FIFTY)
        elif node.reps >= 2:
            self._terminal(node, 0.0, THREEFOLD)
        elif node.reps == 1 and self.settings.two_fold_draws and depth >= 4 and depth >= node.cycle:
            self._terminal(node, 0.0, TWOFOLD)
        return node

    def _count_repetitions(self, node: Node, depth: int) -> None:
        """lc0's repetition count of ``node`` (``depth`` plies below the root): the last earlier occurrence
        since the last irreversible move, in the tree above it or in the root's game history."""
        key, hmc = node.key, node.hmc
        node.reps = node.cycle = 0
        back, p = 0, node
        while back < hmc:
            back += 1
            if p.parent is not None:
                p = p.parent
                if back % 2 == 0 and p.key == key:
                    node.reps, node.cycle = p.reps + 1, back
                    return
            else:
                k = back - depth - 1  # index into the root's history, newest first
                if k >= len(self.prefix_keys):
                    return
                if back % 2 == 0 and self.prefix_keys[k] == key:
                    node.reps, node.cycle = self.prefix_counts[k] + 1, back
                    return

    def _terminal(self, node: Node, value: float, kind: str) -> None:
        node.terminal, node.kind = value, kind

    def _expand(self, node: Node, moves: list[chess.Move], priors: list[float]) -> None:
        node.edges, node.priors, node.children = moves, priors, [None] * len(moves)

    def _noise(self, node: Node) -> None:
        s = self.settings
        noise = self.rng.dirichlet([s.noise_alpha] * len(node.priors))
        p = (1 - s.noise_epsilon) * np.asarray(node.priors) + s.noise_epsilon * noise
        order = np.argsort(-p, kind="stable")
        node.edges = [node.edges[i] for i in order]
        node.priors = p[order].tolist()

    def _check_root_mates(self) -> None:
        """At the root, every move that checks is tried for mate: a mate in one needs no playout."""
        root = self.root
        for i, m in enumerate(root.edges):
            if root.board.gives_check(m):
                c = root.children[i] or self._make_child(root, i, 1)
                if c.terminal is None and c.board.is_checkmate():
                    self._terminal(c, 1.0, MATE)
                    self._prove(root)

    def _backup(self, leaf: Node, wl: float, d: float, top: Node, inflight: bool) -> None:
        """Add one visit of value ``wl`` (for the side to move at ``leaf``) from ``leaf`` up to the root;
        the in-flight marks (``inflight``) were set from ``top`` down."""
        v, p, marked = -wl, leaf, inflight
        while p is not None:
            p.n += 1
            if marked:
                p.inflight -= 1
                marked = p is not top
            p.wl += v
            p.d += d
            if p.n == 1 and p.parent is not None:
                p.parent.visited_policy += p.prior
            v = -v
            p = p.parent

    def _prove(self, node: Node) -> None:
        """Proven results travel up: a move to a proven win decides ``node``, and so do moves all proven."""
        while node is not None and node.terminal is None and node.edges is not None:
            best = None
            complete = True
            for c in node.children:
                if c is None or c.terminal is None:
                    complete = False
                    continue
                if best is None or c.terminal > best:
                    best = c.terminal
            if best is None or (best < 1 and not complete):
                return
            value = -best  # for the player who moved into node
            delta_wl, delta_d = value * node.n - node.wl, (1.0 if best == 0 else 0.0) * node.n - node.d
            node.terminal, node.kind = value, PROVEN
            p, sign = node, 1.0
            while p is not None:  # the visits now count at the exact value (lc0's AdjustForTerminal)
                p.wl += sign * delta_wl
                p.d += delta_d
                sign = -sign
                p = p.parent
            node = node.parent

    def puct_scores(self, node: Node) -> list[float]:
        """lc0's selection score of each move at ``node``, in the node's move order (what :meth:`_select`
        maximises; an unvisited move scores with the first-play urgency)."""
        s = self.settings
        n = node.n
        mult = cpuct_at(s, n) * math.sqrt(max(n - 1, 1))
        fpu = (-node.wl / n if n else 0.0) - s.fpu_reduction * math.sqrt(node.visited_policy)
        out = []
        for c, p in zip(node.children, node.priors):
            flights = 0 if c is None else c.n + c.inflight
            q = c.wl / c.n if c is not None and c.n else fpu
            out.append(q + mult * p / (1 + flights))
        return out

    def _select(self, node: Node) -> int:
        s = self.settings
        n = node.n
        mult = cpuct_at(s, n) * math.sqrt(max(n - 1, 1))
        fpu = (-node.wl / n if n else 0.0) - s.fpu_reduction * math.sqrt(node.visited_policy)
        best, best_i = -math.inf, 0
        priors = node.priors
        for i, c in enumerate(node.children):
            if c is None or (c.n == 0 and c.inflight == 0):
                score = fpu + mult * priors[i]
                if score > best:
                    best_i = i
                break  # started moves come first, the rest by prior: none later is started or scores higher
            q = c.wl / c.n if c.n else fpu
            score = q + mult * priors[i] / (1 + c.n + c.inflight)
            if score > best:
                best, best_i = score, i
        return best_i

    def search(self, nodes: int, top: Node | None = None, progress: Progress | None = None) -> SearchResult:
        """Add ``nodes`` playouts below ``top`` (default: the root) and say what the root's search found.

        With ``top`` below the root the playouts start at ``top`` (the moves to it are forced) and are
        backed up to the root as any playout, so every node's visits stay one more than its children's.
        With :attr:`SearchSettings.overlap` the next batch is gathered while the network evaluates the
        current one in a thread (its leaves count as in flight), as lc0's search threads do; the order
        of every step is fixed, so the tree does not depend on timing.
        """
        check_nodes(nodes)
        top = self.root if top is None else top
        s = self.settings
        target = top.n + nodes
        base = self._depth_of(top)
        flight = None  # (leaves, collided, future) of the batch the network is evaluating
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search") if s.overlap else None
        try:
            while True:
                before = top.n
                waiting = len(flight[0]) if flight else 0
                room = min(s.batch_size, target - top.n - waiting)
                batch, collided = self._gather(top, room, base) if room > 0 and top.terminal is None else ([], [])
                if flight is not None:
                    self._apply(flight[0], flight[2].result(), top)
                    self._release(flight[1], top)
                    flight = None
                if batch:
                    hist, boards = self._histories(batch), [n.board for n in batch]
                    if pool is not None:
                        flight = (batch, collided, pool.submit(self.engine.evaluate, hist, boards))
                    else:
                        self._apply(batch, self.engine.evaluate(hist, boards), top)
                        self._release(collided, top)
                else:
                    self._release(collided, top)
                if progress is not None:
                    progress(min(top.n - (target - nodes), nodes), nodes)
                if flight is None and (top.n >= target or top.terminal is not None or top.n == before):
                    return self.result()  # (no progress at all cannot happen: a safeguard, not a stop)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)

    def _gather(self, top: Node, room: int, base: int) -> tuple[list[Node], list[Node]]:
        """Up to ``room`` new leaves below ``top`` for the network, marked in flight; decided positions
        reached on the way are backed up at once; descents that end on a leaf already in flight
        (collisions) keep their in-flight marks until :meth:`_release`."""
        batch: list[Node] = []
        collided: list[Node] = []
        collisions = 0
        limit = collisions_left(self.settings, top.n)
        target = top.n + room
        while len(batch) < room and top.n + len(batch) < target and top.terminal is None:
            node, depth, path = top, 0, [top]
            while node.terminal is None and node.edges is not None:
                i = self._select(node)
                node = node.children[i] or self._make_child(node, i, base + depth + 1)
                depth += 1
                path.append(node)
            if node.terminal is not None:  # an exact value needs no network: back it up now
                self._backup(node, -node.terminal, 1.0 if node.terminal == 0 else 0.0, top, False)
                continue
            for p in path:
                p.inflight += 1
            if node.inflight > 1:
                collisions += 1
                collided.append(node)
                if node is top or collisions >= limit:
                    break
                continue
            batch.append(node)
        self.collisions += collisions
        return batch, collided

    def _release(self, collided: list[Node], top: Node) -> None:
        """Take back the in-flight marks of collided descents."""
        for leaf in collided:
            p = leaf
            while True:
                p.inflight -= 1
                if p is top:
                    break
                p = p.parent

    def _depth_of(self, node: Node) -> int:
        depth, p = 0, node
        while p.parent is not None:
            depth += 1
            p = p.parent
        return depth

    def _apply(self, batch: list[Node], evs: list, top: Node) -> None:
        """Expand the batch's leaves with the network's evaluations and back their values up to ``top``."""
        self.evaluations += len(batch)
        s = self.settings
        counts = np.fromiter((len(ev.moves) for ev in evs), np.int64, len(evs))
        ends = np.cumsum(counts)
        starts = ends - counts
        pos = np.repeat(np.arange(len(evs)), counts)
        if len(pos):
            logits = np.concatenate([ev.logits for ev in evs]).astype(np.float64) / s.policy_temperature
            priors = softmax_segments(logits, pos, starts, counts)
            order = np.lexsort((-priors, pos))
            priors_sorted = priors[order].tolist()
            order = order.tolist()
        for k, (leaf, ev) in enumerate(zip(batch, evs)):
            wl = float(ev.value)
            d = float(ev.wdl[1]) if ev.wdl is not None else 0.0
            leaf.nn_wl, leaf.nn_d = wl, d
            if not ev.moves:
                mate = leaf.board.is_check()
                self._terminal(leaf, 1.0 if mate else 0.0, MATE if mate else STALEMATE)
                wl, d = (-1.0, 0.0) if mate else (0.0, 1.0)
            else:
                a, b = int(starts[k]), int(ends[k])
                self._expand(leaf, [ev.moves[j - a] for j in order[a:b]], priors_sorted[a:b])
            self._backup(leaf, wl, d, top, True)
            if leaf is self.root and leaf.edges is not None:
                if s.noise_epsilon > 0:
                    self._noise(leaf)
                self._check_root_mates()
            if leaf.terminal is not None and leaf.parent is not None:
                self._prove(leaf.parent)

    def _histories(self, batch: list[Node]) -> Histories:
        rows, reps = [], []
        for leaf in batch:
            r, f = [], []
            p = leaf
            while p is not None and len(r) < HISTORY:
                r.append(p.row)
                f.append(1 if p.reps else 0)
                p = p.parent
            k = HISTORY - len(r)
            if k:
                r += self.prefix_rows[:k]
                f += self.prefix_reps[:k]
            rows.append(r)
            reps.append(f)
        return Histories(np.array(rows, dtype=np.uint64), np.array(reps, dtype=np.uint8),
                         np.fromiter((not n.board.turn for n in batch), bool, len(batch)),
                         np.array([_castling_row(n.board) for n in batch], bool).reshape(-1, 4),
                         np.fromiter((n.hmc for n in batch), np.float32, len(batch)))

    def node_after(self, moves: Iterable[chess.Move]) -> Node:
        """The node reached by ``moves`` from the root, made where missing: a position on the way
        that was never evaluated gets one playout (its evaluation) first. The last node is returned
        as it is (unevaluated if it was), with its repetition count and any by-rule result."""
        node, depth = self.root, 0
        for move in moves:
            if node.terminal is not None:
                raise ConceptChessError(f"the line ends at {node.board.fen()} ({node.kind}) before {move.uci()}")
            if node.edges is None:
                self.search(1, top=node)
            if move not in node.edges:
                raise ConceptChessError(f"{move.uci()} is illegal in {node.board.fen()}")
            i = node.edges.index(move)
            node = node.children[i] or self._make_child(node, i, depth + 1)
            depth += 1
        return node

    # -- what the search says -------------------------------------------------------------------------
    def best_child(self, node: Node | None = None) -> Node | None:
        node = self.root if node is None else node
        if node.edges is None:
            return None
        best = max(range(len(node.edges)), key=lambda i: _rank(node.children[i]))
        return node.children[best] if node.children[best] is not None else None

    def principal_variation(self, node: Node | None = None) -> list[chess.Move]:
        pv, p = [], self.root if node is None else node
        while True:
            c = self.best_child(p)
            if c is None or (c.n == 0 and c.terminal is None):
                return pv
            pv.append(c.move)
            p = c

    def result(self) -> SearchResult:
        root = self.root
        kids = []
        for i, m in enumerate(root.edges or []):
            c = root.children[i]
            kind = c.kind if c is not None and c.terminal is not None else None
            q, wdl = (c.q, c.wdl()) if c is not None and c.n else (None, None)
            if c is not None and c.terminal is not None:  # decided: its exact value, visited or not
                q, wdl = c.terminal, (1.0, 0.0, 0.0) if c.terminal > 0 else (0.0, 1.0, 0.0) if c.terminal == 0 else (0.0, 0.0, 1.0)
            kids.append(ChildStats(m, root.board.san(m), c.n if c else 0, q, wdl, root.priors[i], kind))
        kids.sort(key=lambda k: (-k.visits, -(k.q if k.q is not None else -2.0), -k.prior))
        best = self.best_child()
        best_move = best.move if best is not None else root.edges[0]
        q = -root.q if root.n else 0.0
        w = root.wdl() or (0.0, 1.0, 0.0)
        proven = None
        if root.terminal is not None:
            proven = "draw" if root.terminal == 0 else ("loss" if root.terminal > 0 else "win")
        return SearchResult(root.board.fen(), best_move, self.principal_variation(), kids, root.n, self.evaluations,
                            self.collisions, q, (w[2], w[1], w[0]), float(root.nn_wl) if root.nn_wl is not None else 0.0,
                            proven, self)


def search_position(engine: Engine, board: chess.Board, nodes: int, settings: SearchSettings = SearchSettings(),
                    moves: Iterable[chess.Move] | None = None) -> SearchResult:
    """Search one position (``board`` with its history, or a start board and ``moves``) for ``nodes`` playouts."""
    check_nodes(nodes)
    return SearchTree(engine, board, moves, settings).search(nodes)


def settings_from(**values) -> SearchSettings:
    """Search settings from keyword values, checked."""
    s = SearchSettings(**values)
    s.check()
    return s


def search_positions(network, nodes: int, settings: SearchSettings = SearchSettings(), *, input=None, fen: str | None = None,
                     moves: list[str] | None = None, threads: int | None = None, device: str = "auto",
                     progress: Progress | None = None):
    """Search every position of the dataset ``input``, or the one given by ``fen`` and ``moves`` (id
    ``"cli"``), for ``nodes`` playouts each; yields ``(id, SearchResult)``. Every position is checked,
    and the network's value head, before the first search."""
    check_nodes(nodes)
    settings.check()
    if input is not None:
        specs = list(iter_dataset(input))
        where = f"{input}: "
    else:
        specs = [PositionSpec("cli", fen, list(moves or []))]
        where = ""
    roots = [spec.parsed(f"{where}id={spec.id}") for spec in specs]
    engine = Engine(network, batch_size=settings.batch_size, threads=threads, device=device)
    require_value_head(engine)
    for spec, (start, ms) in zip(specs, roots):  # a finished game is refused before the first search
        try:
            SearchTree(engine, start, ms, settings)
        except ConceptChessError as e:
            raise PositionError(f"{where}id={spec.id}: {e}") from None
    if progress is not None:
        progress(0, len(specs))
    for k, (spec, (start, ms)) in enumerate(zip(specs, roots)):
        result = SearchTree(engine, start, ms, settings).search(nodes)
        if progress is not None:
            progress(k + 1, len(specs))
        yield spec.id, result
