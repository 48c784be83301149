"""Quality metrics of a model: perplexity over disjoint chunks and exact match of greedy answers.

Perplexity follows the mixed-precision experts paper (disjoint 2048-token chunks; the zoo uses
shorter ones): every chunk is scored on its own, its first token has no context, and the result is
``exp(total NLL / number of predicted tokens)`` over all chunks.

Examples
--------
>>> from moelab.evaluate import exact_match, perplexity
>>> perplexity(model, token_ids, chunk_len=128, max_chunks=32)  # doctest: +SKIP
7.41
>>> exact_match(model, tokenizer, [("add: 1 + 2", "3")], max_new_tokens=4)  # doctest: +SKIP
1.0
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from moelab.extras import require

__all__ = ["exact_match", "greedy_answers", "perplexity"]


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Evaluate without dropout, then give the model back in the mode it came in."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _as_ids(token_ids: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
    ids = torch.as_tensor(np.asarray(token_ids) if not torch.is_tensor(token_ids) else token_ids)
    if ids.ndim != 1 or ids.is_floating_point() or ids.is_complex():
        raise ValueError(
            f"token_ids must be a 1-D sequence of integer token ids, got shape {tuple(ids.shape)} "
            f"and dtype {ids.dtype}; flatten a batch with torch.cat or list concatenation first"
        )
    return ids.long()


def _chunk_nll(model: nn.Module, chunks: torch.Tensor, batch_size: int) -> tuple[float, int]:
    """Summed next-token NLL of each row of ``chunks`` (scored independently) and token count."""
    total, count = 0.0, 0
    device = _device(model)
    for batch in chunks.split(batch_size):
        batch = batch.to(device)
        logits = model(input_ids=batch).logits[:, :-1].float()
        targets = batch[:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"
        )
        total += float(nll)
        count += targets.numel()
    return total, count


def perplexity(
    model: nn.Module,
    token_ids: Sequence[int] | np.ndarray | torch.Tensor,
    chunk_len: int,
    max_chunks: int | None = None,
    *,
    batch_size: int = 8,
) -> float:
    """Perplexity of a causal LM over disjoint chunks of a token stream.

    The stream is cut into ``len(token_ids) // chunk_len`` chunks (the remainder is dropped),
    the first ``max_chunks`` are kept, and each chunk predicts its last ``chunk_len - 1`` tokens
    from the ones before it, with no context carried over from the previous chunk.

    Parameters
    ----------
    model : transformers causal LM
        Anything whose ``model(input_ids=...)`` returns ``.logits`` of shape (B, T, V). Its
        train/eval mode is restored afterwards.
    token_ids : (N,) sequence of int
        Token stream, e.g. ``Zoo.heldout_ids(domain)``.
    chunk_len : int
        Tokens per chunk, at least 2.
    max_chunks : int, optional
        Score only the first this many chunks; all by default.
    batch_size : int
        Chunks per forward pass (memory only; the result does not depend on it beyond
        floating-point rounding).

    Returns
    -------
    float
        ``exp(sum of NLL / number of predicted tokens)``.

    Raises
    ------
    ValueError
        ``chunk_len < 2``, fewer tokens than one chunk, ``max_chunks < 1``, ``batch_size < 1``,
        or token ids that are not a 1-D integer sequence.

    Examples
    --------
    An untrained model scores about its vocabulary size (64 here):

    >>> round(perplexity(model, token_ids, chunk_len=16), 1)
    65.7
    """
    ids = _as_ids(token_ids)
    if chunk_len < 2:
        raise ValueError(f"chunk_len must be >= 2 (one context token, one target), got {chunk_len}")
    if ids.numel() < chunk_len:
        raise ValueError(
            f"chunk_len={chunk_len} is larger than the {ids.numel()} tokens given; pass a shorter "
            "chunk_len or more text"
        )
    if max_chunks is not None and max_chunks < 1:
        raise ValueError(f"max_chunks must be >= 1 or None (all chunks), got {max_chunks}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_chunks = ids.numel() // chunk_len
    if max_chunks is not None:
        n_chunks = min(n_chunks, max_chunks)
    chunks = ids[: n_chunks * chunk_len].view(n_chunks, chunk_len)
    with _eval_mode(model):
        total, count = _chunk_nll(model, chunks, batch_size)
    return math.exp(total / count)


def _pairs(examples: Sequence) -> list[tuple[str, str]]:
    pairs = []
    for example in examples:
        if hasattr(example, "source") and hasattr(example, "target"):
            pairs.append((example.source, example.target))
        elif isinstance(example, (tuple, list)) and len(example) == 2:
            pairs.append((str(example[0]), str(example[1])))
        else:
            raise TypeError(
                f"each example must be a (source, target) pair or have .source and .target, "
                f"got {example!r}"
            )
    if not pairs:
        raise ValueError("examples is empty; pass at least one (source, target) pair")
    return pairs


def greedy_answers(
    model: nn.Module,
    tokenizer,
    sources: Sequence[str],
    max_new_tokens: int,
    *,
    batch_size: int = 64,
) -> list[str]:
    """Greedy-decode an answer to each source with an encoder-decoder model.

    Parameters
    ----------
    model : transformers encoder-decoder model
        E.g. ``SwitchTransformersForConditionalGeneration``.
    tokenizer : transformers tokenizer
        Encodes the sources (with its own special tokens) and decodes the answers.
    sources : sequence of str
        Inputs such as ``"add: 12 + 7"``.
    max_new_tokens : int
        Generation budget per answer (>= 1).
    batch_size : int
        Sources per ``generate`` call.

    Returns
    -------
    list of str
        Decoded answers without special tokens, stripped of surrounding whitespace.

    Raises
    ------
    ValueError
        A decoder-only model, ``max_new_tokens < 1`` or ``batch_size < 1``.
    """
    if not getattr(model.config, "is_encoder_decoder", False):
        raise ValueError(
            f"greedy_answers and exact_match need an encoder-decoder model, got "
            f"{type(model).__name__}; score a causal LM with perplexity instead"
        )
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError(
            f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens} and {batch_size}"
        )
    answers: list[str] = []
    device = _device(model)
    with _eval_mode(model):
        for start in range(0, len(sources), batch_size):
            enc = tokenizer(
                list(sources[start : start + batch_size]), return_tensors="pt", padding=True
            )
            out = model.generate(
                input_ids=enc["input_ids"].to(device),
                attention_mask=enc["attention_mask"].to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
            )
            answers.extend(t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True))
    return answers


def exact_match(
    model: nn.Module,
    tokenizer,
    examples: Sequence,
    max_new_tokens: int,
    *,
    batch_size: int = 64,
) -> float:
    """Share of examples whose greedy answer equals the target (both stripped of whitespace).

    Parameters
    ----------
    model : transformers encoder-decoder model
    tokenizer : transformers tokenizer
    examples : sequence of (source, target) pairs or objects with ``.source`` and ``.target``
        E.g. ``Zoo.heldout_examples("add")``.
    max_new_tokens : int
        Generation budget per answer; must cover the longest target plus the end token.
    batch_size : int
        Sources per ``generate`` call.

    Returns
    -------
    float
        Accuracy in [0, 1].

    Raises
    ------
    ValueError
        Empty or malformed examples, a decoder-only model, or non-positive sizes.

    Examples
    --------
    >>> pairs = [("sort: 3 1 2", "1 2 3")]
    >>> exact_match(model, tokenizer, pairs, max_new_tokens=8)  # doctest: +SKIP
    1.0
    """
    pairs = _pairs(examples)
    answers = greedy_answers(
        model, tokenizer, [s for s, _ in pairs], max_new_tokens, batch_size=batch_size
    )
    hits = sum(answer == target.strip() for answer, (_, target) in zip(answers, pairs, strict=True))
    return hits / len(pairs)


# ---------------------------------------------------------------------------------------------
# Sliding-window perplexity (the transformers guide "Perplexity of fixed-length models") and
# ROUGE-1 (the Switch experiment's metric in the serving paper).
__all__ += ["perplexity_sliding_window", "rouge1"]


def _windows(n_tokens: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """``(begin, end, n_targets)`` of each window, as in the transformers perplexity guide."""
    windows = []
    prev_end = 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + max_length, n_tokens)
        windows.append((begin, end, end - prev_end))
        prev_end = end
        if end == n_tokens:
            break
    return windows


def perplexity_sliding_window(
    model: nn.Module,
    token_ids: Sequence[int] | np.ndarray | torch.Tensor,
    max_length: int,
    stride: int,
    *,
    batch_size: int = 8,
) -> float:
    """Perplexity of a causal LM with a sliding window, as the transformers guide computes it.

    Windows of ``max_length`` tokens start every ``stride`` tokens; each window scores only
    the tokens that no earlier window scored (the others are labelled -100 and ignored), so
    every token after the first is predicted once, with up to ``max_length - 1`` tokens of
    context. ``stride == max_length`` scores disjoint chunks (and keeps the last, shorter one);
    a smaller stride gives each prediction more context and a lower, better estimate.

    Parameters
    ----------
    model : transformers causal LM
        Anything whose ``model(input_ids=...)`` returns ``.logits`` (B, T, V). Its train/eval
        mode is restored afterwards.
    token_ids : (N,) sequence of int
        Token stream, at least 2 tokens.
    max_length : int
        Window length (>= 2), e.g. the model's context size.
    stride : int
        Step between window starts, in ``[1, max_length]``.
    batch_size : int
        Windows of equal length per forward pass.

    Returns
    -------
    float
        ``exp(sum of NLL / number of predicted tokens)``.

    Raises
    ------
    ValueError
        ``max_length < 2``, ``stride`` outside ``[1, max_length]``, fewer than 2 tokens,
        ``batch_size < 1``, or ids that are not a 1-D integer sequence.

    Examples
    --------
    >>> round(perplexity_sliding_window(model, token_ids, max_length=16, stride=8), 1)
    65.5
    """
    ids = _as_ids(token_ids)
    if max_length < 2:
        raise ValueError(
            f"max_length must be >= 2 (one context token, one target), got {max_length}"
        )
    if not 1 <= stride <= max_length:
        raise ValueError(f"stride must lie in [1, max_length={max_length}], got {stride}")
    if ids.numel() < 2:
        raise ValueError(f"need at least 2 tokens to predict one, got {ids.numel()}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = _device(model)
    total, count = 0.0, 0
    windows = _windows(ids.numel(), max_length, stride)
    with _eval_mode(model):
        # Consecutive windows of one length go through the model together.
        start = 0
        while start < len(windows):
            length = windows[start][1] - windows[start][0]
            stop = start
            while (
                stop < len(windows)
                and stop - start < batch_size
                and windows[stop][1] - windows[stop][0] == length
            ):
                stop += 1
            group = windows[start:stop]
            batch = torch.stack([ids[b:e] for b, e, _ in group]).to(device)
            targets = batch[:, 1:].clone()
            for row, (_, _, n_targets) in enumerate(group):
                # Window positions before length - n_targets were scored by an earlier window:
                # label them -100. targets[k] is the label of window position k + 1.
                targets[row, : max(0, length - n_targets - 1)] = -100
            logits = model(input_ids=batch).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                targets.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            total += float(nll)
            count += int((targets != -100).sum())
            start = stop
    return math.exp(total / count)


def rouge1(
    model: nn.Module,
    tokenizer,
    examples: Sequence,
    max_new_tokens: int,
    *,
    batch_size: int = 64,
) -> float:
    """Mean ROUGE-1 F1 of greedy answers against the targets (the Switch paper's SAMSum metric).

    Uses the ``rouge-score`` package (Google's reference implementation, default tokenizer:
    lower-cased alphanumeric tokens, no stemming), from the ``merging`` extra.

    Parameters
    ----------
    model : transformers encoder-decoder model
    tokenizer : transformers tokenizer
    examples : sequence of (source, target) pairs or objects with ``.source`` and ``.target``
    max_new_tokens : int
        Generation budget per answer.
    batch_size : int
        Sources per ``generate`` call.

    Returns
    -------
    float
        Mean F1 in [0, 1].

    Raises
    ------
    ValueError
        Empty or malformed examples, a decoder-only model, or non-positive sizes.
    MissingExtraError
        rouge-score is not installed (``pip install 'moe-sr-lab[merging]'``).

    Examples
    --------
    >>> rouge1(model, tokenizer, [("sort: 3 1 2", "1 2 3")], max_new_tokens=8)  # doctest: +SKIP
    1.0
    """
    # Before generating, so a missing extra fails at once.
    rouge_scorer = require("rouge_score.rouge_scorer", "ROUGE-1")
    pairs = _pairs(examples)
    answers = greedy_answers(
        model, tokenizer, [s for s, _ in pairs], max_new_tokens, batch_size=batch_size
    )
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    scores = [
        scorer.score(target, answer)["rouge1"].fmeasure
        for answer, (_, target) in zip(answers, pairs)
    ]
    return float(np.mean(scores))
