"""One forward captured as a CUDA graph, replayed after a tenant switch.

Reconfiguration changes no address a forward reads (see :mod:`moelab.reconfigure`), so a graph
captured while a tenant is active replays that tenant's forward after any other tenant was
active in between (``"swap"``: one graph per tenant), and in ``"copy"`` mode one graph serves
every tenant.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["CapturedForward"]


class CapturedForward:
    """A CUDA graph of ``forward()``, warmed up on a side stream first (torch's recipe).

    Parameters
    ----------
    forward : callable
        ``forward() -> Tensor``: one forward over static input tensors (captured by closure);
        it returns the output tensor the graph writes on every replay.
    warmup : int, default 3
        Eager calls on the side stream before capture (lazy initialisation, autotuning).
    same_stream : bool, default False
        Capture on the warm-up stream instead of the capture stream torch creates.
    guard : callable, optional
        Called before every replay; raises if the graph would read the wrong weights (see
        :meth:`ConsolidatedMoE.capture`, which sets it).

    Notes
    -----
    A forward that reads the routing on the host cannot be captured: a consolidated model with
    host-tier experts (placement ``"offload"``) is refused by :meth:`ConsolidatedMoE.capture`.
    transformers' ``grouped_mm`` experts path (its default) copies between host and device for
    float32 weights (torch 2.11), which capture refuses: capture bf16 or fp16 models.

    Give a causal model an explicit attention mask in ``forward``: transformers (5.17) builds
    one while a graph is captured but lets SDPA apply causality in eager mode, and the two
    kernels round differently (relative error 1.6e-2 on a Mixtral-shaped model in bf16); with
    the mask given, the replay equals the eager forward bit for bit
    (``benchmarks/gpu/consolidation_graphs.json``).

    Attributes
    ----------
    graph : torch.cuda.CUDAGraph
    output : Tensor
        Overwritten by every :meth:`replay`.

    Examples
    --------
    >>> mask = torch.ones(1, 1, 16, 16, dtype=torch.bool, device="cuda").tril()  # doctest: +SKIP
    >>> step = CapturedForward(lambda: model(input_ids=ids, attention_mask=mask).logits)  # doctest: +SKIP
    >>> step.replay()                                                            # doctest: +SKIP
    """

    def __init__(
        self,
        forward: Callable[[], torch.Tensor],
        *,
        warmup: int = 3,
        same_stream: bool = False,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self.guard = guard
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.no_grad():
            with torch.cuda.stream(stream):
                for _ in range(warmup):
                    forward()
            torch.cuda.current_stream().wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, stream=stream if same_stream else None):
                self.output = forward()
        torch.cuda.synchronize()

    def replay(self) -> torch.Tensor:
        """Run the graph and wait for it; the output is poisoned first, so every value is new.

        Returns
        -------
        Tensor
            :attr:`output`, rewritten.
        """
        if self.guard is not None:
            self.guard()
        if self.output.is_floating_point():
            self.output.fill_(float("nan"))
        self.graph.replay()
        torch.cuda.synchronize()
        return self.output
