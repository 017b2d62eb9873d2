"""Supervised AlphaZero-style training of the lc0 SE-ResNet, with a checkpoint series.

Targets: the move played and the game result, Stockfish's labels (``targets="engine"``: a policy
over the legal moves and its WDL, :mod:`conceptchess.enginelabels`; the policy loss is then the KL
divergence), a mix of both, or a teacher network's policy and WDL; all for the side to move; an optional moves-left target (plies to the end
of the game). Illegal moves are masked out of the policy softmax, as lc0 masks them at inference.
The held-out split is by game. Checkpoints follow a schedule that includes step 0 (the random
initialisation) and roughly log-spaced steps after it; each is an lc0 ``.pb.gz`` written through
:func:`conceptchess.lc0.weights.write_weights` plus a ``.json`` of metadata, and the run folder keeps
``resume.pt`` (model, optimiser and RNG state) so a killed run continues exactly where it was.

>>> cfg = TrainConfig(run="demo", blocks=4, filters=32, steps=2000)        # doctest: +SKIP
>>> train(cfg, "datasets/lichess", "engines/")                              # doctest: +SKIP
"""

from __future__ import annotations

import copy
import io
import json
import os
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

import chess
import numpy as np
import torch
from torch.nn import functional as F

from conceptchess.checkpoints import checkpoint_name, series_sidecars, write_sidecar
from conceptchess.datasets import dataset_sha256, iter_dataset, read_manifest
from conceptchess.engine import Engine
from conceptchess.enginelabels import LABEL_KEY, TargetSettings, check_label, has_engine_labels, sparse_policy_target, wdl_target
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.files import atomic_write_bytes
from conceptchess.lc0.encoder import Histories, encode
from conceptchess.lc0.legal import legal_moves_batch
from conceptchess.lc0.policy_map import legal_move_indices, move_to_index
from conceptchess.lc0.trainable import TrainableLc0Net
from conceptchess.lc0.weights import NetSpec, read_weights, write_weights
from conceptchess.positions import histories_of
from conceptchess.progress import Progress
from conceptchess.provenance import sha256_bytes, software_versions

_RESULT_WDL = {"1-0": (1.0, 0.0, 0.0), "0-1": (0.0, 0.0, 1.0), "1/2-1/2": (0.0, 1.0, 0.0)}


# The architecture of the default series in engines/ (small enough to ship, fast on a CPU).
DEFAULT_ARCH = {"blocks": 6, "filters": 64, "se_channels": 8, "value_channels": 8, "value_hidden": 128}


@dataclass
class TrainConfig:
    run: str = "run"
    blocks: int = DEFAULT_ARCH["blocks"]
    filters: int = DEFAULT_ARCH["filters"]
    se_channels: int = DEFAULT_ARCH["se_channels"]
    value_channels: int = DEFAULT_ARCH["value_channels"]
    value_hidden: int = DEFAULT_ARCH["value_hidden"]
    moves_left: bool = False
    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    value_weight: float = 1.0
    checkpoints: int = 10  # step 0 plus this many minus one, log-spaced up to ``steps``
    holdout: float = 0.1  # share of games held out
    seed: int = 0
    teacher: str | None = None
    targets: str = "played"  # played | engine | mix (see load_training_data)
    target_temperature: float = TargetSettings.temperature
    target_floor: float = TargetSettings.floor
    mix: float = 0.5  # weight of the engine targets in "mix"
    max_positions: int | None = None
    encoding: str = "linear16"
    threads: int | None = None  # torch intra-op threads (None: torch's default)

    def spec(self) -> NetSpec:
        return NetSpec(blocks=self.blocks, filters=self.filters, se_channels=self.se_channels, policy="convolution",
                       policy_channels=0, value="wdl", value_channels=self.value_channels, value_hidden=self.value_hidden,
                       moves_left=self.moves_left, mlh_channels=8 if self.moves_left else 0,
                       mlh_hidden=128 if self.moves_left else 0)


def checkpoint_schedule(steps: int, count: int) -> list[int]:
    """Step 0, then ``count - 1`` roughly log-spaced steps ending at ``steps`` (fewer if they collide)."""
    if steps < 1 or count <= 2:  # (geomspace of one point would be step 1, not the end)
        return [0, steps] if steps > 0 else [0]
    pts = np.unique(np.round(np.geomspace(1, steps, count - 1)).astype(int))
    return [0] + [int(p) for p in pts]


# ------------------------------------------------------------------------------------------ data

