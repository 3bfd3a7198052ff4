"""The training loop, top to bottom: set up, (resume), step, validate, keep the best, export.

    python -m train --model u2netp --data path/to/images+masks --epochs 20
    torchrun --nproc_per_node 2 -m train --model u2netp --data duts      # several GPUs (or CPU processes)

One process on the CPU is the same code as one process per GPU under DistributedDataParallel: the data order
is a seeded permutation sharded by rank, so N processes with batch b take the same samples per step as one
process with batch N*b.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from cutout.errors import TrainingError, first_line
from train.checkpoint import load_checkpoint, resume_state, rng_state, save_checkpoint, set_rng_state
from train.config import TrainConfig
from train.data import build_datasets
from train.metrics import matting_metrics, saliency_metrics
from train.steps import Trainee, compute_loss, predict_alpha


@dataclass
class TrainResult:
    """How a run ended: steps done, the last losses and validation metrics, where things were written."""

    step: int = 0
    epoch: int = 0
    losses: list[float] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] | None = None
    checkpoint: Path | None = None
    exported: Path | None = None
    interrupted: bool = False
    images_per_second: float = 0.0


def lr_at(step: int, base: float, warmup: int, total: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 5% of ``base`` at ``total`` steps."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


class EpochSampler(Sampler[int]):
    """A permutation seeded by (seed, epoch), this rank's share of it, from batch position ``start`` on."""

    def __init__(self, size: int, seed: int, epoch: int, rank: int = 0, world: int = 1, start: int = 0) -> None:
        order = np.random.default_rng([seed, epoch]).permutation(size)
        usable = len(order) - len(order) % world  # equal shares, so every rank takes the same number of steps
        self.indices = order[:usable][rank::world][start:].tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class _Stop:
    """Ctrl-C or SIGTERM asks the loop to save a checkpoint and stop after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: nothing to install
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        from cutout.errors import DeviceError

        raise DeviceError(
            f"--device {config.device} asked for a GPU, but PyTorch sees no CUDA device; use --device cpu"
        )
    return torch.device("cuda", local_rank if config.device in ("auto", "cuda") else int(config.device.split(":")[1]))


def build_trainable(config: TrainConfig) -> nn.Module:
    """The model, from scratch or from ``config.init`` (a built-in model's weights or a checkpoint/state_dict)."""
    from cutout.models import build_model
    from cutout.models import load_checkpoint as load_weights

    if config.model == "mnet":
        from cutout.models.mnet import MNet

        model: nn.Module = MNet(width=config.mnet_width)
    else:
        model = build_model(config.model, out_channels=config.num_classes)
    if config.init:
        from cutout.convert import resolve_weights, state_dict_in
        from cutout.errors import UsageError
        from cutout.registry import SPEC_FILE, get_spec, spec_from_file

        path = Path(config.init)
        if path.is_file():
            try:
                state = load_checkpoint(path)
            except Exception as error:  # torch.load's own errors for a file that holds no weights
                raise UsageError(
                    f"--init {path}: cannot read weights from it ({first_line(error)}); give a .pth/.pt file or "
                    "checkpoint, a trained model's folder or name, or a built-in model's name"
                ) from None
            state = state_dict_in(state, path)  # a state_dict, cutout's checkpoint or another trainer's
        else:
            # a trained model's folder (as cutout train exported it), or a built-in or trained model's name
            folder = path.is_dir() and (path / SPEC_FILE).is_file()
            spec = spec_from_file(path / SPEC_FILE) if folder else get_spec(config.init)
            state = torch.load(resolve_weights(spec, "torch"), map_location="cpu", weights_only=True)
        load_weights(model, state)
    return model


def _loader(
    dataset: Dataset, config: TrainConfig, epoch: int, rank: int, world: int, start: int, train: bool
) -> DataLoader:
    # ``start`` counts batches already taken this epoch (a resumed run); the sampler counts samples
    skip = start * config.batch_size
    sampler = EpochSampler(len(dataset), config.seed, epoch, rank, world, skip) if train else None  # type: ignore[arg-type]
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=config.num_workers,
        drop_last=train,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch),  # leaves the global RNG alone
    )


