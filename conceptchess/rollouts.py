"""Schut-style rollouts: from each root, the line a network's search prefers and worse lines beside it.

From each root position a :class:`~conceptchess.search.SearchTree` searches ``nodes`` playouts. The
**optimal rollout** follows the most-visited move (a proven win first, as lc0 chooses) from the root for
``depth`` plies (T = 5 by default). At each **branch ply** b of it (default: every ply 0 … T−1) the
**sub-optimal rollouts** start with another move of that position that the search visited and found
worse: its Q at least ``value_gap`` (0.20) below the chosen move's, or its visits under ``visit_share``
(10 %) of the chosen move's. Up to ``lines_per_ply`` such moves (most visited first) each start a line
that then follows the most-visited path to the same depth. Where a line reaches a position whose moves
the search never visited, ``extend_nodes`` more playouts are searched from that position (forced
through the line's moves; the ``q`` and ``visits`` recorded, and the branch choices, are those the
rollouts saw before any such extension below them). A line ends early at a decided position (mate,
draw by rule).

The output is an ordinary positions dataset (origin ``rollouts``): every position carries the history
lc0 would encode (root's game plus the line), so ``activations extract`` works on it unchanged, plus the
pairing fields

- ``root`` (the root's id), ``line`` (``optimal``/``suboptimal``), ``line_index`` (0 for the optimal line,
  1, 2, … for the others of the root), ``ply`` (t, plies after the root), ``branch_ply`` (b, null on the
  optimal line), ``root_to_move`` (whether the root's side is to move at ply t),
- ``q`` and ``visits``: the search's Q at the position for the side to move there, and its visits (Q is
  null for a position the line reached with no visit); ``move``: the line's next move (null at its end);
  ``terminal``: how a decided position ended, if it did.

The optimal line records plies 0 … T; a sub-optimal line records the plies after its branch, b+1 … T
(before that it is the optimal line). ``game`` is the root id, so a split by game keeps a root's lines
together. A killed run resumes from its last whole root (work folder ``OUTPUT.rollouts``).

>>> rollouts_dataset("maia-1100.pb.gz", "roots/", "rollouts/", RolloutSettings(nodes=800, depth=5))   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import chess

from conceptchess.datasets import MANIFEST_FILE, POSITIONS_FILE, ROLLOUTS, dataset_sha256, iter_dataset, position_record, read_manifest
from conceptchess.engine import Engine
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.files import atomic_write_text, resume_folder
from conceptchess.networks import open_network
from conceptchess.positions import PositionSpec
from conceptchess.progress import Progress
from conceptchess.provenance import sha256_of, software_versions
from conceptchess.search import Node, SearchSettings, SearchTree, check_nodes, require_value_head

STATE_FILE = "state.json"
DONE_FILE = "done.jsonl"


@dataclass(frozen=True)
class RolloutSettings:
    """Rollout settings; ``search`` holds the tree's own (lc0's defaults)."""

    nodes: int = 800
    depth: int = 5
    value_gap: float = 0.20
    visit_share: float = 0.10
    lines_per_ply: int = 2
    branch_plies: tuple[int, ...] | None = None  # None: every ply 0 … depth − 1
    extend_nodes: int = 64
    search: SearchSettings = field(default_factory=SearchSettings)

    def check(self) -> None:
        check_nodes(self.nodes)
        if self.depth < 1:
            raise ArgumentError("{depth} must be at least 1 (plies a rollout follows)", depth="depth")
        if self.value_gap < 0 or not 0 <= self.visit_share <= 1:
            raise ArgumentError("{value_gap} must be ≥ 0 and {visit_share} in [0, 1]", value_gap="value_gap", visit_share="visit_share")
        if self.lines_per_ply < 0:
            raise ArgumentError("{lines_per_ply} must be ≥ 0", lines_per_ply="lines_per_ply")
        if self.extend_nodes < 1:
            raise ArgumentError("{extend_nodes} must be at least 1", extend_nodes="extend_nodes")
        for b in self.plies():
            if not 0 <= b < self.depth:
                raise ArgumentError("{branch_plies} must lie in 0 … {depth} − 1", branch_plies="branch_plies", depth="depth")
        self.search.check()

    def plies(self) -> tuple[int, ...]:
        return tuple(range(self.depth)) if self.branch_plies is None else tuple(sorted(set(self.branch_plies)))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["branch_plies"] = list(self.plies())
        return d


@dataclass
class Line:
    """One rollout: the nodes at plies ``first`` … (the last may be decided)."""

    kind: str
    index: int
    branch: int | None
    nodes: list[Node]  # nodes[k] is the position at ply first + k
    first: int


def alternatives(node: Node, chosen: Node, settings: RolloutSettings, stats: dict[int, tuple[int, float | None]]) -> list[Node]:
    """The moves at ``node`` that start sub-optimal lines: visited, not ``chosen``, and worse than it by
    ``value_gap`` in Q or under ``visit_share`` of its visits; most visited first, ``lines_per_ply`` at most.
    ``stats`` holds (visits, Q for the mover) of the nodes seen before any extension below them."""
    out = []
    best_n, best_q = stats[id(chosen)]
    for c in node.children:
        if c is None or c is chosen or c.n == 0:
            continue
        n, q = stats.setdefault(id(c), (c.n, c.q))
        worse = best_q is not None and best_q - q >= settings.value_gap - 1e-12
        rare = n < settings.visit_share * best_n
        if worse or rare:
            out.append(c)
    out.sort(key=lambda c: (-stats[id(c)][0], -stats[id(c)][1]))
    return out[: settings.lines_per_ply]


class Rollouts:
    """Rollouts of one root on a search tree (extending the tree where a line leaves it).

    :attr:`stats` keeps each line node's (visits, Q for the player who moved into it) as the rollouts
    first saw it: an extension searched from a node adds visits to that node, and the records and the
    branch choices give the main search's numbers.
    """

    def __init__(self, tree: SearchTree, settings: RolloutSettings):
        self.tree, self.settings = tree, settings
        self.extensions = 0
        self.stats: dict[int, tuple[int, float | None]] = {}

    def _seen(self, node: Node) -> None:
        self.stats.setdefault(id(node), (node.n, node.q))

    def _next(self, node: Node) -> Node | None:
        """The most-visited move from ``node``, searching more there when none was visited."""
        if node.terminal is not None:
            return None
        best = self.tree.best_child(node)
        if best is None or best.n == 0:
            self.tree.search(self.settings.extend_nodes, top=node)
            self.extensions += 1
            if node.terminal is not None:
                return None
            best = self.tree.best_child(node)
        if best is None or best.n == 0:
            return None
        self._seen(best)
        return best

    def _follow(self, start: Node, ply: int, branches: dict | None = None) -> list[Node]:
        self._seen(start)
        nodes, node = [start], start
        while ply < self.settings.depth:
            nxt = self._next(node)
            if nxt is None:
                break
            if branches is not None and ply in self.settings.plies():  # before anything searches below nxt
                branches[ply] = alternatives(node, nxt, self.settings, self.stats)
            node = nxt
            nodes.append(node)
            ply += 1
        return nodes

    def lines(self) -> list[Line]:
        branches: dict[int, list[Node]] = {}
        out = [Line("optimal", 0, None, self._follow(self.tree.root, 0, branches), 0)]
        for b in self.settings.plies():
            for c in branches.get(b, []):
                out.append(Line("suboptimal", len(out), b, self._follow(c, b + 1), b + 1))
        return out


def _root_records(spec: PositionSpec, start: chess.Board, moves: list[chess.Move], lines: list[Line],
                  stats: dict[int, tuple[int, float | None]]) -> list[dict]:
    """The dataset records of one root's lines."""
    b = start.copy(stack=False)
    boards, clocks = [b.copy(stack=False)], [b.halfmove_clock]
    for m in moves:
        b.push(m)
        boards.append(b.copy(stack=False))
        clocks.append(b.halfmove_clock)
    root_ply = len(moves)
    out = []
    for line in lines:
        cache: dict[int, str] = {}  # FENs by ply: beyond the root each line has its own positions
        path: list[Node] = []  # the nodes from the root (excluded) to the line's first node
        n = line.nodes[0]
        while n.parent is not None:
            path.append(n)
            n = n.parent
        path.reverse()
        nodes = path + line.nodes[1:]
        all_moves = moves + [p.move for p in nodes]
        lb = boards + [p.board for p in nodes]
        lc = clocks + [p.hmc for p in nodes]
        for k, node in enumerate(line.nodes):
            t = line.first + k
            rec = {"id": f"{spec.id}/{line.index}/{t}"}
            rec.update(position_record(start, all_moves, root_ply + t, lc, lb, cache))
            nxt = line.nodes[k + 1].move.uci() if k + 1 < len(line.nodes) else None
            visits, q = stats[id(node)]  # q: for the player who moved into the node
            rec.update({"move": nxt, "game": str(spec.id), "root": spec.id, "line": line.kind, "line_index": line.index,
                        "ply": t, "branch_ply": line.branch, "root_to_move": t % 2 == 0,
                        "q": None if q is None else round(-q, 6), "visits": visits,
                        "terminal": node.kind if node.terminal is not None else None})
            out.append(rec)
    return out


