"""Calibration tokens: the hidden states that ``"cka"`` feeds the experts and ``"router"`` the
routers, captured from a reference model or drawn from a seeded Gaussian.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from labcore.atomic import atomic_path
from labcore.checks import check_int, check_type
from moelab.checkpoint import read_config
from moelab.families import MoEFamily, config_of, detect_family
from moelab.loading import MoEModel, load_moe
from moelab.similarity._sources import resolve_layers

__all__ = [
    "DEFAULT_CALIBRATION_TOKENS",
    "Calibration",
    "as_calibration",
    "capture_calibration",
    "gaussian_calibration",
]

# Default size of seeded Gaussian calibration sets.
DEFAULT_CALIBRATION_TOKENS = 512


def _freeze_hidden(hidden: Mapping[int, torch.Tensor]) -> Mapping[int, torch.Tensor]:
    shape = "a mapping {moe_layer: (N, hidden) Tensor}"
    check_type(hidden, Mapping, "Calibration.hidden", expected=shape)
    if not hidden:
        raise ValueError(f"Calibration.hidden must be {shape} with at least one layer")
    for key in hidden:
        check_int(key, "a Calibration layer", minimum=0)
    frozen: dict[int, torch.Tensor] = {}
    sizes = set()
    for layer in sorted(hidden):
        tensor = hidden[layer]
        check_type(tensor, torch.Tensor, f"Calibration layer {layer}", expected="a Tensor")
        if tensor.ndim != 2 or tensor.shape[0] < 2:
            raise ValueError(
                f"Calibration layer {layer}: expected an (N, hidden) Tensor with N >= 2 tokens, "
                f"got {tuple(tensor.shape)}"
            )
        if not tensor.is_floating_point():
            raise ValueError(
                f"Calibration layer {layer}: hidden states must be floats, got {tensor.dtype}"
            )
        sizes.add(tensor.shape[1])
        frozen[layer] = tensor.detach()
    if len(sizes) != 1:
        raise ValueError(f"Calibration layers have different hidden sizes {sorted(sizes)}")
    return MappingProxyType(frozen)


@dataclass(frozen=True, eq=False)
class Calibration:
    """Hidden states fed to the experts (``"cka"``) and routers (``"router"``) of each layer.

    Parameters
    ----------
    hidden : mapping of int to (N, hidden) Tensor
        For each global MoE-layer index, the states every expert of that layer sees (the input
        of the family's ``moe_block``). Layers may hold different numbers of tokens.
    description : str, optional
        Where they come from, e.g. ``"captured from base on 256 tokens"``.

    Raises
    ------
    ValueError
        If the mapping is empty, a layer is not a non-negative int, a value is not a 2-D float
        Tensor with at least two rows, or hidden sizes differ.

    See Also
    --------
    capture_calibration : hidden states of a reference model on given token ids.
    gaussian_calibration : seeded Gaussian stand-ins when no model is in memory.
    """

    hidden: Mapping[int, torch.Tensor]
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", _freeze_hidden(self.hidden))
        check_type(self.description, str, "Calibration.description")

    def __repr__(self) -> str:
        tokens = sorted({t.shape[0] for t in self.hidden.values()})
        return (
            f"Calibration(layers={list(self.hidden)}, tokens={tokens}, "
            f"hidden_size={self.hidden_size}, description={self.description!r})"
        )

    @property
    def hidden_size(self) -> int:
        """Width of the hidden states."""
        return next(iter(self.hidden.values())).shape[1]

    def layer(self, layer: int) -> torch.Tensor:
        """The ``(N, hidden)`` states of one MoE layer.

        Parameters
        ----------
        layer : int
            Global MoE-layer index, a key of :attr:`hidden`.

        Returns
        -------
        Tensor
            The states that entered that layer's experts.

        Raises
        ------
        ValueError
            If the calibration holds no states for that layer.
        """
        if layer not in self.hidden:
            raise ValueError(
                f"calibration has no hidden states for MoE layer {layer} (it covers layers "
                f"{list(self.hidden)}); capture it from a model of the same architecture"
            )
        return self.hidden[layer]

    def check(self, family: MoEFamily, config: Any, layers: Sequence[int]) -> None:
        """Raise unless the calibration fits a model's hidden size and covers ``layers``.

        Parameters
        ----------
        family : MoEFamily
            The models' family.
        config : PretrainedConfig
            Their config.
        layers : sequence of int
            The MoE layers about to be compared.

        Raises
        ------
        ValueError
            Naming the mismatch and the fix.
        """
        expected = _hidden_size(family, config)
        if self.hidden_size != expected:
            raise ValueError(
                f"calibration hidden states have width {self.hidden_size}, but the models' "
                f"hidden size is {expected}; capture them from a model of the same architecture "
                f"or use gaussian_calibration"
            )
        for layer in layers:
            self.layer(layer)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the calibration to a safetensors file, atomically.

        Parameters
        ----------
        path : str or PathLike
            Target file (e.g. ``"calibration.safetensors"``).

        Returns
        -------
        Path
            The file written.
        """
        from safetensors.torch import save_file

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"layer.{k}": v.contiguous().cpu() for k, v in self.hidden.items()}
        with atomic_path(target) as tmp:
            save_file(tensors, str(tmp), metadata={"description": self.description})
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        """Read a calibration written by :meth:`save`.

        Parameters
        ----------
        path : str or PathLike
            The safetensors file.

        Returns
        -------
        Calibration
            The calibration.

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        ValueError
            If it holds no ``layer.{i}`` tensors.
        """
        from safetensors import safe_open

        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(
                f"no calibration file {file.name!r}; write one with Calibration.save"
            )
        with safe_open(file, framework="pt") as handle:
            names = [k for k in handle.keys() if k.startswith("layer.")]  # noqa: SIM118
            if not names:
                raise ValueError(
                    f"{file.name!r} holds no 'layer.N' tensors; write it with Calibration.save"
                )
            hidden = {int(k.split(".", 1)[1]): handle.get_tensor(k) for k in names}
            description = (handle.metadata() or {}).get("description", "")
        return cls(hidden, description)


