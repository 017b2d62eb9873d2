"""Training throughput on CPU for the default architecture (the series in engines/).

Prints training samples/s (forward + backward + AdamW step, batch 256) next to a named baseline
measured in the same run: inference-only samples/s of the same torch model (forward, no grad).

    python benchmarks/training_throughput.py [--blocks 6 --filters 64] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from conceptchess.lc0.trainable import TrainableLc0Net
from conceptchess.training import DEFAULT_ARCH, TrainConfig, losses


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=DEFAULT_ARCH["blocks"])
    ap.add_argument("--filters", type=int, default=DEFAULT_ARCH["filters"])
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the default series was trained with 1)")
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(**{**DEFAULT_ARCH, "blocks": args.blocks, "filters": args.filters})
    torch.manual_seed(0)
    net = TrainableLc0Net(cfg.spec()).to(memory_format=torch.channels_last)  # as the Trainer does
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    bs = args.batch_size
    planes = torch.from_numpy((rng.random((bs, 112, 8, 8)) < 0.05).astype(np.float32)).contiguous(memory_format=torch.channels_last)
    legal = torch.from_numpy(rng.random((bs, 1858)) < 0.02)
    target = torch.from_numpy(rng.integers(0, 1858, bs))
    legal[torch.arange(bs), target] = True
    wdl = torch.from_numpy(np.eye(3, dtype=np.float32)[rng.integers(0, 3, bs)])
    mlh = torch.full((bs,), float("nan"))

    # engine targets (--targets engine): a soft policy over the legal moves, as TrainingData.dense_targets builds it
    soft = torch.where(legal, torch.rand(bs, 1858, generator=torch.Generator().manual_seed(0)), torch.zeros(()))
    soft = soft / soft.sum(1, keepdim=True)

    def train_step(policy_target=target):
        ls = losses(net, planes, legal, policy_target, wdl, mlh)
        opt.zero_grad(set_to_none=True)
        (ls["policy"] + ls["value"]).backward()
        opt.step()

    def infer():
        with torch.no_grad():
            net(planes)

    def rate(fn):
        fn()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < args.seconds:
            fn()
            n += bs
        return n / (time.perf_counter() - t0)

    net.train()
    tr = rate(train_step)
    tr_soft = rate(lambda: train_step(soft))
    net.eval()
    inf = rate(infer)
    print(f"architecture {cfg.spec().describe()} | torch {torch.__version__} | threads {torch.get_num_threads()} | batch {bs}")
    print(f"training  {tr:>9,.0f} samples/s (target: the move played)")
    print(f"training  {tr_soft:>9,.0f} samples/s (target: an engine policy over the legal moves, KL)")
    print(f"baseline: inference (same model, forward only) {inf:>9,.0f} samples/s → training/inference {tr / inf:.2f}")


if __name__ == "__main__":
    main()
