"""The optimisation loop shared by every zoo recipe: AdamW, warm-up + cosine, clipped gradients."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator

import torch
from torch import nn

__all__ = [
    "TRAIN_JOBS_ENV",
    "TRAIN_THREADS",
    "TRAIN_THREADS_ENV",
    "seeded",
    "train_jobs",
    "train_steps",
    "train_threads",
    "training_threads",
]

#: Intra-op threads of each training job. The zoo's models are so small that one thread per job
#: and one job per core (see :func:`train_jobs`) trains about 1.4x faster than two threads on
#: one job, whose OpenMP barriers also stall whenever the machine is busy. The thread count
#: changes the float reduction order, hence the bytes of a build: it is part of the cache key.
TRAIN_THREADS = 1
#: Overrides :data:`TRAIN_THREADS`.
TRAIN_THREADS_ENV = "MOELAB_TRAIN_THREADS"
#: Overrides the number of training jobs run in parallel (default: one per core, at most two).
#: Unlike the thread count it does not change a single byte of the build.
TRAIN_JOBS_ENV = "MOELAB_TRAIN_JOBS"
_MAX_DEFAULT_JOBS = 2


def _positive_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


def train_threads() -> int:
    """Intra-op threads per training job: ``$MOELAB_TRAIN_THREADS``, else :data:`TRAIN_THREADS`.

    Raises
    ------
    ValueError
        If the variable is set to anything but a positive integer.
    """
    return _positive_env(TRAIN_THREADS_ENV, TRAIN_THREADS)


def train_jobs() -> int:
    """Training jobs run at once: ``$MOELAB_TRAIN_JOBS``, else one per core (at most two).

    Raises
    ------
    ValueError
        If the variable is set to anything but a positive integer.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    default = max(1, min(_MAX_DEFAULT_JOBS, (cores or 1) // train_threads()))
    return _positive_env(TRAIN_JOBS_ENV, default)


Batch = dict[str, torch.Tensor]
# (model, batch) -> (objective to minimise, language-model part of it for the curve)
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, torch.Tensor]]


@contextlib.contextmanager
def training_threads(n: int | None = None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (default :func:`train_threads`), then
    restore the previous count.
    """
    n = train_threads() if n is None else n
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def seeded(*keys: int) -> torch.Generator:
    """CPU generator seeded from a tuple of integers (e.g. ``(seed, phase)``)."""
    seed = 0
    for key in keys:
        seed = (seed * 1_000_003 + int(key)) % 2**63
    return torch.Generator().manual_seed(seed)


def _schedule(warmup: int, total: int, floor: float = 0.1) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train_steps(
    model: nn.Module,
    batches: Callable[[int], Batch],
    loss_fn: LossFn,
    *,
    steps: int,
    lr: float,
    warmup_steps: int,
    on_step: Callable[[float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place for ``steps`` AdamW steps and return the LM loss of each step.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place, left in eval mode.
    batches : callable
        ``batches(step)`` returns the keyword arguments of one forward pass.
    loss_fn : callable
        ``loss_fn(model, batch)`` returns ``(objective, lm_loss)``.
    steps, lr, warmup_steps
        Schedule: linear warm-up to ``lr``, cosine decay to ``lr / 10``.
    on_step : callable, optional
        Called with each step's LM loss (drives the progress bar).

    Returns
    -------
    list of float
        LM loss per step (without router losses), rounded to 5 decimals.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(warmup_steps, steps))
    model.train()
    curve: list[float] = []
    for step in range(steps):
        objective, lm_loss = loss_fn(model, batches(step))
        objective.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        value = round(float(lm_loss), 5)
        if not math.isfinite(value):
            raise FloatingPointError(
                f"training diverged at step {step} (loss {value}); lower the learning rate"
            )
        curve.append(value)
        if on_step is not None:
            on_step(value)
    model.eval()
    return curve