def _hidden_size(family: MoEFamily, config: Any) -> int:
    # The input width of the first expert matrix: every family's experts read the hidden state.
    first = family.expert_matrix_names()[0]
    return family.expert_shapes(config)[first][1]


def _config_and_family(source: Any) -> tuple[Any, MoEFamily]:
    if isinstance(source, (str, os.PathLike)):
        config = read_config(source)
        return config, detect_family(config)
    family = getattr(source, "family", None)
    config = config_of(source)
    return config, family if isinstance(family, MoEFamily) else detect_family(config)


def gaussian_calibration(
    model_or_config: Any,
    *,
    n_tokens: int = DEFAULT_CALIBRATION_TOKENS,
    seed: int = 0,
    layers: Sequence[int] | None = None,
) -> Calibration:
    """Seeded standard-normal hidden states of the model's width, one set per MoE layer.

    The stand-in when no model is in memory to capture real states from (e.g. comparing two
    large checkpoints lazily). The input of every supported family's MoE block comes right
    after an RMSNorm or LayerNorm, so each token has roughly unit root-mean-square, which
    ``N(0, 1)`` entries match. The results then describe the experts as functions on isotropic
    inputs rather than on the model's real token distribution; prefer
    :func:`capture_calibration` (captured once, saved with :meth:`Calibration.save`) when a
    reference model fits in memory.

    Parameters
    ----------
    model_or_config : MoEModel or LazyCheckpoint or PreTrainedModel or PretrainedConfig or path
        Gives the hidden size and the number of MoE layers.
    n_tokens : int, default 512
        Tokens per layer.
    seed : int, default 0
        Seed of a private ``torch.Generator``; layer ``l`` draws from ``seed + l``.
    layers : sequence of int, optional
        MoE layers to cover (default: all).

    Returns
    -------
    Calibration
        ``(n_tokens, hidden)`` float32 states per layer.

    Raises
    ------
    ValueError
        If ``n_tokens < 2`` or a layer is out of range.

    Examples
    --------
    >>> gaussian_calibration(base_path, n_tokens=256)  # a save_pretrained folder
    Calibration(layers=[0, 1], tokens=[256], hidden_size=16, description='seeded Gaussian N(0, 1), 256 tokens, seed 0')
    """
    check_int(n_tokens, "n_tokens", minimum=2)
    config, family = _config_and_family(model_or_config)
    layers = resolve_layers(family, config, layers)
    width = _hidden_size(family, config)
    hidden = {
        layer: torch.randn(n_tokens, width, generator=torch.Generator().manual_seed(seed + layer))
        for layer in layers
    }
    return Calibration(hidden, f"seeded Gaussian N(0, 1), {n_tokens} tokens, seed {seed}")


