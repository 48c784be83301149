"""Decoding with a static KV cache, and on CUDA one captured graph per decode step.

:func:`greedy_decode` grows a dynamic cache and launches every kernel of every token from
Python. Here the cache is allocated once (``StaticCache``, sized for the longest request) and
reset in place between requests, the decode step reads fixed input tensors (the last token and
its position), and on CUDA that step is captured once as a CUDA graph and replayed for every
token: one launch per token instead of hundreds. transformers' own modules run unchanged.

With a :class:`~moelab.reconfigure.ConsolidatedMoE`, the graph is captured through
:meth:`ConsolidatedMoE.capture`: one graph per tenant in ``"swap"`` mode (choosing the tenant's
graph is the switch), one graph for every tenant in ``"copy"`` mode; the expert pool is shared
by all graphs.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Hashable, Sequence

import torch
from torch import nn

from labcore.checks import check_int
from moelab.reconfigure import CapturedForward
from moelab.serving._decode import Generation

__all__ = ["StaticDecoder"]


class StaticDecoder:
    """Greedy decoding of one model with a static KV cache and, on CUDA, graph-captured steps.

    Parameters
    ----------
    model : PreTrainedModel
        A causal language model (the live model of a consolidated model works too).
    max_cache_len : int
        Prompt plus generated tokens of the longest request.
    graphs : bool, optional
        Capture the decode step as a CUDA graph; by default when the model is on CUDA and
        reads no routing on the host (:func:`~moelab.experts.reads_routing_on_host`).
    capture : callable, optional
        ``capture(step) -> CapturedForward`` (e.g. ``ConsolidatedMoE.capture``, which guards
        per-tenant graphs); plain :class:`~moelab.reconfigure.CapturedForward` by default.
    compile : bool, default False
        Compile the decode step with ``torch.compile`` (inductor fuses the small kernels
        around the matmuls) before it is captured; the first request pays the compile time.
    batch_size : int, default 1
        Prompts decoded together by :meth:`generate_batch` (one cache row each).

    Notes
    -----
    The step writes its token back into its own input and into a device buffer of the
    generated tokens, so decoding reads nothing back until the request is done: one host
    synchronisation for the first token (its time) and one for the tokens at the end.

    Raises
    ------
    ValueError
        For an encoder-decoder model, or ``graphs=True`` for a model that reads the routing on
        the host.
    """

    def __init__(
        self,
        model: nn.Module,
        max_cache_len: int,
        *,
        graphs: bool | None = None,
        capture: Callable[..., CapturedForward] | None = None,
        compile: bool = False,
        batch_size: int = 1,
    ) -> None:
        if getattr(model.config, "is_encoder_decoder", False):
            raise ValueError(f"{type(model).__name__} is an encoder-decoder; decode causal models")
        from transformers import StaticCache

        self.model, self.max_cache_len = model, check_int(max_cache_len, "max_cache_len", minimum=2)
        self.device = next(model.parameters()).device
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.cache = StaticCache(config=model.config, max_cache_len=max_cache_len)
        self.token = torch.zeros((batch_size, 1), dtype=torch.long, device=self.device)
        self.position = torch.zeros(1, dtype=torch.long, device=self.device)
        self.slot = torch.zeros(1, dtype=torch.long, device=self.device)
        self.generated = torch.zeros(
            (batch_size, max_cache_len), dtype=torch.long, device=self.device
        )
        from moelab.experts import reads_routing_on_host

        on_host = reads_routing_on_host(model)
        if graphs and on_host:
            raise ValueError(
                "this model reads the routing on the host (experts copied in or computed on "
                "the CPU), which a captured graph cannot: pass graphs=False, or plan its host "
                "experts with host='stream'"
            )
        self.use_graphs = self.device.type == "cuda" and not on_host if graphs is None else graphs
        self._capture = capture or CapturedForward
        self._run_step = (
            torch.compile(self._step, fullgraph=True, dynamic=False) if compile else self._step
        )
        self._graphs: dict[Hashable, CapturedForward] = {}
        # transformers renamed the cache argument (``past_key_values`` -> ``cache``, 5.2x).
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    def _forward(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        out = self.model(
            input_ids=ids, cache_position=positions, use_cache=True, **{self._cache_kw: self.cache}
        )
        return out.logits[:, -1].argmax(-1)

    def _step(self) -> torch.Tensor:
        # transformers' static layers keep their own write position (``cumulative_length``, a
        # tensor advanced in place by every update). Setting it from the step's position inside
        # the step keeps warm-up runs and graph replays from drifting past the cache's end.
        for layer in self.cache.layers:
            counter = getattr(layer, "cumulative_length", None)
            if isinstance(counter, torch.Tensor):
                counter.copy_(self.position.reshape(counter.shape))
        token = self._forward(self.token, self.position).view(-1, 1)
        self.token.copy_(token)  # the next step's input, without a trip to the host
        self.generated.index_copy_(1, self.slot, token)
        return token

    def generate(
        self, prompt_ids: Sequence[int], max_new_tokens: int, graph_key: Hashable = None
    ) -> Generation:
        """Prefill eagerly, then decode greedily through the (captured) step.

        Parameters
        ----------
        prompt_ids : sequence of int
            The prompt.
        max_new_tokens : int
            Tokens to generate.
        graph_key : hashable, optional
            Which captured graph to replay (e.g. the tenant, for per-tenant graphs); a key
            not seen before is captured on its first decode step.

        Returns
        -------
        Generation

        Raises
        ------
        ValueError
            If the prompt plus the new tokens do not fit the cache, or this decoder decodes
            batches (use :meth:`generate_batch`).
        """
        if self.batch_size != 1:
            raise ValueError(
                f"this decoder decodes batches of {self.batch_size}; call generate_batch"
            )
        return self.generate_batch([prompt_ids], max_new_tokens, graph_key)[0]

    def generate_batch(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int,
        graph_key: Hashable = None,
    ) -> list[Generation]:
        """Greedy-decode ``batch_size`` prompts of one length together.

        Parameters
        ----------
        prompts : sequence of token-id sequences
            ``batch_size`` prompts, all of one length.
        max_new_tokens : int
            Tokens to generate per prompt (at least 1).
        graph_key : hashable, optional
            As for :meth:`generate`.

        Returns
        -------
        list of Generation
            One per prompt; they share the first-token and total times.

        Raises
        ------
        ValueError
            Not ``batch_size`` prompts, prompts of different lengths, or more tokens than the
            cache holds.
        """
        check_int(max_new_tokens, "max_new_tokens", minimum=1)
        lengths = {len(p) for p in prompts}
        if len(prompts) != self.batch_size or len(lengths) != 1:
            raise ValueError(
                f"expected {self.batch_size} prompts of one length, got {len(prompts)} of lengths "
                f"{sorted(lengths)}"
            )
        length = lengths.pop()
        if length + max_new_tokens > self.max_cache_len:
            raise ValueError(
                f"prompt ({length}) + max_new_tokens ({max_new_tokens}) = "
                f"{length + max_new_tokens} tokens do not fit the static cache of "
                f"{self.max_cache_len}"
            )
        ids = torch.tensor([list(p) for p in prompts], device=self.device)
        positions = torch.arange(length, device=self.device)
        start = self._now()
        with torch.no_grad():
            self.cache.reset()
            token = self._forward(ids, positions).view(-1, 1)
            self.token.copy_(token)
            self.generated[:, :1] = token
            first = self._now()
            for step in range(1, max_new_tokens):
                self.position.fill_(length + step - 1)
                self.slot.fill_(step)
                self._decode(graph_key)
            rows = self.generated[:, :max_new_tokens].tolist()
        total = self._now() - start
        return [Generation(tuple(row), first - start, total) for row in rows]

    @property
    def captured_keys(self) -> frozenset[Hashable]:
        """Keys of the decode steps captured so far: a tenant per graph in ``"swap"`` mode,
        ``None`` for the one graph that serves every tenant; empty without graphs.
        """
        return frozenset(self._graphs)

    def _decode(self, key: Hashable) -> torch.Tensor:
        if not self.use_graphs:
            return self._run_step()
        graph = self._graphs.get(key)
        if graph is None:
            # The capture's warm-up runs advance the token: start the replay from this one.
            token = self.token.clone()
            graph = self._graphs[key] = self._capture(self._run_step)
            self.token.copy_(token)
        return graph.replay()

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()