@dataclass
class TrainingData:
    """Encoded training positions: histories, legal-move masks and targets."""

    hist: Histories
    legal: np.ndarray  # (N, 1858) bool
    policy_index: np.ndarray  # (N,) int64: the move played (-1 when a soft target is used)
    wdl: np.ndarray  # (N, 3) float32
    mlh: np.ndarray  # (N,) float32: plies left in the game (nan when unknown)
    game: np.ndarray  # (N,) game key (for the split)
    boards: list[chess.Board] = field(default_factory=list, repr=False)
    soft_policy: np.ndarray | None = None  # (N, 1858) teacher distribution
    # engine targets, sparsely: (N, K) policy indices (-1 pads), their probability above the floor,
    # and (N,) the floor's probability per legal move
    target_index: np.ndarray | None = None
    target_prob: np.ndarray | None = None
    target_floor: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.policy_index)

    def subset(self, idx: np.ndarray) -> "TrainingData":
        def pick(a):
            return None if a is None else a[idx]
        return TrainingData(self.hist[idx], self.legal[idx], self.policy_index[idx], self.wdl[idx], self.mlh[idx],
                            self.game[idx], [self.boards[i] for i in idx.tolist()], pick(self.soft_policy),
                            pick(self.target_index), pick(self.target_prob), pick(self.target_floor))

    def dense_targets(self, idx: np.ndarray) -> np.ndarray | None:
        """(len(idx), 1858) policy target of these positions, or None for the move played."""
        if self.soft_policy is not None:
            return self.soft_policy[idx]
        if self.target_index is None:
            return None
        out = self.legal[idx] * self.target_floor[idx, None]
        ti, tp = self.target_index[idx], self.target_prob[idx]
        rows = np.repeat(np.arange(len(idx)), ti.shape[1])
        keep = ti.ravel() >= 0
        np.add.at(out, (rows[keep], ti.ravel()[keep]), tp.ravel()[keep])
        return out.astype(np.float32)


def _game_key(spec) -> str:
    g = spec.meta.get("game")
    return str(g) if g is not None else str(spec.id).rsplit("-p", 1)[0]


_CHUNK = 4096  # positions replayed (and reported to ``progress``) at a time


TARGETS = ("played", "engine", "mix")