def _token_batch(token_ids: Any, vocab_size: int) -> torch.Tensor:
    ids = torch.as_tensor(token_ids)
    if ids.ndim == 1:
        ids = ids.unsqueeze(0)
    if ids.ndim != 2 or ids.numel() == 0 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(
            f"token_ids must be a non-empty (seq,) or (batch, seq) integer array, got "
            f"{tuple(ids.shape)} {ids.dtype}"
        )
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(
            f"token_ids must lie in [0, {vocab_size}) (the model's vocabulary), got values from "
            f"{low} to {high}"
        )
    return ids.long()


def capture_calibration(
    model: Any, token_ids: Any, *, description: str | None = None
) -> Calibration:
    """Capture the hidden states every MoE block of a reference model sees on given tokens.

    A forward hook on each ``family.moe_block(model, layer)`` records its input, the state the
    layer's router and experts read. An encoder-decoder (Switch Transformers) gets the same ids
    as encoder input and as decoder input, so its decoder MoE layers see states too.

    Parameters
    ----------
    model : MoEModel or PreTrainedModel or path
        The reference model (usually the base model of the fine-tunes being compared); a path
        is loaded with :func:`~moelab.loading.load_moe`.
    token_ids : (seq,) or (batch, seq) int array-like
        Token ids in the model's vocabulary; every position becomes one calibration token.
    description : str, optional
        Stored with the result; by default names the model and the token count.

    Returns
    -------
    Calibration
        ``(batch * seq, hidden)`` float32 states per MoE layer, on the CPU.

    Raises
    ------
    ValueError
        If ``token_ids`` is not a non-empty integer array inside the vocabulary.
    UnsupportedModelError
        If the model is not of a supported MoE family.

    Examples
    --------
    >>> ids = tokenizer(text, return_tensors="pt").input_ids
    >>> calib = capture_calibration(base, ids)
    >>> calib
    Calibration(layers=[0, 1], tokens=[11], hidden_size=16, description='captured from MixtralForCausalLM on 11 tokens')
    >>> calib.save("calibration.safetensors").name
    'calibration.safetensors'
    """
    moe = load_moe(model, tokenizer=False) if not isinstance(model, MoEModel) else model
    ids = _token_batch(token_ids, int(moe.config.vocab_size))
    device = next(moe.model.parameters()).device
    ids = ids.to(device)
    captured: dict[int, torch.Tensor] = {}

    def hook_for(layer: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            states = args[0] if args else kwargs["hidden_states"]
            captured[layer] = states.detach().reshape(-1, states.shape[-1]).float().cpu()

        return hook

    n_layers = moe.family.num_moe_layers(moe.config)
    handles = [
        moe.moe_block(layer).register_forward_hook(hook_for(layer), with_kwargs=True)
        for layer in range(n_layers)
    ]
    was_training = moe.model.training
    moe.model.eval()  # router jitter and dropout are training-only
    try:
        inputs = {"input_ids": ids}
        if getattr(moe.config, "is_encoder_decoder", False):
            inputs["decoder_input_ids"] = ids
        with torch.no_grad():
            moe.model(**inputs)
    finally:
        for handle in handles:
            handle.remove()
        moe.model.train(was_training)
    text = (
        description
        if description is not None
        else f"captured from {moe.name} on {ids.numel()} tokens"
    )
    return Calibration(captured, text)


def as_calibration(
    calibration: Calibration | Mapping[int, torch.Tensor] | None,
    sources: Sequence[Any],
    family: MoEFamily,
    layers: Sequence[int],
) -> Calibration:
    """The calibration a table uses, checked against the models.

    Parameters
    ----------
    calibration : Calibration or dict of int to Tensor, optional
        As given to :func:`~moelab.similarity.expert_similarity`; None means
        :func:`gaussian_calibration` of the first model.
    sources : sequence of LazyCheckpoint or MoEModel
        The opened models.
    family : MoEFamily
        Their family.
    layers : sequence of int
        The MoE layers to be compared.

    Returns
    -------
    Calibration
        Covering ``layers`` at the models' hidden size.

    Raises
    ------
    ValueError
        If ``calibration`` is of another type, or does not fit the models or layers.
    """
    if calibration is None:
        # Documented default: seeded Gaussian states, so lazy runs need no model in memory.
        calibration = gaussian_calibration(sources[0], layers=layers)
    elif not isinstance(calibration, Calibration):
        check_type(
            calibration,
            Mapping,
            "calibration",
            expected="a Calibration, a mapping {moe_layer: (N, hidden) Tensor} or None",
        )
        calibration = Calibration(calibration)
    calibration.check(family, sources[0].config, layers)
    return calibration
