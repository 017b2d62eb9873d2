"""Positions given as move lists, end to end: replay, ``Engine``, ``net eval --input``, lczerolens, ``concepts label``.

Positions: every 31st ply of every game of the shared Lichess games (``$CONCEPTCHESS_TEST_DATA/pgn/
lichess_2021-10_games_a.pgn``, default ``../shared/data``), as ``{"id", "moves"}`` from the start
position, in game order (~1,200 positions averaging ~52 plies: every position carries a long history
and few share a game). Each figure stands beside a baseline timed in the same run, interleaved round
by round (the host is shared: the load average is printed with each table), best of ``--rounds``:

1. replay → histories + boards: :func:`~conceptchess.positions.histories_of` (a tree of shared
   prefixes, bitboard replay) against python-chess board by board: each position replayed alone (what
   ``histories_of`` did before) and each game replayed once (``is_legal`` + ``push`` every ply);
2. ``Engine`` from move lists (``histories_of`` + ``Engine.evaluate``, batch 256) against ONNX Runtime
   alone on pre-encoded planes, chunk by chunk back to back (target ≥ 0.8×, at 1 and 2 threads);
3. ``conceptchess net eval --input P.jsonl --output O.jsonl`` in process, against ONNX Runtime alone
   from the same network file (engine built, planes pre-encoded) (target ≥ 0.8×);
4. lczerolens 0.5.1 on the same positions (boards from the same move lists, ``LczeroEvaluator`` on
   lc0's own ONNX export of the same network, batches of 256, ``torch.inference_mode``, the same
   threads) against ours on that ONNX file (target: ours ≥ 5×). lczerolens runs in its own Python
   (``--lczerolens-python``), a throw-away virtualenv, never a dependency of this project::

       python -m venv build/lzl-venv && build/lzl-venv/bin/pip install lczerolens==0.5.1

   (it pulls torchvision, whose PyPI wheels are CUDA builds pinned to one torch: a CPU-only torch
   cannot load them, so pip installs the CUDA torch, ~5 GB, which runs on the CPU here);
5. ``conceptchess concepts label`` on a ``positions from-pgn`` dataset, in process, against the concept
   library alone on the same boards (target ≥ 2,000 positions/s end to end on one core).

    python benchmarks/history_throughput.py [--threads 1 2] [--rounds 3] [--lczerolens-python PATH] [--require-lczerolens]

Without ``--lczerolens-python`` (or when that Python cannot import lczerolens) part 4 is skipped
with a message saying how to run it; the exit status is then 1 only with ``--require-lczerolens``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import chess
import chess.pgn
import numpy as np
from _common import DATA, GAMES, MAIA1100, machine_load, need, run_cli

from conceptchess.engine import Engine
from conceptchess.lc0.encoder import encode
from conceptchess.positions import PositionSpec, histories_of, history_of, read_positions_jsonl

NET = MAIA1100
LC0_ONNX = DATA / "onnx" / "maia-1100.onnx.gz"
EVERY = 31
BATCH = 256


def game_moves(path: Path) -> list[list[str]]:
    out = []
    with open(need(path), encoding="utf-8", errors="replace") as f:
        while (game := chess.pgn.read_game(f)) is not None:
            out.append([m.uci() for m in game.mainline_moves()])
    return out


def rounds(fns: dict, n: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall-clock and process CPU seconds (all threads) of each fn in each of ``n`` rounds; the order
    alternates from round to round."""
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    items = list(fns.items())
    for r in range(n):
        for name, fn in items if r % 2 == 0 else items[::-1]:
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    return wall, cpu


