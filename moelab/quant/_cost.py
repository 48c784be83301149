"""Predicting decode speed of a precision plan from primitives measured on the machine at hand.

A decode token at batch 1 runs the non-expert layers once and, in every MoE layer, the experts
the router picks. An expert on the GPU costs the time of its routed matmuls at its precision;
one in host memory costs a copy of its weights into a cache row first and then its matmul at its
precision (a use that finds the expert still in a row, because the previous token picked it too,
costs no copy), or its matmul run on the CPU, or its matmul reading the weights in place across
the host bus (timed as such). The rest of the step costs what it costs as the plan
runs it: as one captured graph when every expert is on the GPU or read in place, eagerly when
experts are copied in or computed on the CPU (choosing them reads the routing on the host),
which on a GPU is several times slower in launches alone.
:func:`measure_decode_cost` times those primitives on the model's device, the step through
:class:`moelab.serving.StaticDecoder` both ways; :meth:`DecodeCost.tokens_per_s` weighs them by
how often the router picks each expert.
"""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import torch

__all__ = ["DecodeCost", "expected_copy_traffic", "measure_decode_cost"]


@dataclass(frozen=True)
class DecodeCost:
    """Seconds of a decode step's parts at batch 1.

    Attributes
    ----------
    non_expert_s : float
        Everything but the experts, per token, as a captured graph runs it (plans with every
        expert on the GPU).
    expert_s : dict of int or None to float
        One routed expert's matmuls (gate-up and down) on the GPU, by bits (None: as stored).
    copy_bytes_per_s : float
        Host-to-device bandwidth, for experts copied in on use.
    non_expert_eager_s : float, optional
        The same run eagerly (plans with CPU experts); None: ``non_expert_s``.
    host_expert_s : float, optional
        One use of a full-precision expert computed on the CPU, as the computing path runs it
        inside an eager decode step (the routing read on the host, the inputs and outputs
        moved; plans with ``host="compute"``).
    stream_expert_s : dict of int or None to float, optional
        One expert's matmuls on the GPU reading its weights in place from host memory, by bits
        (plans with ``host="stream"``).
    copy_use_s : dict of int or None to float, optional
        One use of an expert copied in from host memory, as the copying path runs it (the
        routing read on the host, the copy into a cache row, every use a miss, and the
        matmul), by bits (plans with ``host="copy"``); None: the copy at
        ``copy_bytes_per_s`` plus the matmul.
    copy_hit_s : dict of int or None to float, optional
        One use of a copied-in expert that is still in its cache row, as the copying path runs
        it (no copy), by bits. With it, the uses that ``shares`` says repeat the previous
        token's (``repeat_share``) cost this instead of ``copy_use_s`` (a layer uses the experts
        in its rows before it copies others in, so they always hit at batch 1); older experts
        still in a row are not counted, so the prediction errs slow where a layer keeps few
        experts in host memory. None: every use a miss.
    """

    non_expert_s: float
    expert_s: dict[int | None, float]
    copy_bytes_per_s: float
    non_expert_eager_s: float | None = None
    host_expert_s: float | None = None
    stream_expert_s: dict[int | None, float] | None = None
    copy_use_s: dict[int | None, float] | None = None
    copy_hit_s: dict[int | None, float] | None = None

    def __post_init__(self) -> None:
        if self.copy_hit_s is not None and self.copy_use_s is None:
            raise ValueError(
                "copy_hit_s needs copy_use_s: a hit and a miss are timed on the same copying "
                "path (measure_decode_cost times both)"
            )

    def token_s(self, plan: Any, shares: pd.DataFrame) -> float:
        """Predicted seconds per decode token of ``plan``.

        Parameters
        ----------
        plan : PrecisionPlan
        shares : pandas.DataFrame
            ``layer``, ``expert``, ``share`` (e.g. :func:`~moelab.quant.expert_scores` or
            :func:`~moelab.routing.routing_counts`): the expected uses of each expert per token;
            optionally ``repeat_share`` (:func:`~moelab.routing.routing_counts`): the uses per
            token that follow a use by the previous token, which find a copied-in expert still
            in its row.
        """
        modes = [plan.host_mode(i) for i in range(len(plan.slots))]
        self._check(plan, modes, shares)
        eager = not plan.graph_safe and self.non_expert_eager_s is not None
        total = self.non_expert_eager_s if eager else self.non_expert_s
        for (uses, hits), bits, mode in zip(_uses_and_hits(plan, modes, shares), plan.bits, modes):
            if self.copy_hit_s is None:
                hits = 0.0  # every use a miss
            elif hits:
                total += hits * self.copy_hit_s[bits]
            total += (uses - hits) * self._expert_use_s(plan, bits, mode)
        return total

    def _check(self, plan: Any, modes: list[str], shares: pd.DataFrame) -> None:
        """Raise ValueError where this cost has no time for a part ``plan`` runs, or ``shares``
        is not a table of routing shares.
        """
        if self.host_expert_s is None and "compute" in modes:
            raise ValueError(
                "the plan computes CPU experts on the CPU and this cost has no time for that: "
                "measure it (measure_decode_cost)"
            )
        if self.stream_expert_s is None and "stream" in modes:
            raise ValueError(
                "the plan reads CPU experts in place and this cost has no time for that: "
                "measure it (measure_decode_cost)"
            )
        timed = [("expert", self.expert_s, set(plan.bits))]
        for what, times, mode in (
            ("read-in-place", self.stream_expert_s, "stream"),
            ("copy", self.copy_use_s, "copy"),
            ("copy hit", self.copy_hit_s, "copy"),
        ):
            if times is not None:
                timed.append((what, times, {b for b, m in zip(plan.bits, modes) if m == mode}))
        for what, times, used in timed:
            missing = used - set(times)
            if missing:
                raise ValueError(
                    f"this cost has {what} times for bits {sorted(times, key=str)}, the plan "
                    f"also uses {sorted(missing, key=str)}: measure them (measure_decode_cost)"
                )
        if not {"layer", "expert", "share"} <= set(getattr(shares, "columns", ())):
            raise ValueError(
                "shares must be a DataFrame with columns layer, expert and share (e.g. "
                "moelab.routing.routing_counts)"
            )
        if "repeat_share" in shares and not (shares["repeat_share"] >= 0).all():
            raise ValueError(
                "shares' repeat_share must be numbers >= 0 (routing_counts gives them); got "
                f"{shares['repeat_share'][~(shares['repeat_share'] >= 0)].tolist()[:3]}"
            )

    def _expert_use_s(self, plan: Any, bits: int | None, mode: str | None) -> float:
        """Seconds of one use of an expert at ``bits`` that lives where ``mode`` says."""
        if mode == "compute":
            return self.host_expert_s
        if mode == "stream":
            return self.stream_expert_s[bits]
        if mode == "copy" and self.copy_use_s is not None:
            return self.copy_use_s[bits]
        if mode == "copy":  # copied into a row of its precision first
            row = plan.row_bytes if bits is None else plan.quantized_row_bytes
            return row / self.copy_bytes_per_s + self.expert_s[bits]
        return self.expert_s[bits]

    def choose_host_modes(self, plan: Any, shares: pd.DataFrame) -> Any:
        """Per CPU expert of a ``host="stream"`` plan, read it in place or compute it on the CPU,
        whichever this cost predicts faster.

        Computing any expert on the CPU reads the routing on the host, so the whole step then
        runs eagerly: the per-expert choice is weighed as a whole against reading every CPU
        expert in place inside one captured graph, and the faster plan is returned.

        Parameters
        ----------
        plan : PrecisionPlan
            Made with ``host="stream"`` (no cache rows).
        shares : pandas.DataFrame
            ``layer``, ``expert``, ``share``: the expected uses of each expert per token.

        Returns
        -------
        PrecisionPlan
            ``plan`` with ``host="auto"`` and its ``host_modes``.

        Raises
        ------
        ValueError
            A plan made with another ``host``.
        """
        if plan.host != "stream":
            raise ValueError(
                f"choose_host_modes takes a plan made with host='stream', got host={plan.host!r}"
            )
        if self.stream_expert_s is None:
            raise ValueError(
                "this cost has no time for experts read in place: measure it (measure_decode_cost)"
            )

        def mode(bits: int | None, device: str) -> str:
            if device == "gpu":
                return ""
            # Only full-precision experts are computed on the CPU (the 4-bit kernel is the GPU's).
            computed = bits is None and self.host_expert_s is not None
            return (
                "compute"
                if computed and self.host_expert_s < self.stream_expert_s[bits]
                else "stream"
            )

        per_expert = tuple(mode(b, d) for b, d in zip(plan.bits, plan.device))
        all_streamed = tuple("" if d == "gpu" else "stream" for d in plan.device)
        plans = [replace(plan, host="auto", host_modes=m) for m in (all_streamed, per_expert)]
        return min(plans, key=lambda p: self.token_s(p, shares))

    def tokens_per_s(self, plan: Any, shares: pd.DataFrame) -> float:
        """Predicted decode tokens per second of ``plan``."""
        return 1.0 / self.token_s(plan, shares)