def train(
    config: TrainConfig,
    *,
    resume: Path | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    stop_at: int | None = None,
) -> TrainResult:
    """Train as ``config`` says; ``progress`` receives a dict (step, total, loss, lr, img/s, ...) per logged step.

    ``stop_at`` behaves as if Ctrl-C came right after that step (a checkpoint to resume from; for tests).
    """
    state = resume_state(resume, config) if resume is not None else None  # a wrong file fails before any work
    if state is not None and config.name is None and state.get("config", {}).get("name"):
        # a resumed run keeps its name (cutout train may have chosen MODEL-DATA-2), so its checkpoints and model
        # go where its own are, never over another run's
        config = dataclasses.replace(config, name=state["config"]["name"])
    rank, world, local_rank = _distributed()
    device = _device(config, local_rank)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    train_set, val_set = build_datasets(config)
    model = build_trainable(config).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    trainee: nn.Module = Trainee(model, config.model)
    if world > 1:
        trainee = nn.parallel.DistributedDataParallel(
            trainee, device_ids=[device.index] if device.type == "cuda" else None
        )
    kind, base_lr = config.optimizer_and_lr()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer: torch.optim.Optimizer = (
        torch.optim.SGD(params, lr=base_lr, momentum=0.9, weight_decay=config.weight_decay)
        if kind == "sgd"
        else torch.optim.Adam(params, lr=base_lr, weight_decay=config.weight_decay)
    )
    use_amp = device.type == "cuda" if config.amp is None else config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    steps_per_epoch = len(train_set) // world // config.batch_size
    if steps_per_epoch == 0:
        from cutout.errors import UsageError

        count = len(train_set)
        processes = f" in each of {world} processes" if world > 1 else ""
        raise UsageError(
            f"{count} training image{'s are' if count != 1 else ' is'} (besides those held out for validation) "
            f"fewer than one batch of {config.batch_size}{processes}; lower --batch-size or add images"
        )
    total = config.max_steps or config.epochs * steps_per_epoch
    result = TrainResult()
    start_batch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        result.step, result.epoch, start_batch = state["step"], state["epoch"], state["batch"]
        result.best, result.history = state.get("best"), state.get("history", [])
        set_rng_state(state["rng"])
    run_dir = config.run_dir
    writer = _tensorboard(run_dir) if rank == 0 else None
    if rank == 0 and val_set is not None and config.validate_first and resume is None:
        result.history.append({"step": 0, **validate(model, config, val_set, device)})
        if progress is not None:
            progress({"step": 0, "total": total, "epoch": 0, "validation": result.history[-1]})
    seen, started = 0, time.perf_counter()

    def checkpoint(name: str, batch: int) -> Path:
        payload = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "step": result.step,
            "epoch": result.epoch,
            "batch": batch,
            "config": config.to_dict(),
            "architecture": config.model,
            "num_classes": config.num_classes,
            "best": result.best,
            "history": result.history,
            "rng": rng_state(),
            "format": "cutout-train-1",
        }
        return save_checkpoint(run_dir / name, payload) if rank == 0 else run_dir / name

    with _Stop() as stop:
        while result.epoch < config.epochs and result.step < total:
            trainee.train()
            if config.init:
                _freeze_batch_norm(model)
            batch_index = start_batch
            for batch in _loader(train_set, config, result.epoch, rank, world, start_batch, train=True):
                batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(result.step, base_lr, config.warmup_steps, total)
                with torch.autocast("cuda", dtype=torch.float16) if use_amp else nullcontext():
                    loss, parts = compute_loss(trainee, config.model, batch, config.iou_loss)
                if not torch.isfinite(loss):
                    raise TrainingError(f"the loss became {float(loss)} at step {result.step}; lower --lr")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                result.step += 1
                batch_index += 1
                seen += batch["image"].shape[0] * world
                result.losses.append(parts["loss"])
                result.images_per_second = seen / (time.perf_counter() - started)
                if progress is not None and rank == 0 and (result.step % config.log_every == 0 or result.step == total):
                    progress(
                        {
                            **parts,  # first: a loss part never hides the step count ("total")
                            "step": result.step,
                            "total": total,
                            "epoch": result.epoch,
                            "lr": optimizer.param_groups[0]["lr"],
                            "images_per_second": result.images_per_second,
                        }
                    )
                if writer is not None:
                    for key, value in parts.items():
                        writer.add_scalar(f"train/{key}", value, result.step)
                if _stop_everywhere(stop.requested or result.step == stop_at, world, device):
                    result.checkpoint = checkpoint("last.pt", batch_index)
                    result.interrupted = True
                    return result
                if result.step >= total:
                    break
            start_batch = 0
            result.epoch += 1  # also when --max-steps ended it early: the run is over either way
            metrics = validate(model, config, val_set, device) if rank == 0 and val_set is not None else {}
            if metrics:
                result.history.append({"step": result.step, **metrics})
                if writer is not None:
                    for key, value in metrics.items():
                        writer.add_scalar(f"val/{key}", value, result.step)
                if progress is not None:
                    progress({"step": result.step, "total": total, "epoch": result.epoch, "validation": metrics})
                if result.best is None or _better(metrics, result.best, config.model):
                    result.best = metrics
                    checkpoint("best.pt", 0)
            result.checkpoint = checkpoint("last.pt", 0)
    if rank == 0 and config.export:
        result.exported = _export(model, config, run_dir)
    if writer is not None:
        writer.close()
    return result