def chunked(fns: dict, chunks: int, n: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Like :func:`rounds`, but each fn takes a chunk index and the fns alternate chunk by chunk, so that
    their ratio sees the same host conditions (the host's speed drifts by tens of percent in seconds)."""
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    items = list(fns.items())
    for _ in range(n):
        acc = {k: [0.0, 0.0] for k in fns}
        for c in range(chunks):
            for name, fn in items if c % 2 == 0 else items[::-1]:
                t, p = time.perf_counter(), time.process_time()
                fn(c)
                acc[name][0] += time.perf_counter() - t
                acc[name][1] += time.process_time() - p
        for k, (w, p) in acc.items():
            wall[k].append(w)
            cpu[k].append(p)
    return wall, cpu


def spread(base: list[float], ours: list[float]) -> str:
    r = [b / o for b, o in zip(base, ours)]
    return f"{min(r):.2f}–{max(r):.2f}"


# -- 1. replay ------------------------------------------------------------------------------------------
def bench_replay(specs: list[PositionSpec], games: list[list[str]], n: int) -> None:
    plies = sum(len(s.moves) for s in specs)
    wanted: dict[int, set[int]] = {}
    for s in specs:
        g, t = s.id.split("-p")
        wanted.setdefault(int(g[1:]), set()).add(int(t))

    def per_game():  # python-chess, every game once: is_legal + push every ply, a board copy per position
        for g, ts in wanted.items():
            b = chess.Board()
            for t, u in enumerate(games[g], start=1):
                m = chess.Move.from_uci(u)
                if not b.is_legal(m):
                    raise AssertionError(u)
                b.push(m)
                if t in ts:
                    b.copy(stack=False)

    shuffled = [specs[i] for i in np.random.default_rng(0).permutation(len(specs))]
    t, _ = rounds({"tree": lambda: histories_of(specs), "tree, shuffled": lambda: histories_of(shuffled),
                   "alone": lambda: [history_of(s) for s in specs], "per game": per_game}, n)
    best = {k: min(v) for k, v in t.items()}
    print(f"\n1. replay → histories + boards ({len(specs)} positions, {plies / len(specs):.0f} plies each on average; {machine_load()})")
    print(f"   {'':58s} {'positions/s':>12s} {'vs this':>8s}")
    rows = [("histories_of (tree of shared prefixes, bitboard replay)", "tree"),
            ("  the same positions in shuffled order", "tree, shuffled"),
            ("python-chess, each position alone (histories_of before)", "alone"),
            ("python-chess, each game once (is_legal + push, no history)", "per game")]
    for label, k in rows:
        print(f"   {label:58s} {len(specs) / best[k]:12,.0f} {best[k] / best['tree']:7.2f}×"
              + (f"  (rounds {spread(t[k], t['tree'])})" if k not in ("tree",) else ""))


# -- 2. Engine from move lists ----------------------------------------------------------------------------
def bench_engine(specs: list[PositionSpec], threads: int, n: int) -> float:
    hist, boards = histories_of(specs)
    planes = encode(hist)
    engine = Engine(NET, batch_size=BATCH, threads=threads, device="cpu")
    size = 2 * BATCH
    starts = list(range(0, len(specs), size))
    engine.run_planes(planes[:BATCH])  # warm up

    def ort(c):
        s = starts[c]
        engine.run_planes(planes[s : s + size])

    def from_moves(c):
        s = starts[c]
        h, b = histories_of(specs[s : s + size])
        engine.evaluate(h, b)

    def ready(c):
        s = starts[c]
        engine.evaluate(hist[s : s + size], boards[s : s + size])

    t, cpu = chunked({"ort": ort, "moves": from_moves, "ready": ready}, len(starts), n)
    best = {k: min(v) for k, v in t.items()}
    ratio = best["ort"] / best["moves"]
    print(f"   {threads} thread(s): ONNX Runtime alone {len(specs) / best['ort']:6,.0f}/s | Engine from move lists "
          f"{len(specs) / best['moves']:6,.0f}/s = {ratio:.2f}× (rounds {spread(t['ort'], t['moves'])}; CPU time "
          f"{min(cpu['ort']) / min(cpu['moves']):.2f}×) | Engine on ready histories {len(specs) / best['ready']:6,.0f}/s = "
          f"{best['ort'] / best['ready']:.2f}× (CPU time {min(cpu['ort']) / min(cpu['ready']):.2f}×) | {machine_load()}")
    return ratio


# -- 3. net eval --input ------------------------------------------------------------------------------------
def bench_net_eval(jsonl: Path, tmp: Path, threads: int, n: int) -> float:
    specs = list(read_positions_jsonl(jsonl))
    planes = encode(histories_of(specs)[0])
    out = tmp / "eval.jsonl"

    def cli():
        run_cli("net", "eval", NET, "--input", jsonl, "--output", out, "--threads", threads, "--device", "cpu")

    def ort():
        Engine(NET, batch_size=BATCH, threads=threads, device="cpu").run_planes(planes)

    t, cpu = rounds({"ort": ort, "cli": cli}, n)
    best = {k: min(v) for k, v in t.items()}
    ratio = best["ort"] / best["cli"]
    print(f"   {threads} thread(s): ONNX Runtime alone (engine built + run) {best['ort']:5.2f} s | net eval --input "
          f"{best['cli']:5.2f} s = {ratio:.2f}× (rounds {spread(t['ort'], t['cli'])}; CPU time {min(cpu['ort']):.2f} s vs "
          f"{min(cpu['cli']):.2f} s = {min(cpu['ort']) / min(cpu['cli']):.2f}×) | {machine_load()}")
    return ratio


# -- 4. lczerolens --------------------------------------------------------------------------------------------
LZL_WORKER = r"""
import json, sys, time
import chess, torch
from lczerolens import LczeroEvaluator
a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
torch.set_num_interop_threads(1)
positions = [json.loads(line) for line in open(a["positions"])]
t = time.perf_counter()
ev = LczeroEvaluator.from_path(a["onnx"])
import lczerolens
print(json.dumps({"load_s": time.perf_counter() - t, "torch": torch.__version__,
                  "lczerolens": getattr(lczerolens, "__version__", "?")}), flush=True)

def boards():
    out = []
    for p in positions:
        b = chess.Board(p["fen"]) if p.get("fen") else chess.Board()
        for u in p["moves"]:
            b.push_uci(u)
        out.append(b)
    return out

for line in sys.stdin:
    cmd = line.strip()
    if cmd == "quit":
        break
    t0 = time.perf_counter()
    bs = boards()
    parts = {"boards": time.perf_counter() - t0, "prepare": 0.0, "model": 0.0, "finish": 0.0}
    wdl = []
    with torch.inference_mode():
        for s in range(0, len(bs), a["batch"]):
            chunk = bs[s : s + a["batch"]]
            t1 = time.perf_counter(); td = ev.prepare(chunk)
            t2 = time.perf_counter(); td = ev.model(td)
            t3 = time.perf_counter(); batch = ev.finish(chunk, td)
            t4 = time.perf_counter()
            parts["prepare"] += t2 - t1; parts["model"] += t3 - t2; parts["finish"] += t4 - t3
            if cmd == "check" and s == 0:
                wdl = [[e.wdl.win, e.wdl.draw, e.wdl.loss] for e in batch][:64]
    parts["total"] = time.perf_counter() - t0
    print(json.dumps({"parts": parts, "wdl": wdl}), flush=True)
"""


def lczerolens_python(path: str | None) -> tuple[str | None, str]:
    if not path:
        return None, "no --lczerolens-python given"
    try:
        r = subprocess.run([path, "-c", "import lczerolens, torch"], capture_output=True, text=True, timeout=300)
    except OSError as e:
        return None, f"{path}: cannot run ({e.strerror})"
    if r.returncode:
        return None, f"{path} cannot import lczerolens ({(r.stderr.strip().splitlines() or ['?'])[-1]})"
    return path, ""


def bench_lczerolens(python: str, jsonl: Path, tmp: Path, threads: int, n: int) -> float:
    onnx = tmp / "maia-1100.onnx"
    if not onnx.exists():
        onnx.write_bytes(gzip.decompress(need(LC0_ONNX).read_bytes()))
    args = json.dumps({"threads": threads, "positions": str(jsonl), "onnx": str(onnx), "batch": BATCH})
    proc = subprocess.Popen([python, "-c", LZL_WORKER, args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        specs = list(read_positions_jsonl(jsonl))
        engine = Engine(onnx, batch_size=BATCH, threads=threads, device="cpu")

        def ask(cmd: str) -> dict:
            proc.stdin.write(cmd + "\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

        theirs = ask("check")
        hist, boards = histories_of(specs[:BATCH])
        ours = np.array([ev.wdl for ev in engine.evaluate(hist, boards)[:64]])
        diff = float(np.abs(ours - np.array(theirs["wdl"])).max())
        parts: list[dict] = []

        def lzl():
            parts.append(ask("round")["parts"])

        def ours_e2e():
            h, b = histories_of(specs)
            engine.evaluate(h, b)

        t, _ = rounds({"lzl": lzl, "ours": ours_e2e}, n)
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    best_lzl = min(p["total"] for p in parts)
    best_ours = min(t["ours"])
    p = min(parts, key=lambda x: x["total"])
    ratio = best_lzl / best_ours
    n_pos = len(specs)
    print(f"   {threads} thread(s): lczerolens {n_pos / best_lzl:6,.0f}/s (µs/position: boards {p['boards'] / n_pos * 1e6:.0f}, "
          f"prepare {p['prepare'] / n_pos * 1e6:.0f}, torch model {p['model'] / n_pos * 1e6:.0f}, finish {p['finish'] / n_pos * 1e6:.0f}) | "
          f"ours {n_pos / best_ours:6,.0f}/s = {ratio:.1f}× (rounds {spread([x['total'] for x in parts], t['ours'])}; "
          f"torch model alone vs ours end to end: {p['model'] / best_ours:.1f}×) | max |ΔWDL| {diff:.1e} | "
          f"torch {info['torch']}, model load {info['load_s']:.1f} s | {machine_load()}")
    return ratio


# -- 5. concepts label ------------------------------------------------------------------------------------
def bench_label(tmp: Path, positions: int, n: int) -> float:
    from conceptchess.concepts import label
    from conceptchess.datasets import iter_dataset
    from conceptchess.games import Sampling, pgn_dataset

    ds = tmp / "ds"
    pgn_dataset([GAMES], ds, sampling=Sampling(max_positions=positions), overwrite=True)
    specs = list(iter_dataset(ds))
    boards = [s.board() for s in specs]
    out = tmp / "labels.csv"

    def cli():
        run_cli("concepts", "label", "--input", ds, "--output", out)

    t, cpu = rounds({"library": lambda: label(boards), "cli": cli}, n)
    k = len(specs)
    rate, rate_cpu = k / min(t["cli"]), k / min(cpu["cli"])
    print(f"\n5. concepts label, {k} positions of a positions from-pgn dataset ({sum(1 for s in specs if s.fen)} with a FEN start), "
          f"one core ({machine_load()})")
    print(f"   concepts label end to end {rate:6,.0f}/s wall clock, {rate_cpu:6,.0f}/s of CPU time (target 2,000/s) | "
          f"the library alone on ready boards {k / min(t['library']):6,.0f}/s wall, {k / min(cpu['library']):6,.0f}/s CPU | "
          f"end to end / library (CPU) {min(cpu['library']) / min(cpu['cli']):.2f}")
    return rate_cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--label-positions", type=int, default=4000)
    ap.add_argument("--lczerolens-python", help="a Python with lczerolens 0.5.1 installed (see the module docstring)")
    ap.add_argument("--require-lczerolens", action="store_true", help="exit 1 when the lczerolens comparison cannot run")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each figure as soon as it is measured
    need(NET)
    games = game_moves(GAMES)
    specs = [PositionSpec(f"g{g}-p{t}", None, moves[:t]) for g, moves in enumerate(games) for t in range(EVERY, len(moves) + 1, EVERY)]
    lzl, why = lczerolens_python(args.lczerolens_python)
    met: dict[str, bool] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        jsonl = tmp / "positions.jsonl"
        jsonl.write_text("".join(json.dumps({"id": s.id, "moves": s.moves}) + "\n" for s in specs))
        print(f"{len(specs)} positions (every {EVERY}th ply of {len(games)} games, {GAMES.name}), "
              f"{np.mean([len(s.moves) for s in specs]):.0f} plies of history on average; maia-1100; ONNX Runtime batch {BATCH}, CPU")
        bench_replay(specs, games, args.rounds)
        print(f"\n2. Engine from move lists vs ONNX Runtime alone (target ≥ 0.8×), chunks of {2 * BATCH} back to back, best of {args.rounds}")
        for th in args.threads:
            met[f"Engine from move lists ≥ 0.8× ORT, {th} thread(s)"] = bench_engine(specs, th, args.rounds) >= 0.8
        print(f"\n3. net eval --input vs ONNX Runtime alone from the network file (target ≥ 0.8×), best of {args.rounds}")
        for th in args.threads:
            met[f"net eval --input ≥ 0.8× ORT, {th} thread(s)"] = bench_net_eval(jsonl, tmp, th, args.rounds) >= 0.8
        print("\n4. lczerolens 0.5.1 vs ours end to end from move lists (target ≥ 5×), same ONNX file, positions, threads, batch")
        if lzl is None:
            print(f"   not run: {why}. To run it: python -m venv build/lzl-venv && build/lzl-venv/bin/pip install lczerolens==0.5.1, "
                  "then pass --lczerolens-python build/lzl-venv/bin/python")
        else:
            for th in args.threads:
                met[f"≥ 5× lczerolens, {th} thread(s)"] = bench_lczerolens(lzl, jsonl, tmp, th, args.rounds) >= 5
        met["concepts label ≥ 2,000/s (CPU time, one core)"] = bench_label(tmp, args.label_positions, args.rounds) >= 2000
    print("\ntargets: " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in met.items()))
    return 1 if lzl is None and args.require_lczerolens else 0


if __name__ == "__main__":
    sys.exit(main())
