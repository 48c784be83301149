"""Greedy decoding of one request with a KV cache, timed to the first and the last token."""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from labcore.checks import check_int, check_type

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


def check_prompt(prompt_ids: Sequence[int], vocab_size: int | None) -> tuple[int, ...]:
    """The prompt as a tuple of ints, each a token id of the vocabulary.

    Parameters
    ----------
    prompt_ids : sequence of int
        Token ids.
    vocab_size : int or None
        Ids must lie in ``[0, vocab_size)``; None checks only that they are >= 0.

    Returns
    -------
    tuple of int

    Raises
    ------
    TypeError
        Text instead of ids, not a sequence, or an id that is not an int.
    ValueError
        An empty prompt or an id outside the vocabulary.
    """
    if isinstance(prompt_ids, (str, bytes)):
        raise TypeError("prompt_ids must be token ids, got text; tokenize it first")
    check_type(prompt_ids, Sequence, "prompt_ids", expected="a sequence of token ids")
    ids = tuple(check_int(t, "each of prompt_ids", minimum=0) for t in prompt_ids)
    if not ids:
        raise ValueError("prompt_ids is empty; pass at least one token id")
    if vocab_size is not None and max(ids) >= vocab_size:
        raise ValueError(
            f"prompt_ids holds token id {max(ids)}, outside the model's vocabulary of "
            f"{vocab_size}; encode the prompt with the model's own tokenizer"
        )
    return ids


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
    TypeError
        A model that is not a torch module, a prompt that is not a sequence of int token ids,
        or a count that is not an int.
    ValueError
        For an encoder-decoder model, an empty prompt, a token id outside the model's
        vocabulary, or ``max_new_tokens < 1``.
    """
    check_type(model, nn.Module, "model", expected="a torch module (a causal language model)")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    prompt_ids = check_prompt(prompt_ids, vocab if isinstance(vocab, int) else None)
    check_int(max_new_tokens, "max_new_tokens", minimum=1)
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
