"""Serving engines: one interface, several ways of holding N tenants on one device.

``consolidated``
    A :class:`~moelab.reconfigure.ConsolidatedMoE`: shared experts, each tenant's non-expert set
    swapped in at run time (the serving paper).
``single``
    One model serves every request, whatever its tenant: the upper bound of throughput.
``swap``
    One whole model on the device; a request for another tenant copies that tenant's complete
    weights in from host memory first (no sharing, no partial reconfiguration).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from labcore.checks import check_type
from moelab.loading import load_moe
from moelab.reconfigure import (
    CapturedForward,
    ConsolidatedMoE,
    live_buffers,
    param_sites,
    staged_set,
    unique_parameters,
)
from moelab.serving._decode import Generation, greedy_decode
from moelab.serving._static import StaticDecoder

__all__ = ["ConsolidatedEngine", "Engine", "SingleEngine", "SwapEngine"]


def _context_length(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    return int(getattr(config, "max_position_embeddings", 0) or 1 << 30)


class Engine:
    """Serves requests of known tenants one at a time on one live model.

    Attributes
    ----------
    name : str
        The engine's kind, for tables.
    tenants : tuple of str
        The tenants it serves.
    active : str or None
        The tenant the live model is configured for.
    max_context : int
        Prompt plus generated tokens allowed per request.
    """

    name = "engine"

    def __init__(
        self,
        tenants: Sequence[str],
        model: nn.Module,
        static_cache: int | None = None,
        capture: Callable[..., CapturedForward] | None = None,
        compile: bool = False,
        graphs: bool | None = None,
    ) -> None:
        if isinstance(tenants, str):
            raise TypeError(f"tenants must be a sequence of names, got the string {tenants!r}")
        if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
            raise ValueError(
                f"the serving engines decode causal language models; {type(model).__name__} is an "
                f"encoder-decoder"
            )
        self.tenants = tuple(tenants)
        self._active: str | None = None
        self.vocab_size = int(getattr(getattr(model, "config", None), "vocab_size", 0) or 0)
        self.max_context = _context_length(model)
        self._model = model
        self.decoder = None
        if static_cache is not None:
            self.decoder = StaticDecoder(
                model, static_cache, graphs=graphs, capture=capture, compile=compile
            )
            self.max_context = min(self.max_context, static_cache)

    @property
    def active(self) -> str | None:
        """The tenant the live model is configured for (None before the first)."""
        return self._active

    @active.setter
    def active(self, tenant: str | None) -> None:
        self._active = tenant

    @property
    def device(self) -> torch.device:
        """Where the live model runs."""
        return next(self._model.parameters()).device

    def switch(self, tenant: str) -> float:
        """Configure the live model for ``tenant``; return the seconds it took (0 if active)."""
        if tenant == self.active:
            return 0.0
        start = time.perf_counter()
        self._configure(tenant)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.active = tenant
        return time.perf_counter() - start

    def _configure(self, tenant: str) -> None:
        """Bind the live model to ``tenant`` (nothing for an engine with one model)."""

    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int) -> Generation:
        """Greedy-decode one request with the active tenant.

        With ``static_cache`` set, through the :class:`StaticDecoder` (on CUDA: one captured
        graph per :meth:`graph_key`); else :func:`greedy_decode`.
        """
        if self.decoder is None:
            return greedy_decode(self._model, prompt_ids, max_new_tokens)
        return self.decoder.generate(prompt_ids, max_new_tokens, self.graph_key())

    def graph_key(self) -> Hashable:
        """Which captured decode graph serves the active tenant (one for all by default)."""
        return None

    def warmup(self, prompt_ids: Sequence[int] = (1, 2, 3, 4), new_tokens: int = 3) -> float:
        """Serve one short request per tenant before the clock starts; return the seconds spent.

        With a static cache on CUDA this captures (and, with ``compile``, compiles) every decode
        graph the tenants need, so the first real requests do not pay for it; elsewhere it
        warms the kernels and caches. The engine ends on its first tenant.
        """
        if not self.tenants:
            raise ValueError("this engine serves no tenants: nothing to warm up")
        start = time.perf_counter()
        for tenant in (*self.tenants, self.tenants[0]):
            self.switch(tenant)
            self.generate(prompt_ids, new_tokens)
        return time.perf_counter() - start


class ConsolidatedEngine(Engine):
    """N tenants over one consolidated model (shared experts, partial reconfiguration).

    Parameters
    ----------
    model : ConsolidatedMoE
        Built with :meth:`ConsolidatedMoE.from_plan`.
    static_cache : int, optional
        Decode with a static KV cache of this many tokens (:class:`StaticDecoder`; on CUDA
        with captured graphs: one per tenant in ``"swap"`` mode, one for all in ``"copy"``;
        without graphs when experts are copied in from host memory on use, since those copies
        follow the routing read on the host).
    compile : bool, default False
        Compile the decode step (see :class:`StaticDecoder`).
    """

    name = "consolidated"

    def __init__(
        self, model: ConsolidatedMoE, static_cache: int | None = None, compile: bool = False
    ) -> None:
        check_type(model, ConsolidatedMoE, "model")
        if compile and model.copies_experts_on_use:
            raise ValueError(
                "a model that copies host-tier experts in on use reads the routing on the host "
                "and cannot be compiled whole; pass compile=False, or plan it with "
                "placement='resident'"
            )
        self.consolidated = model
        super().__init__(
            model.tenants,
            model.model,
            static_cache,
            capture=model.capture,
            compile=compile,
            graphs=False if model.copies_experts_on_use else None,
        )

    @property
    def active(self) -> str | None:
        """The consolidated model's own active tenant (whoever activated it)."""
        return self.consolidated.active

    @active.setter
    def active(self, tenant: str | None) -> None:
        pass  # ConsolidatedMoE.activate sets it

    def graph_key(self) -> Hashable:
        shared = self.consolidated.mode == "copy" or self.consolidated.non_expert_from
        return None if shared else self.active

    def _configure(self, tenant: str) -> None:
        self.consolidated.activate(tenant)