def expected_copy_traffic(plan: Any, shares: pd.DataFrame) -> dict[str, float]:
    """Per decode token, the uses of a plan's copied-in experts that ``shares`` predicts, and the
    copies among them: the uses that do not repeat the previous token's.

    The counterpart of :meth:`moelab.experts.MixedExperts.copy_traffic`, which counts them.
    Older experts still in a row are not counted as hits, so ``copies_per_token`` is an upper
    bound at batch 1.

    Parameters
    ----------
    plan : PrecisionPlan
    shares : pandas.DataFrame
        ``layer``, ``expert``, ``share`` and ``repeat_share``
        (:func:`~moelab.routing.routing_counts`).

    Returns
    -------
    dict
        ``uses_per_token`` and ``copies_per_token``.
    """
    if "repeat_share" not in getattr(shares, "columns", ()):
        raise ValueError("shares need a repeat_share column (moelab.routing.routing_counts)")
    modes = [plan.host_mode(i) for i in range(len(plan.slots))]
    copied = [
        (uses, hits)
        for (uses, hits), mode in zip(_uses_and_hits(plan, modes, shares), modes)
        if mode == "copy"
    ]
    return {
        "uses_per_token": sum(uses for uses, _ in copied),
        "copies_per_token": sum(uses - hits for uses, hits in copied),
    }