def load_training_data(dataset: str | os.PathLike, max_positions: int | None = None,
                       progress: Progress | None = None, *, targets: str = "played",
                       target_settings: TargetSettings = TargetSettings(), mix: float = 0.5) -> TrainingData:
    """Read a positions dataset into training targets.

    ``targets``: ``"played"`` — the move played (records need ``move``; ``result`` for the value
    target); ``"engine"`` — Stockfish's labels (:mod:`conceptchess.enginelabels`: the win-chance softmax
    policy and Stockfish's WDL; records need ``engine``); ``"mix"`` — ``mix`` × the engine's targets +
    (1 − ``mix``) × the move played and the result (records need both). The first ``max_positions``
    usable records are replayed together (:func:`~conceptchess.positions.histories_of`);
    ``progress(done, total)`` counts them.
    """
    if targets not in TARGETS:
        raise ArgumentError(f"{{targets}} must be one of {', '.join(TARGETS)}, got {targets!r}", targets="targets")
    target_settings.check()
    if targets != "played" and not has_engine_labels(dataset):
        raise ConceptChessError(f"{dataset}: no engine labels, which --targets {targets} needs (label it first: "
                                f"conceptchess positions label-engine --input {dataset} -o LABELLED)")
    if not 0 <= mix <= 1:
        raise ArgumentError(f"{{mix}} must be in [0, 1], got {mix}", mix="mix")

    def usable(spec) -> bool:
        if targets == "played":
            return bool(spec.meta.get("move"))
        if targets == "engine":
            return spec.meta.get(LABEL_KEY) is not None
        return bool(spec.meta.get("move")) and spec.meta.get(LABEL_KEY) is not None

    specs = list(islice((spec for spec in iter_dataset(dataset) if usable(spec)), max_positions or None))
    parts, legal, pidx, wdl, mlh, games, boards = [], [], [], [], [], [], []
    t_index, t_prob, t_floor = [], [], []
    engine_weight = {"played": 0.0, "engine": 1.0, "mix": mix}[targets]
    for s in range(0, len(specs), _CHUNK):
        chunk = specs[s : s + _CHUNK]
        h, chunk_boards = histories_of(chunk, where=f"{dataset} ")
        parts.append(h)
        for spec, board in zip(chunk, chunk_boards, strict=True):
            _, idx = legal_move_indices(board)
            mask = np.zeros(1858, bool)
            mask[idx] = True
            legal.append(mask)
            played = None
            if targets != "engine":
                move = spec.meta["move"]
                try:
                    m = board.parse_uci(move)
                except ValueError:
                    raise ConceptChessError(f"{dataset} id={spec.id}: played move {move!r} is not legal in {board.fen()}") from None
                played = move_to_index(m, board.turn, board.is_castling(m))
            pidx.append(played if played is not None else -1)
            res = _RESULT_WDL.get(spec.meta.get("result", ""), (np.nan, np.nan, np.nan))
            res = res if board.turn == chess.WHITE else res[::-1]
            if targets != "played":
                label = spec.meta[LABEL_KEY]
                check_label(label, board, f"{dataset} id={spec.id}")
                ti, tp, fl = sparse_policy_target(label, board, target_settings)
                tp, fl = [p * engine_weight for p in tp], fl * engine_weight
                if played is not None and engine_weight < 1:
                    ti, tp = ti + [played], tp + [1 - engine_weight]
                sf = wdl_target(label)
                res = sf if np.isnan(res[0]) or engine_weight == 1 else tuple(engine_weight * a + (1 - engine_weight) * b
                                                                              for a, b in zip(sf, res, strict=True))
                t_index.append(ti)
                t_prob.append(tp)
                t_floor.append(fl)
            wdl.append(res)
            left = spec.meta.get("plies_left")
            mlh.append(np.nan if left is None else float(left))
            games.append(_game_key(spec))
            boards.append(board)
        if progress is not None:
            progress(len(boards), len(specs))
    if not pidx:
        what = {"played": "a played \"move\"", "engine": "an engine label", "mix": "both a played \"move\" and an engine label"}[targets]
        raise ConceptChessError(f"{dataset}: no training positions (empty dataset, or no record has {what})")
    data = TrainingData(Histories.concat(parts), np.stack(legal), np.array(pidx, np.int64), np.array(wdl, np.float32),
                        np.array(mlh, np.float32), np.array(games), boards)
    if targets != "played":
        k = max(len(t) for t in t_index)
        data.target_index = np.full((len(t_index), k), -1, np.int64)
        data.target_prob = np.zeros((len(t_index), k), np.float32)
        for i, (ti, tp) in enumerate(zip(t_index, t_prob, strict=True)):
            data.target_index[i, : len(ti)] = ti
            data.target_prob[i, : len(tp)] = tp
        data.target_floor = np.array(t_floor, np.float32)
    return data


