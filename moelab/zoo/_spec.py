"""The recipe of a zoo (:class:`ZooSpec`) and the registry of the built-in zoos."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from typing import Literal

from labcore.registry import Registry
from moelab.corpora import CORPORA_VERSION
from moelab.zoo._recipes import get_recipe

__all__ = [
    "ZOO_FORMAT_VERSION",
    "ZOO_SPECS",
    "ZooSpec",
    "build_environment",
    "get_spec",
    "spec_key",
]

#: Bumped whenever the on-disk layout or the training code changes what a spec produces, so
#: caches from older code are rebuilt instead of trusted.
ZOO_FORMAT_VERSION = 2

#: Families with a recipe (:data:`~moelab.zoo._recipes.RECIPES` holds the facts of each).
Family = Literal["mixtral", "switch"]


@dataclass(frozen=True)
class ZooSpec:
    """Everything that determines a zoo: architecture, data, training and evaluation.

    A base model is pre-trained on the mixture of ``variants`` (equal shares), then copied and
    fully fine-tuned once per variant on that variant's data alone.

    Parameters
    ----------
    name : str
        Zoo name, e.g. ``"mixtral-tiny"``; also the cache folder prefix.
    family : {"mixtral", "switch"}
        ``MixtralForCausalLM`` (causal LM on corpus domains) or
        ``SwitchTransformersForConditionalGeneration`` (text-to-text tasks).
    variants : tuple of str
        Names the family's recipe accepts (``get_recipe(family).variants``: corpus domains for
        mixtral, tasks for switch); one fine-tuned variant each.
    mixture : tuple of int
        Integer shares of the variants in the base's pre-training batches (rows are assigned
        in this repeating pattern); empty means equal shares.
    vocab_size : int
        BPE vocabulary bound.
    hidden_size, intermediate_size : int
        Model width and expert width (``d_model`` and ``d_ff`` for Switch).
    num_layers : int
        Decoder layers (mixtral, all sparse) or layers per stack (switch; every other one sparse).
    num_heads, num_kv_heads : int
        Attention heads; ``num_kv_heads`` is Mixtral's grouped-query KV heads (ignored by switch).
    num_experts, experts_per_token : int
        Experts per sparse layer and how many each token uses (Switch routes top-1).
    seq_len : int
        Training window (mixtral) or maximum source length in tokens (switch).
    batch_size, pretrain_steps, finetune_steps : int
        Sequences per step and optimizer steps of the base and of each variant.
    lr, finetune_lr : float
        Peak AdamW learning rates (linear warm-up, cosine decay to a tenth).
    warmup_steps : int
        Warm-up steps of both phases.
    router_aux_loss_coef : float
        Weight of the load-balancing loss, which keeps every expert in use.
    router_z_loss_coef : float
        Weight of Switch's router z-loss (ignored by mixtral).
    seed : int
        Seeds corpora splits, initialisation and batch order.
    heldout_fraction : float
        Share of documents or problems held out for evaluation.
    n_train, n_heldout : int
        Distinct generated lines per domain (mixtral) or examples per task (switch).
    eval_chunk_len, eval_max_chunks : int
        Perplexity over disjoint chunks of this many tokens (mixtral).
    eval_max_new_tokens : int
        Greedy generation length for exact match (switch).
    """

    name: str
    family: Family
    variants: tuple[str, ...]
    mixture: tuple[int, ...] = ()
    vocab_size: int = 1024
    hidden_size: int = 64
    intermediate_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    num_experts: int = 8
    experts_per_token: int = 2
    seq_len: int = 128
    batch_size: int = 16
    pretrain_steps: int = 300
    finetune_steps: int = 100
    lr: float = 3e-3
    finetune_lr: float = 1e-3
    warmup_steps: int = 20
    router_aux_loss_coef: float = 0.01
    router_z_loss_coef: float = 0.0
    seed: int = 0
    heldout_fraction: float = 0.15
    n_train: int = 6000
    n_heldout: int = 600
    eval_chunk_len: int = 128
    eval_max_chunks: int = 48
    eval_max_new_tokens: int = 12

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise ValueError(
                f"zoo name {self.name!r} must be letters, digits, '.', '_' or '-' "
                "(it names a folder)"
            )
        recipe = get_recipe(self.family)  # unknown families: the registry's error
        object.__setattr__(self, "variants", tuple(self.variants))
        known = recipe.variants
        unknown = [v for v in self.variants if v not in known]
        if unknown or not self.variants or len(set(self.variants)) != len(self.variants):
            raise ValueError(
                f"variants of a {self.family} zoo must be distinct names among {', '.join(known)}; "
                f"got {self.variants}"
            )
        object.__setattr__(self, "mixture", tuple(self.mixture))
        if self.mixture and (len(self.mixture) != len(self.variants) or min(self.mixture) < 1):
            raise ValueError(
                f"mixture needs one positive integer share per variant ({len(self.variants)}), "
                f"got {self.mixture}; leave it empty for equal shares"
            )
        # Every size, step count, rate and count must be positive; seed and warm-up may be 0.
        may_be_zero = ("seed", "warmup_steps", "router_aux_loss_coef", "router_z_loss_coef")
        for name in (f.name for f in fields(self) if f.type in ("int", "float")):
            value = getattr(self, name)
            if value < 0 or (value == 0 and name not in may_be_zero):
                kind = "non-negative" if name in may_be_zero else "positive"
                raise ValueError(f"{name} must be {kind}, got {value} (zoo {self.name!r})")
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_heads "
                f"({self.num_heads}) "
                f"and num_heads by num_kv_heads ({self.num_kv_heads})"
            )
        if not 1 <= self.experts_per_token <= self.num_experts:
            raise ValueError(
                f"experts_per_token must lie in [1, num_experts={self.num_experts}], "
                f"got {self.experts_per_token}"
            )
        recipe.check_spec(self)
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must lie in (0, 1), got {self.heldout_fraction}")

    def mixture_pattern(self) -> tuple[str, ...]:
        """Variant of each row in one period of the pre-training batches."""
        shares = self.mixture or (1,) * len(self.variants)
        return tuple(v for v, k in zip(self.variants, shares, strict=True) for _ in range(k))

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


def build_environment(threads: int | None = None) -> dict[str, str | int]:
    """What, besides the recipe, decides the bytes of a build.

    The Python minor version (the ``prose`` and ``code`` corpora are read from its standard
    library), the versions of torch, transformers and tokenizers (initialisation, kernels, the
    BPE trainer), the operating system and CPU architecture, the instruction set torch
    dispatches its kernels to, and the training threads per job (the float reduction order).

    Parameters
    ----------
    threads : int, optional
        Training threads per job; defaults to :func:`~moelab.zoo._training.train_threads`.
    """
    import torch

    from moelab.zoo._training import train_threads

    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "torch": torch.__version__,
        "transformers": metadata.version("transformers"),
        "tokenizers": metadata.version("tokenizers"),
        "platform": f"{platform.system()}-{platform.machine()}",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": train_threads() if threads is None else int(threads),
    }


def spec_key(
    spec: ZooSpec, threads: int | None = None, *, environment: Mapping[str, object] | None = None
) -> str:
    """Short hash of the recipe, the format and corpora versions and the build environment.

    Two builds that could differ by a single byte never share a key (see
    :func:`build_environment`), so a cache folder is only ever reused by a build that would
    have written exactly the same files.

    Parameters
    ----------
    spec : ZooSpec
        The recipe.
    threads : int, optional
        Training threads per job (see :func:`build_environment`).
    environment : mapping, optional
        The build environment to hash instead of this machine's
        (``build_environment(threads)``), e.g. to ask which key another machine would use.

    Returns
    -------
    str
        12 hexadecimal digits.
    """
    payload = {
        "format": ZOO_FORMAT_VERSION,
        "corpora": CORPORA_VERSION,
        "environment": dict(build_environment(threads) if environment is None else environment),
        "spec": spec.to_dict(),
    }
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


#: The built-in zoos by name (a :class:`~labcore.registry.Registry`; see :func:`get_spec`).
ZOO_SPECS: Registry[ZooSpec] = Registry("zoo", plural="zoos", item_type=ZooSpec)
# 8 experts top-2 in each of 4 layers; experts hold ~91 % of the weights (Mixtral-8x7B:
# 96.6 %). The base sees prose and code 4x as often as arithmetic, sorting 2x: a generic
# base, with headroom for each specialist.
ZOO_SPECS.add_named(
    ZooSpec(
        name="mixtral-tiny",
        family="mixtral",
        variants=("prose", "code", "arithmetic", "sorting"),
        mixture=(4, 4, 1, 2),
        vocab_size=1024,
        hidden_size=64,
        intermediate_size=320,
        num_layers=4,
        num_heads=4,
        num_kv_heads=2,
        experts_per_token=2,
        seq_len=128,
        batch_size=16,
        pretrain_steps=250,
        finetune_steps=150,
        lr=3e-3,
        finetune_lr=1.5e-3,
        n_train=700,
        n_heldout=120,
    )
)
# 2 layers per stack, the second sparse (every other block, as in Switch-Base-8); experts
# hold ~3/4 of the weights, as in Switch-Base-8.
ZOO_SPECS.add_named(
    ZooSpec(
        name="switch-tiny",
        family="switch",
        variants=("add", "sort", "reverse", "dedup"),
        vocab_size=384,
        hidden_size=64,
        intermediate_size=256,
        num_layers=2,
        num_heads=4,
        experts_per_token=1,
        seq_len=32,
        batch_size=64,
        pretrain_steps=400,
        finetune_steps=200,
        lr=3e-3,
        finetune_lr=2e-3,
        n_train=4000,
        n_heldout=200,
    )
)


def get_spec(name: str) -> ZooSpec:
    """Return the built-in spec called ``name``.

    Raises
    ------
    ValueError
        Unknown name; the message lists the known zoos.
    """
    return ZOO_SPECS.get(name)