def _complete_roots(work: Path) -> int:
    """Roots whose records are all written; the positions file is cut back to the last of them."""
    done_file, part = work / DONE_FILE, work / POSITIONS_FILE
    entries = []
    if done_file.exists():
        for line in done_file.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line: that root is done again
    size = entries[-1]["bytes"] if entries else 0
    with open(done_file, "w") as f:
        f.write("".join(json.dumps(e) + "\n" for e in entries))
    if part.exists():
        with open(part, "r+b") as f:
            f.truncate(size)
    else:
        part.touch()
    return len(entries)


def rollouts_dataset(network: str | os.PathLike, dataset: str | os.PathLike, output: str | os.PathLike,
                     settings: RolloutSettings = RolloutSettings(), *, limit: int | None = None, threads: int | None = None,
                     device: str = "auto", overwrite: bool = False, progress: Progress | None = None) -> dict:
    """Rollouts from every position of ``dataset`` (the roots; the first ``limit`` of them) with
    ``network``'s search; returns the manifest.

    Everything is checked before the first search: the settings, every root, the network's value head,
    the output name. A root where the game is over has no lines (counted as ``roots_without_moves``).
    ``progress(done, total)`` counts roots.
    """
    settings.check()
    output = Path(output)
    if output.exists() and not overwrite:
        raise ArgumentError("already exists (choose another output or pass {overwrite})", prefix=f"{output}: ", overwrite="overwrite=True")
    if limit is not None and limit < 1:
        raise ArgumentError("{limit} must be at least 1", limit="limit")
    specs = list(iter_dataset(dataset))[:limit]
    if not specs:
        raise ConceptChessError(f"{dataset}: no positions to start rollouts from")
    roots = []
    for spec in specs:
        start, moves = spec.parsed(f"{dataset}: id={spec.id}")
        roots.append((spec, start, moves))
    seen = set()
    for spec, _, _ in roots:
        if str(spec.id) in seen:
            raise ConceptChessError(f"{dataset}: id {spec.id!r} occurs twice (rollout ids are built from it)")
        seen.add(str(spec.id))
    net = open_network(network)
    engine = Engine(net, batch_size=settings.search.batch_size, threads=threads, device=device)
    require_value_head(engine)
    source_sha = dataset_sha256(dataset)
    state = {"input": str(dataset), "input_sha256": source_sha, "limit": limit, "network": str(network), "network_sha256": net.sha256,
             "settings": settings.as_dict()}
    work = resume_folder(output.with_name(output.name + ".rollouts"), state, "an unfinished rollouts run of other input, network or "
                         "settings; remove it or run with the same ones to resume it", STATE_FILE)
    done = _complete_roots(work)
    if progress is not None:
        progress(done, len(roots))
    with open(work / POSITIONS_FILE, "ab") as f, open(work / DONE_FILE, "a") as d:
        for i in range(done, len(roots)):
            spec, start, moves = roots[i]
            end = start.copy(stack=False)
            for m in moves:
                end.push(m)
            if not any(True for _ in end.generate_legal_moves()):  # the game is over here: nothing to roll out
                recs, ext, evals = [], 0, 0
            else:
                tree = SearchTree(engine, start, moves, settings.search)
                tree.search(settings.nodes)
                r = Rollouts(tree, settings)
                recs = _root_records(spec, start, moves, r.lines(), r.stats)
                ext, evals = r.extensions, tree.evaluations
            f.write("".join(json.dumps(rec, separators=(",", ":")) + "\n" for rec in recs).encode())
            f.flush()
            os.fsync(f.fileno())
            d.write(json.dumps({"root": i, "bytes": f.tell(), "records": len(recs), "extensions": ext, "evaluations": evals}) + "\n")
            d.flush()
            if progress is not None:
                progress(i + 1, len(roots))
    entries = [json.loads(x) for x in (work / DONE_FILE).read_text().splitlines()]
    lines = {"optimal": 0, "suboptimal": 0}
    for spec in iter_dataset(work / POSITIONS_FILE):
        if spec.meta["ply"] == (0 if spec.meta["line"] == "optimal" else spec.meta["branch_ply"] + 1):
            lines[spec.meta["line"]] += 1
    counts = {"roots": len(roots), "roots_without_moves": sum(1 for e in entries if e["records"] == 0),
              "records": sum(e["records"] for e in entries), "optimal_lines": lines["optimal"],
              "suboptimal_lines": lines["suboptimal"], "extensions": sum(e["extensions"] for e in entries),
              "evaluations": sum(e["evaluations"] for e in entries)}
    source = read_manifest(dataset)
    manifest = {
        "kind": "positions", "made_by": "positions rollouts", "origin": ROLLOUTS,
        "roots_from": {"dataset": str(dataset), "sha256": source_sha, "origin": source.get("origin"), "made_by": source.get("made_by"),
                       "limit": limit},
        "network": {"path": str(network), "sha256": net.sha256, "provider": engine.provider},
        "settings": settings.as_dict(), "seed": settings.search.seed, "counts": counts,
        "positions": counts["records"], "positions_sha256": sha256_of(work / POSITIONS_FILE),
        "software": software_versions("chess", "numpy", "onnxruntime"),
    }
    atomic_write_text(work / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (work / STATE_FILE).unlink()
    (work / DONE_FILE).unlink()
    if output.exists():
        shutil.rmtree(output)
    os.replace(work, output)
    return manifest
