"""The optimisation loop shared by every zoo recipe: AdamW, warm-up + cosine, clipped gradients."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator

import torch
from torch import nn

__all__ = [
    "TRAIN_THREADS",
    "TRAIN_THREADS_ENV",
    "seeded",
    "train_steps",
    "train_threads",
    "training_threads",
]

#: Intra-op threads while training: fixed rather than "all cores", so a build behaves the same
#: on every machine. The zoo's budget (both zoos in under 5 minutes) is set for 2 cores.
TRAIN_THREADS = 2
#: Overrides :data:`TRAIN_THREADS`. On an oversubscribed machine one thread can be several
#: times faster than two, whose OpenMP barriers wait for a descheduled peer.
TRAIN_THREADS_ENV = "MOELAB_TRAIN_THREADS"


def train_threads() -> int:
    """Thread count for training: ``$MOELAB_TRAIN_THREADS`` if set, else :data:`TRAIN_THREADS`.

    Raises
    ------
    ValueError
        If the variable is set to anything but a positive integer.
    """
    raw = os.environ.get(TRAIN_THREADS_ENV, "").strip()
    if not raw:
        return TRAIN_THREADS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{TRAIN_THREADS_ENV} must be a positive integer, got {raw!r}")
    return int(raw)


Batch = dict[str, torch.Tensor]
# (model, batch) -> (objective to minimise, language-model part of it for the curve)
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, torch.Tensor]]


@contextlib.contextmanager
def training_threads(n: int | None = None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (default :func:`train_threads`), then
    restore the previous count."""
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