class SingleEngine(Engine):
    """One model serves every tenant's requests: the throughput of a single model.

    Parameters
    ----------
    model : PreTrainedModel
        The model.
    tenants : sequence of str
        The tenants whose requests it accepts.
    static_cache : int, optional
        Decode with a static KV cache of this many tokens (:class:`StaticDecoder`).
    compile : bool, default False
        Compile the decode step (see :class:`StaticDecoder`).
    """

    name = "single"

    def __init__(
        self,
        model: nn.Module,
        tenants: Sequence[str],
        static_cache: int | None = None,
        compile: bool = False,
    ) -> None:
        check_type(model, nn.Module, "model")
        super().__init__(tenants, model.eval(), static_cache, compile=compile)

    def switch(self, tenant: str) -> float:
        """Nothing to reconfigure: the one model serves every tenant (``active`` stays None)."""
        return 0.0


class SwapEngine(Engine):
    """One whole model on the device; a tenant switch copies in all of that tenant's weights.

    Every tenant's weights are staged in host memory (one flat buffer per dtype, pinned when
    CUDA is available); the live model's parameters are views into one flat device buffer per
    dtype, so a switch is one host-to-device copy per dtype of the whole model.

    Parameters
    ----------
    models : dict of str to model or folder
        The tenants (anything :func:`~moelab.loading.load_moe` accepts); each is read once.
    device : str or torch.device, default "cpu"
        Where the live model runs.
    static_cache : int, optional
        Decode with a static KV cache of this many tokens (one graph serves every tenant: the
        weights are copied in place).
    """

    name = "swap"

    def __init__(
        self,
        models: Mapping[str, Any],
        device: str | torch.device = "cpu",
        static_cache: int | None = None,
    ) -> None:
        device = torch.device(device)
        check_type(models, Mapping, "models", expected="a dict {tenant: model or folder}")
        if not models:
            raise ValueError("SwapEngine needs at least one tenant")
        names = list(models)
        first = load_moe(models[names[0]], tokenizer=False)
        live = copy.deepcopy(first.model).eval()
        sites, unique_of = param_sites(live, set())
        like, aliases = unique_parameters(live, set())
        dtype = like[0].dtype
        self._staged = {}
        for name in names:
            source = first if name == names[0] else load_moe(models[name], tokenizer=False)
            self._staged[name] = staged_set(source, name, like, aliases, dtype)
        self._flat, views = live_buffers(like, dtype, device)
        for site, k in zip(sites, unique_of):
            site.params[site.name] = views[k]
        for module in live.modules():
            for key, buffer in module._buffers.items():
                if buffer is not None:
                    module._buffers[key] = buffer.to(device)
        super().__init__(names, live, static_cache)
        self.switched_bytes = 0

    def _configure(self, tenant: str) -> None:
        with torch.no_grad():
            for dtype, flat in self._flat.items():
                flat.copy_(self._staged[tenant][dtype], non_blocking=True)
                self.switched_bytes += flat.numel() * flat.element_size()