def holdout_games(games: np.ndarray, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train / held-out position indices; every game lies wholly on one side."""
    keys = np.unique(games)
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(keys)[: max(1, int(round(len(keys) * holdout)))].tolist()) if holdout > 0 and len(keys) > 1 else set()
    is_held = np.array([g in held for g in games])
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


def teacher_targets(teacher: str | os.PathLike, data: TrainingData, batch_size: int = 256) -> None:
    """Replace the targets by a teacher network's policy over legal moves and its WDL (distillation)."""
    eng = Engine(teacher, batch_size=batch_size)
    raw = eng.run_planes(encode(data.hist))
    logits = np.where(data.legal, raw["policy"], -np.inf)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    data.soft_policy = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    data.policy_index = np.full(len(data), -1, np.int64)
    if "wdl" in raw:
        data.wdl = raw["wdl"].astype(np.float32)
    else:  # tanh value: expected score as W/L with no draws
        q = raw["value"].astype(np.float32)
        data.wdl = np.stack([(1 + q) / 2, np.zeros_like(q), (1 - q) / 2], axis=1)


# ------------------------------------------------------------------------------------------ loss

def batch_tensors(data: TrainingData, idx: np.ndarray):
    # channels_last: oneDNN's convolutions on 8×8 boards run ~1.6× faster in NHWC on CPU.
    planes = torch.from_numpy(encode(data.hist[idx])).contiguous(memory_format=torch.channels_last)
    legal = torch.from_numpy(data.legal[idx])
    wdl = torch.from_numpy(data.wdl[idx])
    dense = data.dense_targets(idx)
    target = torch.from_numpy(dense) if dense is not None else torch.from_numpy(data.policy_index[idx])
    mlh = torch.from_numpy(data.mlh[idx])
    return planes, legal, target, wdl, mlh


def losses(net, planes, legal, target, wdl, mlh) -> dict[str, torch.Tensor]:
    out = net(planes)
    logits = out["policy"].masked_fill(~legal, -1e9)
    logp = F.log_softmax(logits, dim=1)
    if target.dtype == torch.int64:
        policy_loss = F.nll_loss(logp, target)
        correct = (logits.argmax(1) == target).float().mean()
    else:
        # KL(target ‖ network): the cross-entropy less the target's own entropy (same gradient)
        policy_loss = (target * (torch.log(target.clamp_min(1e-12)) - logp.clamp_min(-1e9))).sum(1).mean()
        correct = (logits.argmax(1) == target.argmax(1)).float().mean()
    has_v = ~torch.isnan(wdl[:, 0])
    value_loss = -(wdl[has_v] * torch.log(out["wdl"][has_v].clamp_min(1e-7))).sum(1).mean() if has_v.any() else planes.new_zeros(())
    res = {"policy": policy_loss, "value": value_loss, "accuracy": correct}
    if "mlh" in out:
        has_m = ~torch.isnan(mlh)
        res["mlh"] = F.huber_loss(out["mlh"][has_m], mlh[has_m], delta=10.0) / 20 if has_m.any() else planes.new_zeros(())
    return res


@torch.no_grad()
def evaluate_loss(net, data: TrainingData, idx: np.ndarray, batch_size: int = 512) -> dict[str, float]:
    """Mean held-out losses and move-matching accuracy (eval mode)."""
    was = net.training
    net.eval()
    sums: dict[str, float] = {}
    n = 0
    for s in range(0, len(idx), batch_size):
        b = idx[s : s + batch_size]
        ls = losses(net, *batch_tensors(data, b))
        for k, v in ls.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(b)
        n += len(b)
    net.train(was)
    out = {k: v / max(n, 1) for k, v in sums.items()}
    out["total"] = out.get("policy", 0) + out.get("value", 0) + out.get("mlh", 0)
    return out


# ------------------------------------------------------------------------------------------ run

def _versions() -> dict:
    return software_versions("torch", "numpy", "chess")


class Trainer:
    """One training run writing into ``out_dir``; ``run()`` is resumable.

    ``progress(step, cfg.steps)`` is called after every step; ``last_loss`` is that step's training loss.
    """

    def __init__(self, cfg: TrainConfig, dataset: str | os.PathLike, out_dir: str | os.PathLike,
                 data: TrainingData | None = None, progress: Progress | None = None):
        self.cfg = cfg
        self.dataset = Path(dataset)
        self.out = Path(out_dir)
        self.progress = progress
        self.last_loss: float | None = None
        if cfg.teacher and cfg.targets != "played":
            raise ArgumentError("{teacher} and {targets} engine/mix are two different targets; choose one",
                                teacher="--teacher", targets="targets")
        self.data = data if data is not None else load_training_data(
            dataset, cfg.max_positions, targets=cfg.targets, target_settings=TargetSettings(cfg.target_temperature, cfg.target_floor),
            mix=cfg.mix)
        if cfg.teacher:
            teacher_targets(cfg.teacher, self.data)
        self.train_idx, self.held_idx = holdout_games(self.data.game, cfg.holdout, cfg.seed)
        if len(self.train_idx) == 0:
            raise ConceptChessError(f"{dataset}: no training positions left after holding out {cfg.holdout:.0%} of games")
        self.dataset_sha = dataset_sha256(dataset)
        self.schedule = checkpoint_schedule(cfg.steps, cfg.checkpoints)

    # -- state ----------------------------------------------------------------------------------
    def _fresh(self):
        torch.manual_seed(self.cfg.seed)
        net = TrainableLc0Net(self.cfg.spec()).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(net.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        return net, opt

    def _lr_at(self, step: int) -> float:
        warm = max(1, self.cfg.steps // 50)
        if step < warm:
            return self.cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, self.cfg.steps - warm)
        return self.cfg.lr * 0.5 * (1 + np.cos(np.pi * min(t, 1.0)))

    def _batch_indices(self, step: int) -> np.ndarray:
        """Deterministic in (seed, step): epoch permutations of the training positions."""
        n, bs = len(self.train_idx), self.cfg.batch_size
        per_epoch = max(1, n // bs)
        epoch, k = divmod(step, per_epoch)
        perm = np.random.default_rng([self.cfg.seed, epoch]).permutation(n)
        return self.train_idx[perm[k * bs : (k + 1) * bs]]

    def _resume_path(self) -> Path:
        return self.out / "resume.pt"

    def _save_resume(self, net, opt, step: int, history: list) -> None:
        buf = io.BytesIO()
        torch.save({"step": step, "model": net.state_dict(), "opt": opt.state_dict(), "spec": asdict(self.cfg.spec()),
                    "torch_rng": torch.get_rng_state(), "config": asdict(self.cfg), "history": history}, buf)
        atomic_write_bytes(self._resume_path(), buf.getvalue())

    def _load_resume(self):
        state = torch.load(self._resume_path(), weights_only=False)
        if state["spec"] != asdict(self.cfg.spec()):
            got = NetSpec(**state["spec"])
            raise ConceptChessError(f"{self._resume_path()}: checkpoint is {got.describe()}, but this run asks for "
                                    f"{self.cfg.spec().describe()} (a different architecture)")
        net, opt = self._fresh()
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        torch.set_rng_state(state["torch_rng"])
        return net, opt, state["step"], state["history"]

    def _write_checkpoint(self, net, step: int, train_loss: float | None, history: list) -> dict:
        held = evaluate_loss(net, self.data, self.held_idx) if len(self.held_idx) else {}
        name = checkpoint_name(self.cfg.run, step)
        sha = write_weights(self.out / name, self.cfg.spec(), net.folded_state(), encoding=self.cfg.encoding,
                            training_steps=step)
        meta = {"run": self.cfg.run, "step": step, "file": name, "sha256": sha, "seed": self.cfg.seed,
                "dataset": str(self.dataset), "dataset_sha256": self.dataset_sha,
                "train_loss": train_loss, "heldout_loss": held.get("total"), "heldout_policy_loss": held.get("policy"),
                "heldout_value_loss": held.get("value"), "heldout_accuracy": held.get("accuracy"),
                "train_positions": int(len(self.train_idx)), "heldout_positions": int(len(self.held_idx)),
                "architecture": self.cfg.spec().describe(), "teacher": self.cfg.teacher, "targets": self.cfg.targets,
                "versions": _versions()}
        write_sidecar(self.out / name, meta)
        history.append(meta)
        return meta

    def run(self, resume: bool = True, stop_after: int | None = None) -> list[dict]:
        """Train to ``cfg.steps`` (or stop early after ``stop_after`` steps — for tests), writing checkpoints."""
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        self.out.mkdir(parents=True, exist_ok=True)
        if resume and self._resume_path().exists():
            net, opt, step, history = self._load_resume()
        else:
            for p in self.out.glob(f"{self.cfg.run}-step*.pb.gz"):
                raise ConceptChessError(f"{self.out}: already holds checkpoints of run {self.cfg.run!r} ({p.name}); resume it or choose another folder")
            net, opt = self._fresh()
            step, history = 0, []
            net.eval()
            self._write_checkpoint(net, 0, None, history)
            self._save_resume(net, opt, 0, history)
        net.train()
        run_loss, run_n = 0.0, 0
        done = 0
        while step < self.cfg.steps:
            if stop_after is not None and done >= stop_after:
                break
            for g in opt.param_groups:
                g["lr"] = self._lr_at(step)
            ls = losses(net, *batch_tensors(self.data, self._batch_indices(step)))
            total = ls["policy"] + self.cfg.value_weight * ls["value"] + ls.get("mlh", 0)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            step += 1
            done += 1
            self.last_loss = total.item()
            run_loss += self.last_loss
            run_n += 1
            if self.progress:
                self.progress(step, self.cfg.steps)
            if step in self.schedule:
                net.eval()
                self._write_checkpoint(net, step, run_loss / run_n, history)
                net.train()
                run_loss, run_n = 0.0, 0
                self._save_resume(net, opt, step, history)
        if step >= self.cfg.steps:
            atomic_write_bytes(self.out / f"{self.cfg.run}.json", (json.dumps(
                {"run": self.cfg.run, "config": asdict(self.cfg), "dataset": str(self.dataset), "dataset_sha256": self.dataset_sha,
                 "dataset_manifest": read_manifest(self.dataset), "checkpoints": history, "versions": _versions()}, indent=2) + "\n").encode())
        return history


def train(cfg: TrainConfig, dataset: str | os.PathLike, out_dir: str | os.PathLike, resume: bool = True,
          progress: Progress | None = None) -> list[dict]:
    return Trainer(cfg, dataset, out_dir, progress=progress).run(resume=resume)


# ------------------------------------------------------------------------------- student fine-tuning

def load_trainable(path: str | os.PathLike) -> TrainableLc0Net:
    """A trainable copy of a ``.pb.gz`` network (batch norm set to identity around the folded convs)."""
    spec, state = read_weights(path)
    net = TrainableLc0Net(spec)
    sd = net.state_dict()
    for name, mod in net.named_modules():
        if hasattr(mod, "folded"):
            sd[f"{name}.conv.weight"] = torch.from_numpy(state[f"{name}.weight"])
            sd[f"{name}.bn.bias"] = torch.from_numpy(state[f"{name}.bias"])
            sd[f"{name}.bn.weight"] = torch.ones_like(sd[f"{name}.bn.weight"])
            sd[f"{name}.bn.running_mean"] = torch.zeros_like(sd[f"{name}.bn.running_mean"])
            sd[f"{name}.bn.running_var"] = torch.full_like(sd[f"{name}.bn.running_var"], 1 - net.input.bn.eps)
    for k, v in state.items():
        if k in sd:
            sd[k] = torch.from_numpy(v)
    net.load_state_dict(sd)
    return net.eval()


def policy_distributions(net, hist: Histories, legal: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        logits = net.eval()(torch.from_numpy(encode(hist)))["policy"].masked_fill(~torch.from_numpy(legal), -1e9)
        return torch.softmax(logits, 1).numpy()


def legal_masks(boards: list[chess.Board]) -> np.ndarray:
    """(len(boards), 1858) bool: each board's legal moves as lc0 policy indices, listed for the whole batch
    at once (:func:`~conceptchess.lc0.legal.legal_moves_batch`)."""
    legal = legal_moves_batch(boards)
    m = np.zeros((len(boards), 1858), bool)
    if legal:
        counts = [len(idx) for _, idx in legal]
        m[np.repeat(np.arange(len(boards)), counts), np.concatenate([idx for _, idx in legal])] = True
    return m


def top1_agreement(student, teacher_policy: np.ndarray, hist: Histories, legal: np.ndarray) -> float:
    """Share of positions where the student's top move is the teacher's top move."""
    p = policy_distributions(student, hist, legal)
    return float((p.argmax(1) == teacher_policy.argmax(1)).mean())


def finetune_student(student: TrainableLc0Net, hist: Histories, legal: np.ndarray, teacher_policy: np.ndarray,
                     steps: int = 100, lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
                     epochs: int | None = None) -> TrainableLc0Net:
    """Fine-tune a copy of ``student`` to minimise KL(teacher policy ‖ student policy) on these positions (Adam).

    The batches: ``steps`` of ``batch_size`` positions drawn afresh at each step; or, with ``epochs``, that
    many passes over all the positions, each in a fresh random order cut into batches of ``batch_size``
    (the last one smaller when they do not divide), ``steps`` then unused. ``seed`` fixes the order.
    Batch norm statistics stay frozen (eval mode), so a few prototypes cannot wreck them. Returns the
    fine-tuned copy; the original is untouched.
    """
    net = copy.deepcopy(student).eval()
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    target = torch.from_numpy(teacher_policy.astype(np.float32))
    legal_t = torch.from_numpy(legal)
    planes = torch.from_numpy(encode(hist))
    n = len(planes)

    def batches():
        if epochs is None:
            for _ in range(steps):
                yield torch.randperm(n, generator=g)[:batch_size]
            return
        for _ in range(epochs):
            perm = torch.randperm(n, generator=g)
            yield from (perm[s : s + batch_size] for s in range(0, n, batch_size))

    for idx in batches():
        logits = net(planes[idx])["policy"].masked_fill(~legal_t[idx], -1e9)
        logq = F.log_softmax(logits, 1)
        t = target[idx]
        kl = (t * (torch.log(t.clamp_min(1e-12)) - logq)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        kl.backward()
        opt.step()
    return net.eval()


def config_hash(cfg: TrainConfig) -> str:
    return sha256_bytes(json.dumps(asdict(cfg), sort_keys=True).encode())[:12]


def series_markdown(folder: str | os.PathLike, run: str) -> str:
    """A markdown table of a run's checkpoints: step, held-out losses and move matching, sha256."""
    rows = ["| file | step | held-out policy loss | held-out WDL loss | held-out move-matching | sha256 |",
            "|---|---:|---:|---:|---:|---|"]
    for _, _, m in series_sidecars(folder, run):
        rows.append(f"| {m['file']} | {m['step']} | {m['heldout_policy_loss']:.4f} | {m['heldout_value_loss']:.4f} | "
                    f"{m['heldout_accuracy']:.4f} | `{m['sha256']}` |")
    return "\n".join(rows)
