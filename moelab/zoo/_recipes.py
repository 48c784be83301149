"""How each model family of the zoo is fed, built, trained and scored.

A recipe turns a :class:`~moelab.zoo.ZooSpec` into data (corpora + tokenizer), a freshly
initialised transformers model, batches for one training phase, and evaluation numbers. The
registry :data:`RECIPES` maps ``ZooSpec.family`` to its recipe.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn
from transformers import (
    MixtralConfig,
    MixtralForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    SwitchTransformersConfig,
    SwitchTransformersForConditionalGeneration,
)

from labcore.registry import Registry
from moelab import corpora
from moelab.evaluate import exact_match, perplexity
from moelab.families import EXPERTS_GROUP, detect_family
from moelab.zoo._tokenizer import train_tokenizer
from moelab.zoo._training import Batch, seeded

if TYPE_CHECKING:  # the spec checks itself against its recipe, so _spec imports this module
    from moelab.zoo._spec import ZooSpec

__all__ = [
    "EXACT_MATCH_ERROR_CUT_MIN",
    "EXACT_MATCH_GAIN_MIN",
    "PERPLEXITY_REDUCTION_MIN",
    "RECIPES",
    "Recipe",
    "ZooData",
    "exact_match_accepted",
    "get_recipe",
    "parameter_breakdown",
    "token_stream",
]

#: Acceptance: a mixtral variant's perplexity on its own domain is at least this much lower
#: (relative) than the base's.
PERPLEXITY_REDUCTION_MIN = 0.15
#: Acceptance: a switch variant's exact match on its own task beats the base's by this many
#: points (absolute, on [0, 1]) ...
EXACT_MATCH_GAIN_MIN = 0.10
#: ... or, when the base is already close to perfect, removes at least this share of its errors.
EXACT_MATCH_ERROR_CUT_MIN = 0.5


def exact_match_accepted(base: float, variant: float) -> bool:
    """Whether a variant's accuracy is clearly above the base's (see the two constants)."""
    gain = variant - base
    error_cut = gain / (1.0 - base) if base < 1.0 else 0.0
    return gain >= EXACT_MATCH_GAIN_MIN or (gain > 0 and error_cut >= EXACT_MATCH_ERROR_CUT_MIN)


@dataclass
class ZooData:
    """Everything a build needs from the corpora, already tokenized.

    ``train[variant]`` is a token stream (causal) or a list of (source ids, target ids) pairs
    (seq2seq); ``heldout[variant]`` is what the zoo stores for evaluation: document texts or
    ``[source, target]`` pairs.
    """

    tokenizer: PreTrainedTokenizerFast
    train: dict[str, object]
    heldout: dict[str, list]
    provenance: dict = field(default_factory=dict)


def token_stream(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> torch.Tensor:
    """Concatenate documents as ``<s> text </s>`` into one 1-D token stream."""
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    ids = [t for doc in encoded for t in (bos, *doc, eos)]
    return torch.tensor(ids, dtype=torch.long)


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# The groups a manifest records, in its key order; which parameter is in which group is the
# family adapter's call (MoEFamily.parameter_groups). "experts" is what the papers move,
# quantize or share, everything else is the per-tenant non-expert set.
_MANIFEST_GROUPS = (
    EXPERTS_GROUP,
    "router",
    "embeddings",
    "lm_head",
    "attention",
    "norms",
    "dense_mlp",
)


def parameter_breakdown(model: nn.Module) -> dict[str, float | int | dict[str, int]]:
    """Count parameters per group (tied weights once) and the share held by experts.

    Parameters
    ----------
    model : PreTrainedModel
        A model of a registered family; its adapter assigns each parameter to a group.

    Returns
    -------
    dict
        ``total``, ``experts``, ``non_experts``, ``expert_fraction`` and ``groups`` (count per
        group: experts, router, embeddings, lm_head, attention, norms, dense_mlp).

    Raises
    ------
    ValueError
        If the adapter puts a parameter in a group the manifest does not record (e.g.
        ``"other"``: no pattern of the adapter claims it).
    """
    family = detect_family(model)
    group_of = family.parameter_groups(model)
    groups = dict.fromkeys(_MANIFEST_GROUPS, 0)
    for name, param in model.named_parameters():
        group = group_of[name]
        if group not in groups:
            raise ValueError(
                f"parameter {name!r} is in group {group!r} of the {family.name} adapter, which "
                f"a zoo manifest does not record; extend the adapter's non_expert_patterns"
            )
        groups[group] += param.numel()
    total = sum(groups.values())
    return {
        "total": total,
        "experts": groups[EXPERTS_GROUP],
        "non_experts": total - groups[EXPERTS_GROUP],
        "expert_fraction": round(groups[EXPERTS_GROUP] / total, 6),
        "groups": groups,
    }


class Recipe(ABC):
    """What a model family must provide to be built into a zoo."""

    #: transformers class that ``from_pretrained`` loads a checkpoint of this family with.
    model_class: type[PreTrainedModel]
    #: Name of the evaluation metric in the manifest.
    metric: str
    #: What ``heldout.json`` holds: "documents" (texts) or "examples" (source, target pairs).
    heldout_kind: str
    #: Variant names a zoo of this family may fine-tune on (corpus domains or tasks).
    variants: tuple[str, ...]

    def check_spec(self, spec: ZooSpec) -> None:
        """Raise ``ValueError`` if ``spec`` asks for a model this family cannot be.

        Called by :class:`~moelab.zoo.ZooSpec` after its family-independent checks; the
        default accepts everything.
        """
        return None

    @abstractmethod
    def prepare(self, spec: ZooSpec) -> ZooData:
        """Split the corpora, train the tokenizer, tokenize the training data."""

    @abstractmethod
    def make_model(self, spec: ZooSpec, tokenizer: PreTrainedTokenizerFast) -> PreTrainedModel:
        """A freshly initialised model (the caller seeds torch first)."""

    @abstractmethod
    def batches(self, spec: ZooSpec, data: ZooData, variant: str | None) -> Callable[[int], Batch]:
        """Batch of each step of one phase: pre-training (``variant=None``) or a fine-tune."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(objective with router losses, language-model loss) of one batch."""

    @abstractmethod
    def evaluate(self, spec: ZooSpec, model: nn.Module, data: ZooData) -> dict[str, float]:
        """The metric on every variant's held-out data."""

    @abstractmethod
    def acceptance(self, results: dict[str, dict[str, float]], variants: Sequence[str]) -> dict:
        """Whether each variant beats the base on its own held-out data."""


