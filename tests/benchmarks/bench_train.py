"""CPU training throughput per model at its training size (not a test): images/s of forward + backward + step.

    python tests/benchmarks/bench_train.py [--steps 3] [--batch 4]

U2-Net and U2-NetP train at 320x320, MODNet at 512x512, MNet (width 0.25) at 320x320, on random data.
"""

from __future__ import annotations

import argparse
import time

import torch

from train.config import TrainConfig
from train.loop import build_trainable
from train.steps import Trainee, compute_loss

SIZES = {"u2netp": 320, "u2net": 320, "modnet": 512, "mnet": 320}


def throughput(model_name: str, steps: int, batch: int) -> float:
    size = SIZES[model_name]
    model = build_trainable(TrainConfig(model=model_name))
    model.train()
    trainee = Trainee(model, model_name)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    data = {"image": torch.randn(batch, 3, size, size), "mask": (torch.rand(batch, 1, size, size) > 0.5).float()}
    elapsed = 0.0
    for step in range(steps + 1):
        started = time.perf_counter()
        loss, _ = compute_loss(trainee, model_name, data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:  # the first step warms up
            elapsed += time.perf_counter() - started
    return steps * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--models", nargs="+", default=list(SIZES))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    for name in args.models:
        print(f"{name:8} {SIZES[name]}x{SIZES[name]}: {throughput(name, args.steps, args.batch):6.2f} images/s")


if __name__ == "__main__":
    main()