def _uses_and_hits(plan: Any, modes: list[str], shares: pd.DataFrame) -> list[tuple[float, float]]:
    """Per slot of ``plan``, its expected uses per token and, for a copied-in expert, those that
    repeat the previous token's: a layer uses the experts in its rows before it copies others
    in, so at batch 1 they hit.
    """
    indexed = shares.set_index(["layer", "expert"])
    share = indexed["share"]
    repeat = indexed["repeat_share"] if "repeat_share" in indexed else None
    out = []
    for slot, mode in zip(plan.slots, modes):
        key = (slot.layer, slot.expert)
        uses = float(share.get(key, 0.0))
        hits = 0.0
        if mode == "copy" and repeat is not None:
            hits = min(float(repeat.get(key, 0.0)), uses)
        out.append((uses, hits))
    return out


def _seconds(fn: Any, device: torch.device, repeats: int) -> float:
    """Seconds per call of ``fn`` run back to back (launches overlap GPU work, as in a graph)."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()  # warms up
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def _kernel_seconds(fn: Any, device: torch.device, repeats: int) -> float:
    """Seconds per call of ``fn``'s kernels as a decode step replays them: on CUDA inside a
    captured graph (a 4-bit expert's matmul is short enough that timing it eagerly measures its
    launch: 64 to 108 us an expert across runs, for about 45 us of kernel time); the median of
    three timings.
    """
    run = fn
    if device.type == "cuda":
        fn()
        torch.cuda.synchronize(device)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                fn()
            run = graph.replay
        except RuntimeError:  # not capturable here: time the launches as they come
            run = fn
    return statistics.median(_seconds(run, device, repeats) for _ in range(3))


def _step_seconds(model: Any, graphs: bool, tokens: int = 16) -> float:
    """Seconds per decode token at batch 1 through a static cache (captured graphs or not)."""
    from moelab.serving import StaticDecoder

    decoder = StaticDecoder(model, 4 + tokens, graphs=graphs)
    decoder.generate([1] * 4, 4)  # warms up (and captures)
    runs = [decoder.generate([1] * 4, tokens) for _ in range(3)]
    return statistics.median((r.total_s - r.first_token_s) / (tokens - 1) for r in runs)


def _host_use_seconds(
    up: torch.Tensor,
    down: torch.Tensor,
    x: torch.Tensor,
    h: torch.Tensor,
    group_size: int,
    repeats: int,
) -> tuple[dict[int | None, float], dict[int | None, float], float]:
    """Seconds per use of a host expert as the paths that read the routing on the host run it
    (eagerly): one layer with every expert in host memory and a token's worth of cache rows,
    called with two sets of experts in turn so that every use misses the rows, and with one set
    so that every use hits them; copied in (full precision and 4 bits) and computed on the CPU
    (full precision).

    Returns
    -------
    tuple
        Copied uses that miss, by bits; copied uses that hit, by bits; computed uses.
    """
    from moelab.experts import MixedExperts, routed_linear_mixed

    k, n_experts, device = x.shape[0], up.shape[0], up.device
    sets = [torch.arange(k, device=device) + i * k for i in range(2 if n_experts >= 2 * k else 1)]
    every, pin = list(range(n_experts)), device.type == "cuda"

    def per_use(hit: bool = False, **pools: Any) -> float:
        # Page-locked as plans store them: copied-in experts are, computed ones are not.
        locked = pin and not pools.get("host_compute", False)
        layer = [MixedExperts.build(w, group_size, pin=locked, **pools) for w in (up, down)]
        turn = itertools.cycle(sets[:1] if hit else sets)

        def step() -> None:
            ids = next(turn)
            routed_linear_mixed(x, layer[0], ids)
            routed_linear_mixed(h, layer[1], ids)

        return _seconds(step, device, repeats) / k

    copied, kept = (
        {
            None: per_use(hit, host=every, rows=k),
            4: per_use(hit, host_int4=every, int4_rows=k),
        }
        for hit in (False, True)
    )
    return copied, kept, per_use(host=every, host_compute=True)


def _computed_use_in_step_seconds(
    model: Any, group_size: int, expert_s: float, eager_s: float, n_layers: int = 4
) -> float:
    """Seconds per use of a full-precision expert computed on the CPU inside an eager decode step.

    On the routed path (where plans run such experts), the step with the last ``n_layers``
    layers' experts all computed on the CPU, less the step as stored (``eager_s``, timed on the
    routed path again where the model was on another), per use those layers take
    (every routed expert of theirs, ``k`` a token), plus the GPU matmul (``expert_s``) each such
    use no longer runs. Called back to back on one layer, a use costs less than inside a step,
    where the host's CPU also launches the rest of the step: plans that compute experts on the
    CPU decoded slower than that predicted, by a median of 7 % and up to 28 % on an H200 host;
    timed in the step, their predictions came out 0.84 to 1.08 times their measured speed.
    The model is restored as it was.
    """
    from moelab.experts import FUSED_MATRICES, ROUTED, MixedExperts, use_routed_experts
    from moelab.families import detect_family

    family = detect_family(model)
    config = family.check_config(model)
    layers = family.num_moe_layers(config)
    chosen = range(max(layers - n_layers, 0), layers)
    previous = getattr(model.config, "_experts_implementation", ROUTED)
    use_routed_experts(model)
    swapped = []
    try:
        as_stored = eager_s if previous == ROUTED else _step_seconds(model, graphs=False)
        for layer in chosen:
            experts = family.moe_block(model, layer).experts
            for name in FUSED_MATRICES:
                weight = experts._parameters[name]
                every = list(range(weight.shape[0]))
                computed = MixedExperts.build(
                    weight.detach(), group_size, host=every, host_compute=True, pin=False
                )
                del experts._parameters[name]
                swapped.append((experts, name, weight))
                setattr(experts, name, computed)
        with_host = _step_seconds(model, graphs=False)
    finally:
        for experts, name, weight in swapped:
            delattr(experts, name)
            experts.register_parameter(name, weight)
        if previous != ROUTED:
            model.set_experts_implementation(previous)
    uses = len(chosen) * family.experts_per_token(config)
    return (with_host - as_stored) / uses + expert_s


def measure_decode_cost(
    model: Any, bits: int = 4, group_size: int = 64, repeats: int = 20
) -> DecodeCost:
    """Time a decode step's primitives on the model's device.

    Parameters
    ----------
    model : PreTrainedModel
        A fused-experts model (Mixtral, OLMoE) with every expert at full precision and on its
        device (the step's expert time is subtracted from the whole step's), with the experts
        implementation it will decode with (e.g. after
        :func:`~moelab.experts.use_routed_experts`).
    bits : {4}, default 4
        The quantized precision timed beside the stored one: the routed kernel's; no other
        width has a kernel to time.
    group_size : int, default 64
    repeats : int, default 20
        Calls per primitive, timed back to back (the mean).

    Returns
    -------
    DecodeCost

    Raises
    ------
    ValueError
        Bits other than 4.
    """
    if bits != 4:
        raise ValueError(f"only 4-bit experts have a routed kernel to time, not {bits}-bit ones")
    from moelab.experts import MixedExperts, routed_linear_pool
    from moelab.families import detect_family

    family = detect_family(model)
    config = family.check_config(model)
    k, layers = family.experts_per_token(config), family.num_moe_layers(config)
    device = next(model.parameters()).device
    experts = family.moe_block(model, 0).experts
    up, down = experts.gate_up_proj.detach(), experts.down_proj.detach()
    # One layer's step: k distinct experts in one call per matrix, as a token routes; per
    # expert, the calls' fixed costs are shared as they are when decoding.
    x = torch.randn(k, up.shape[-1], dtype=up.dtype, device=device)
    h = torch.randn(k, down.shape[-1], dtype=up.dtype, device=device)
    with torch.no_grad():
        rows, first = torch.arange(k, device=device), list(range(k))

        def layer(**pools: Any) -> list[MixedExperts]:  # the first k experts, stored so
            return [MixedExperts.build(w[rows], group_size, **pools) for w in (up, down)]

        def per_expert(gate_up: Any, down_proj: Any) -> float:
            def step() -> None:
                routed_linear_pool(x, gate_up, rows)
                routed_linear_pool(h, down_proj, rows)

            return _kernel_seconds(step, device, repeats) / k

        full = per_expert(up, down)
        small = per_expert(*(p.int4 for p in layer(quantized=first)))
        # The same matmuls with the weights read in place from host memory (host="stream").
        stream = {
            None: per_expert(*(p.streamed for p in layer(streamed=first))),
            bits: per_expert(*(p.streamed_int4 for p in layer(streamed_int4=first))),
        }
        copy_use, copy_hit, host_alone = _host_use_seconds(up, down, x, h, group_size, repeats)
        # A whole decode step with every expert as stored, less its experts: the rest, run as a
        # captured graph (on CUDA) and eagerly.
        cuda = device.type == "cuda"
        graphed = _step_seconds(model, graphs=cuda)
        eager = _step_seconds(model, graphs=False) if cuda else graphed
        # A use costs at least its time alone; the step's timing, less noise, says how much more.
        in_step = _computed_use_in_step_seconds(model, group_size, full, eager)
        host_expert = max(in_step, host_alone)
    experts = k * layers * full
    host = torch.empty(up[0].numel() + down[0].numel(), dtype=up.dtype)
    if device.type == "cuda":
        host = host.pin_memory()
    target = torch.empty_like(host, device=device)
    copy = _seconds(lambda: target.copy_(host, non_blocking=True), device, repeats)
    nbytes = host.numel() * host.element_size()
    return DecodeCost(
        max(graphed - experts, 0.0),
        {None: full, bits: small},
        nbytes / max(copy, 1e-9),
        max(eager - experts, 0.0),
        host_expert,
        stream,
        copy_use,
        copy_hit,
    )