def _freeze_batch_norm(model: nn.Module) -> None:
    """Fine-tuning keeps BatchNorm statistics as trained: small batches would replace them with noise, and the
    U2-Net family's released weights have BatchNorm folded into the convolutions (an identity that batch
    statistics would break). The affine parameters still learn."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def _stop_everywhere(requested: bool, world: int, device: torch.device) -> bool:
    """Whether any process was asked to stop (all processes must stop at the same step)."""
    if world == 1:
        return requested
    flag = torch.tensor([1.0 if requested else 0.0], device=device)
    dist.all_reduce(flag)
    return bool(flag.item() > 0)


def _better(new: dict[str, float], old: dict[str, float], model: str) -> bool:
    """Lower MAE (saliency models), SAD (MODNet), or SAD in the trimap's unknown band (MNet: it only refines
    that band, what it predicts elsewhere is never used)."""
    key = "mae" if "mae" in new else "sad_unknown" if model == "mnet" and "sad_unknown" in new else "sad"
    return new[key] < old.get(key, float("inf"))


@torch.no_grad()
def validate(model: nn.Module, config: TrainConfig, dataset: Dataset, device: torch.device) -> dict[str, float]:
    """Validation metrics: MAE, max F, S-measure, IoU for saliency models; SAD, MSE, gradient error for matting."""
    was_training = model.training
    model.eval()
    predictions, truths, trimaps = [], [], []
    for batch in DataLoader(dataset, batch_size=config.batch_size, num_workers=0):
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        alpha = predict_alpha(model, config.model, batch).float().cpu()
        for i in range(alpha.shape[0]):
            predictions.append((alpha[i, 0].numpy() * 255).round().astype(np.uint8))
            truths.append((batch["mask"][i, 0].cpu().numpy() * 255).round().astype(np.uint8))
            if "trimap" in batch:
                trimaps.append(batch["trimap"][i, 0].cpu().numpy())
    model.train(was_training)
    if config.model in ("u2net", "u2netp"):
        return saliency_metrics(predictions, truths)
    return _mean_matting(predictions, truths, trimaps)


def _mean_matting(
    predictions: list[np.ndarray], truths: list[np.ndarray], trimaps: list[np.ndarray]
) -> dict[str, float]:
    rows = [
        matting_metrics(p / 255.0, t / 255.0, trimaps[i] if trimaps else None)
        for i, (p, t) in enumerate(zip(predictions, truths, strict=True))
    ]
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]} if rows else {}


def _tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _export(model: nn.Module, config: TrainConfig, run_dir: Path) -> Path:
    from train.export import export_model

    best = run_dir / "best.pt"
    if best.is_file():
        model.load_state_dict(load_checkpoint(best)["model"])
    return export_model(
        model,
        config.run_name,
        config.model,
        config.export_dir,
        num_classes=config.num_classes,
        input_size=config.size if config.model in ("u2net", "u2netp") else None,
        notes=config.to_dict(),
    )
