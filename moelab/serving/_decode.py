"""Greedy decoding of one request with a KV cache, timed to the first and the last token."""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Generation", "greedy_decode"]


@dataclass(frozen=True)
class Generation:
    """What one request produced, and when.

    Parameters
    ----------
    tokens : tuple of int
        Generated token ids (the prompt excluded).
    first_token_s : float
        Seconds from the start of the call to the first generated token (prefill included).
    total_s : float
        Seconds from the start of the call to the last token.
    """

    tokens: tuple[int, ...]
    first_token_s: float
    total_s: float


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def greedy_decode(
    model: nn.Module,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    eos_token_id: int | None = None,
) -> Generation:
    """Prefill the prompt, then generate token by token (greedy) with transformers' KV cache.

    The same loop runs on CPU and CUDA; it computes what ``model.generate(do_sample=False)``
    computes for a causal language model, and times the first token (time to first token)
    and the last.

    Parameters
    ----------
    model : PreTrainedModel
        A causal language model (encoder-decoder models are refused).
    prompt_ids : sequence of int
        The prompt.
    max_new_tokens : int
        Tokens to generate; stops early at ``eos_token_id``.
    eos_token_id : int, optional
        End-of-sequence id; None generates exactly ``max_new_tokens``.

    Returns
    -------
    Generation
        The tokens and their timing.

    Raises
    ------
    ValueError
        For an encoder-decoder model.
    """
    if getattr(model.config, "is_encoder_decoder", False):
        raise ValueError(
            f"greedy_decode serves causal language models; {type(model).__name__} is an "
            f"encoder-decoder"
        )
    from transformers import DynamicCache

    # transformers renamed the cache argument (``past_key_values`` -> ``cache``, 5.2x).
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt_ids)], device=device)
    cache = DynamicCache(config=model.config)
    tokens: list[int] = []
    start = _now(device)
    first = start
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=True, **{name: cache}).logits
        for step in range(max_new_tokens):
            token = int(logits[0, -1].argmax())  # .item() waits for the device
            if step == 0:
                first = time.perf_counter()
            tokens.append(token)
            if token == eos_token_id or step == max_new_tokens - 1:
                break
            step_ids = torch.tensor([[token]], device=device)
            logits = model(input_ids=step_ids, use_cache=True, **{name: cache}).logits
    return Generation(tuple(tokens), first - start, _now(device) - start)
