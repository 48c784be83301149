"""A discrete-event simulation of serving, driven by a cost model measured on the machine.

Long sweeps (many rates, long traces, Mixtral-scale models) cannot all be run for real. The
simulation is :func:`serve` itself with an engine that computes nothing: a
:class:`SimulatedEngine` answers every switch and generation with the time a
:class:`CostModel` predicts, so queueing, scheduling, rejections and the metrics are exactly the
real loop's. The cost model is calibrated by timing an engine's primitives on the machine at
hand (:func:`calibrate`): prefill as a linear function of the prompt length, a time per decoded
token, and the time of a tenant switch.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labcore.checks import check_int
from moelab.serving._decode import Generation
from moelab.serving._engines import Engine

__all__ = ["CostModel", "SimulatedEngine", "calibrate"]


@dataclass(frozen=True)
class CostModel:
    """Predicted times of an engine's primitives, in seconds.

    Parameters
    ----------
    prefill_s : float
        Time to the first token, fixed part.
    prefill_per_token_s : float
        Time to the first token, per prompt token.
    decode_per_token_s : float
        Time per generated token after the first.
    switch_s : float
        Time of a tenant switch (0 for an engine that never switches).

    Raises
    ------
    TypeError
        A time that is not a number.
    ValueError
        A negative or non-finite time.
    """

    prefill_s: float
    prefill_per_token_s: float
    decode_per_token_s: float
    switch_s: float

    def __post_init__(self) -> None:
        for name in ("prefill_s", "prefill_per_token_s", "decode_per_token_s", "switch_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise TypeError(f"{name} must be a number of seconds, got {value!r}")
            if not np.isfinite(value) or value < 0:
                raise ValueError(
                    f"{name} must be a finite, non-negative number of seconds, got {value}"
                )

    def generation(self, prompt_tokens: int, new_tokens: int) -> tuple[float, float]:
        """``(first_token_s, total_s)`` predicted for one request."""
        first = self.prefill_s + self.prefill_per_token_s * prompt_tokens
        return first, first + self.decode_per_token_s * (new_tokens - 1)


class SimulatedEngine(Engine):
    """An engine that takes the time its cost model predicts and computes nothing.

    Parameters
    ----------
    cost : CostModel
        The times.
    tenants : sequence of str
        Tenants it accepts.
    max_context : int
        Prompt plus new tokens allowed.
    name : str, default "simulated"
        For tables (e.g. the name of the engine it models).
    reconfigures : bool, default True
        False models a :class:`SingleEngine`: one model serves every tenant, so nothing is
        switched and no request counts as a reconfiguration.
    active : str, optional
        The tenant the modelled engine starts configured for (a freshly built
        :class:`ConsolidatedEngine` starts on its first tenant); by default none, so the first
        request pays a switch.
    """

    def __init__(
        self,
        cost: CostModel,
        tenants: Sequence[str],
        max_context: int,
        name: str = "simulated",
        *,
        reconfigures: bool = True,
        active: str | None = None,
    ) -> None:
        if isinstance(tenants, str):
            raise TypeError(f"tenants must be a sequence of names, got the string {tenants!r}")
        self.cost, self.name, self.reconfigures = cost, name, bool(reconfigures)
        self.tenants = tuple(tenants)
        self.max_context = check_int(max_context, "max_context", minimum=2)
        if active is not None and active not in self.tenants:
            raise ValueError(f"active {active!r} is not one of the tenants {self.tenants}")
        self.active: str | None = active if reconfigures else None

    def switch(self, tenant: str) -> float:
        if tenant == self.active or not self.reconfigures:
            return 0.0
        self.active = tenant
        return self.cost.switch_s

    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int) -> Generation:
        first, total = self.cost.generation(len(prompt_ids), max_new_tokens)
        return Generation((0,) * max_new_tokens, first, total)


def calibrate(
    engine: Engine,
    prompts: Sequence[Sequence[int]],
    new_tokens: int = 8,
    repeats: int = 3,
) -> CostModel:
    """Time an engine's primitives and fit a :class:`CostModel` to them.

    Every prompt is generated ``repeats`` times, the tenants taking turns as they do while
    serving: the mean first-token times are fitted by least squares against the prompt lengths,
    the later tokens give the mean time per token, and the switches between them the mean
    switch time.

    Parameters
    ----------
    engine : Engine
        The engine to model (its first two tenants are used).
    prompts : sequence of token-id sequences
        Prompts of several lengths (two distinct lengths at least, for the prefill slope).
    new_tokens : int, default 8
        Tokens generated per timing (at least 2).
    repeats : int, default 3
        Timings per prompt and per switch.

    Returns
    -------
    CostModel

    Raises
    ------
    ValueError
        Fewer than two distinct prompt lengths, or ``new_tokens < 2``.
    """
    check_int(new_tokens, "new_tokens", minimum=2)
    check_int(repeats, "repeats", minimum=1)
    lengths = [len(p) for p in prompts]
    if len(set(lengths)) < 2:
        raise ValueError(f"calibration needs prompts of two lengths at least, got {lengths}")
    engine.switch(engine.tenants[0])
    engine.generate(prompts[0], new_tokens)  # warm-up: lazy initialisation, caches
    firsts: dict[int, list[float]] = {i: [] for i in range(len(prompts))}
    per_token, switches = [], []
    for r in range(repeats):
        for i, prompt in enumerate(prompts):
            # Tenants take turns, as they do while serving (caches see every tenant's weights);
            # the switches between generations are the ones serving pays.
            tenant = engine.tenants[(r + i) % len(engine.tenants)]
            if tenant != engine.active:
                switches.append(engine.switch(tenant))
            run = engine.generate(prompt, new_tokens)
            firsts[i].append(run.first_token_s)
            per_token.append((run.total_s - run.first_token_s) / (len(run.tokens) - 1))
    # Means, not medians: a turnaround is a sum of such times.
    mean_firsts = [statistics.mean(firsts[i]) for i in range(len(prompts))]
    slope, intercept = np.polyfit(np.array(lengths, float), np.array(mean_firsts), 1)
    return CostModel(
        prefill_s=max(float(intercept), 0.0),
        prefill_per_token_s=max(float(slope), 0.0),
        decode_per_token_s=statistics.mean(per_token),
        switch_s=statistics.mean(switches) if switches else 0.0,
    )