class CausalRecipe(Recipe):
    """``MixtralForCausalLM`` pre-trained on corpus domains, fine-tuned on one domain each."""

    model_class = MixtralForCausalLM
    metric = "perplexity"
    heldout_kind = "documents"
    variants = corpora.DOMAINS

    def prepare(self, spec: ZooSpec) -> ZooData:
        splits = {
            d: corpora.domain_split(
                d,
                seed=spec.seed,
                heldout_fraction=spec.heldout_fraction,
                n_train=spec.n_train,
                n_heldout=spec.n_heldout,
            )
            for d in spec.variants
        }
        train_texts = [doc.text for s in splits.values() for doc in s.train]
        tokenizer = train_tokenizer(train_texts, spec.vocab_size, style="causal")
        train = {
            d: token_stream(tokenizer, [doc.text for doc in s.train]) for d, s in splits.items()
        }
        for d, stream in train.items():
            if stream.numel() <= spec.seq_len:
                raise ValueError(
                    f"domain {d!r} has only {stream.numel()} training tokens, not more than "
                    f"seq_len={spec.seq_len}; raise n_train or lower seq_len"
                )
        heldout = {d: [doc.text for doc in s.heldout] for d, s in splits.items()}
        provenance = {
            "python": platform.python_version(),
            "domains": {
                d: {
                    "train_documents": len(s.train),
                    "heldout_documents": [doc.name for doc in s.heldout],
                    "train_tokens": int(train[d].numel()),
                }
                for d, s in splits.items()
            },
        }
        if "code" in splits:
            provenance["stdlib_modules"] = {
                module: _sha256_text(text) for module, text in corpora.stdlib_sources()
            }
        if "prose" in splits:
            provenance["pydoc_topics_sha256"] = _sha256_text(
                "".join(doc.text for doc in splits["prose"].train + splits["prose"].heldout)
            )
        return ZooData(tokenizer, train, heldout, provenance)

    def make_model(self, spec: ZooSpec, tokenizer: PreTrainedTokenizerFast) -> PreTrainedModel:
        config = MixtralConfig(
            vocab_size=len(tokenizer),
            hidden_size=spec.hidden_size,
            intermediate_size=spec.intermediate_size,
            num_hidden_layers=spec.num_layers,
            num_attention_heads=spec.num_heads,
            num_key_value_heads=spec.num_kv_heads,
            num_local_experts=spec.num_experts,
            num_experts_per_tok=spec.experts_per_token,
            max_position_embeddings=4 * max(spec.seq_len, spec.eval_chunk_len),
            # Untied like Mixtral-8x7B; the small vocabulary keeps them a small share.
            tie_word_embeddings=False,
            router_aux_loss_coef=spec.router_aux_loss_coef,
            router_jitter_noise=0.0,
            attention_dropout=0.0,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        return MixtralForCausalLM(config)

    def batches(self, spec: ZooSpec, data: ZooData, variant: str | None) -> Callable[[int], Batch]:
        # The base sees the domains in the spec's shares, row by row; a variant only its own.
        domains = spec.mixture_pattern() if variant is None else [variant]
        phase = 0 if variant is None else 1 + spec.variants.index(variant)
        generator = seeded(spec.seed, phase)
        streams = [data.train[d] for d in domains]

        def batch(step: int) -> Batch:
            rows = []
            for row in range(spec.batch_size):
                stream = streams[(step * spec.batch_size + row) % len(streams)]
                start = int(
                    torch.randint(0, stream.numel() - spec.seq_len, (1,), generator=generator)
                )
                rows.append(stream[start : start + spec.seq_len])
            ids = torch.stack(rows)
            return {"input_ids": ids, "labels": ids}

        return batch

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        out = model(**batch, output_router_logits=True)
        lm = out.loss - model.config.router_aux_loss_coef * out.aux_loss
        return out.loss, lm.detach()

    def evaluate(self, spec: ZooSpec, model: nn.Module, data: ZooData) -> dict[str, float]:
        return {
            d: round(
                perplexity(
                    model,
                    token_stream(data.tokenizer, data.heldout[d]),
                    spec.eval_chunk_len,
                    spec.eval_max_chunks,
                ),
                4,
            )
            for d in spec.variants
        }

    def acceptance(self, results: dict[str, dict[str, float]], variants: Sequence[str]) -> dict:
        rows = {}
        for v in variants:
            base, own = results["base"][v], results[v][v]
            reduction = round(1.0 - own / base, 4)
            rows[v] = {
                "base": base,
                "variant": own,
                "reduction": reduction,
                "passed": reduction >= PERPLEXITY_REDUCTION_MIN,
            }
        return {
            "criterion": (
                f"perplexity on the variant's own held-out domain at least "
                f"{PERPLEXITY_REDUCTION_MIN:.0%} lower than the base's"
            ),
            "variants": rows,
            "passed": all(r["passed"] for r in rows.values()),
        }


class Seq2SeqRecipe(Recipe):
    """``SwitchTransformersForConditionalGeneration`` on generated text-to-text tasks."""

    model_class = SwitchTransformersForConditionalGeneration
    metric = "exact_match"
    heldout_kind = "examples"
    variants = corpora.TASKS

    def check_spec(self, spec: ZooSpec) -> None:
        """Switch routes each token to one expert, and its sparse layers alternate with dense ones."""
        if spec.experts_per_token != 1:
            raise ValueError(
                "Switch Transformers route each token to one expert; set experts_per_token=1"
            )
        if spec.num_layers < 2:
            raise ValueError("a switch zoo needs num_layers >= 2 (every other layer is sparse)")

    def prepare(self, spec: ZooSpec) -> ZooData:
        splits = {
            t: corpora.task_split(
                t,
                seed=spec.seed,
                n_train=spec.n_train,
                n_heldout=spec.n_heldout,
                heldout_fraction=spec.heldout_fraction,
            )
            for t in spec.variants
        }
        texts = [text for s in splits.values() for text in corpora.iter_texts(s, "train")]
        tokenizer = train_tokenizer(texts, spec.vocab_size, style="seq2seq")
        train = {}
        for t, s in splits.items():
            sources = tokenizer([e.source for e in s.train])["input_ids"]
            targets = tokenizer([e.target for e in s.train])["input_ids"]
            longest = max(len(ids) for ids in sources + targets)
            if longest > spec.seq_len:
                raise ValueError(
                    f"task {t!r} has sequences of {longest} tokens, more than seq_len="
                    f"{spec.seq_len}; raise seq_len"
                )
            train[t] = list(zip(sources, targets, strict=True))
        heldout = {t: [[e.source, e.target] for e in s.heldout] for t, s in splits.items()}
        provenance = {
            "python": platform.python_version(),
            "tasks": {
                t: {"train": len(s.train), "heldout": len(s.heldout)} for t, s in splits.items()
            },
        }
        return ZooData(tokenizer, train, heldout, provenance)

    def make_model(self, spec: ZooSpec, tokenizer: PreTrainedTokenizerFast) -> PreTrainedModel:
        config = SwitchTransformersConfig(
            vocab_size=len(tokenizer),
            d_model=spec.hidden_size,
            d_kv=spec.hidden_size // spec.num_heads,
            d_ff=spec.intermediate_size,
            num_layers=spec.num_layers,
            num_decoder_layers=spec.num_layers,
            # Every other block sparse, as in Switch-Base-8.
            num_sparse_encoder_layers=spec.num_layers // 2,
            num_sparse_decoder_layers=spec.num_layers // 2,
            num_heads=spec.num_heads,
            num_experts=spec.num_experts,
            # Capacity counts tokens per expert per sequence; seq_len means no token is dropped.
            expert_capacity=spec.seq_len,
            router_jitter_noise=0.0,
            dropout_rate=0.0,
            router_aux_loss_coef=spec.router_aux_loss_coef,
            router_z_loss_coef=spec.router_z_loss_coef,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
        return SwitchTransformersForConditionalGeneration(config)

    def batches(self, spec: ZooSpec, data: ZooData, variant: str | None) -> Callable[[int], Batch]:
        tasks = spec.mixture_pattern() if variant is None else [variant]
        phase = 0 if variant is None else 1 + spec.variants.index(variant)
        generator = seeded(spec.seed, phase)
        pools = [data.train[t] for t in tasks]
        pad = data.tokenizer.pad_token_id

        def batch(step: int) -> Batch:
            pairs = []
            for row in range(spec.batch_size):
                pool = pools[(step * spec.batch_size + row) % len(pools)]
                pairs.append(pool[int(torch.randint(0, len(pool), (1,), generator=generator))])
            src_len = max(len(s) for s, _ in pairs)
            tgt_len = max(len(t) for _, t in pairs)
            input_ids = torch.full((len(pairs), src_len), pad, dtype=torch.long)
            labels = torch.full((len(pairs), tgt_len), -100, dtype=torch.long)
            for i, (s, t) in enumerate(pairs):
                input_ids[i, : len(s)] = torch.tensor(s)
                labels[i, : len(t)] = torch.tensor(t)
            return {
                "input_ids": input_ids,
                "attention_mask": (input_ids != pad).long(),
                "labels": labels,
            }

        return batch

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        out = model(**batch, output_router_logits=True)
        cfg = model.config
        router = cfg.router_z_loss_coef * (out.encoder_z_loss + out.decoder_z_loss)
        router = router + cfg.router_aux_loss_coef * (out.encoder_aux_loss + out.decoder_aux_loss)
        return out.loss, (out.loss - router).detach()

    def evaluate(self, spec: ZooSpec, model: nn.Module, data: ZooData) -> dict[str, float]:
        return {
            t: round(
                exact_match(
                    model, data.tokenizer, data.heldout[t], spec.eval_max_new_tokens, batch_size=256
                ),
                4,
            )
            for t in spec.variants
        }

    def acceptance(self, results: dict[str, dict[str, float]], variants: Sequence[str]) -> dict:
        rows = {}
        for v in variants:
            base, own = results["base"][v], results[v][v]
            gain = round(own - base, 4)
            rows[v] = {
                "base": base,
                "variant": own,
                "gain": gain,
                "passed": exact_match_accepted(base, own),
            }
        return {
            "criterion": (
                f"exact match on the variant's own held-out task at least "
                f"{EXACT_MATCH_GAIN_MIN:.2f} higher than the base's, or at least "
                f"{EXACT_MATCH_ERROR_CUT_MIN:.0%} of the base's errors removed"
            ),
            "variants": rows,
            "passed": all(r["passed"] for r in rows.values()),
        }


RECIPES: Registry[Recipe] = Registry("zoo family", plural="families", sort=False)
RECIPES.add("mixtral", CausalRecipe())
RECIPES.add("switch", Seq2SeqRecipe())


def get_recipe(family: str) -> Recipe:
    """Recipe of a family; unknown names raise ``ValueError`` listing the known ones."""
    return RECIPES.get(family)


def package_versions() -> dict[str, str]:
    """Versions that decide the bytes of a build (recorded, not part of the cache key)."""
    import numpy
    import safetensors
    import tokenizers
    import transformers

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }
