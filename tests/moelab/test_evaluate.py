"""Evaluation: perplexity over disjoint chunks against a by-hand NLL, exact match on toy cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    MixtralConfig,
    MixtralForCausalLM,
    PreTrainedTokenizerFast,
    SwitchTransformersConfig,
    SwitchTransformersForConditionalGeneration,
)

from moelab.evaluate import exact_match, greedy_answers, perplexity

VOCAB = 40


@pytest.fixture(scope="module")
def causal_lm() -> MixtralForCausalLM:
    torch.manual_seed(0)
    config = MixtralConfig(
        vocab_size=VOCAB, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, num_local_experts=4,
        num_experts_per_tok=2, max_position_embeddings=64,
    )  # fmt: skip
    return MixtralForCausalLM(config).eval()


@pytest.fixture(scope="module")
def word_tokenizer() -> PreTrainedTokenizerFast:
    """Whitespace word-level tokenizer over a fixed vocabulary, T5-style specials."""
    words = ["<pad>", "</s>", "<unk>"] + [str(i) for i in range(10)] + list("abcdefgh") + ["add:"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


@pytest.fixture(scope="module")
def seq2seq(word_tokenizer: PreTrainedTokenizerFast) -> SwitchTransformersForConditionalGeneration:
    torch.manual_seed(1)
    config = SwitchTransformersConfig(
        vocab_size=len(word_tokenizer), d_model=16, d_kv=8, d_ff=24, num_layers=2,
        num_decoder_layers=2, num_heads=2, num_experts=4, expert_capacity=16,
        num_sparse_encoder_layers=1, num_sparse_decoder_layers=1, decoder_start_token_id=0,
        pad_token_id=0, eos_token_id=1, router_jitter_noise=0.0,
    )  # fmt: skip
    return SwitchTransformersForConditionalGeneration(config).eval()


def _nll_by_hand(model: torch.nn.Module, ids: torch.Tensor, chunk_len: int, n_chunks: int) -> float:
    """Mean next-token NLL, one chunk at a time, from log-softmax and explicit indexing."""
    total, count = 0.0, 0
    with torch.no_grad():
        for c in range(n_chunks):
            chunk = ids[c * chunk_len : (c + 1) * chunk_len]
            logp = torch.log_softmax(model(input_ids=chunk[None]).logits[0].double(), dim=-1)
            for t in range(chunk_len - 1):
                total -= float(logp[t, chunk[t + 1]])
                count += 1
    return total / count


def test_perplexity_is_exp_mean_nll(causal_lm: MixtralForCausalLM) -> None:
    ids = torch.randint(0, VOCAB, (53,), generator=torch.Generator().manual_seed(0))
    # 53 // 16 = 3 chunks; the 5 trailing tokens are dropped.
    expected = math.exp(_nll_by_hand(causal_lm, ids, 16, 3))
    assert perplexity(causal_lm, ids, chunk_len=16) == pytest.approx(expected, rel=1e-5)
    expected_two = math.exp(_nll_by_hand(causal_lm, ids, 16, 2))
    got = perplexity(causal_lm, ids.tolist(), chunk_len=16, max_chunks=2, batch_size=1)
    assert got == pytest.approx(expected_two, rel=1e-5)


def test_perplexity_matches_transformers_loss(causal_lm: MixtralForCausalLM) -> None:
    ids = torch.randint(0, VOCAB, (64,), generator=torch.Generator().manual_seed(1))
    chunks = ids.view(4, 16)
    with torch.no_grad():
        losses = [causal_lm(input_ids=c[None], labels=c[None]).loss.item() for c in chunks]
    # Equal-length chunks: the mean of per-chunk mean losses is the mean over all tokens.
    assert perplexity(causal_lm, np.asarray(ids), 16) == pytest.approx(
        math.exp(float(np.mean(losses))), rel=1e-5
    )


def test_perplexity_does_not_depend_on_batch_size(causal_lm: MixtralForCausalLM) -> None:
    ids = torch.randint(0, VOCAB, (96,), generator=torch.Generator().manual_seed(2))
    ref = perplexity(causal_lm, ids, 12, batch_size=1)
    assert perplexity(causal_lm, ids, 12, batch_size=3) == pytest.approx(ref, rel=1e-6)
    assert perplexity(causal_lm, ids, 12, batch_size=100) == pytest.approx(ref, rel=1e-6)


def test_perplexity_restores_training_mode(causal_lm: MixtralForCausalLM) -> None:
    causal_lm.train()
    try:
        perplexity(causal_lm, list(range(20)), 10)
        assert causal_lm.training
    finally:
        causal_lm.eval()


def test_perplexity_rejects_bad_input(causal_lm: MixtralForCausalLM) -> None:
    ids = list(range(30))
    with pytest.raises(ValueError, match=r"chunk_len=64 is larger than the 30 tokens given"):
        perplexity(causal_lm, ids, 64)
    with pytest.raises(ValueError, match=r"chunk_len must be >= 2"):
        perplexity(causal_lm, ids, 1)
    with pytest.raises(ValueError, match=r"max_chunks must be >= 1 or None"):
        perplexity(causal_lm, ids, 10, max_chunks=0)
    with pytest.raises(ValueError, match=r"batch_size must be >= 1"):
        perplexity(causal_lm, ids, 10, batch_size=0)
    with pytest.raises(ValueError, match=r"1-D sequence of integer token ids, got shape \(2, 15\)"):
        perplexity(causal_lm, torch.zeros(2, 15, dtype=torch.long), 10)
    with pytest.raises(ValueError, match=r"dtype torch.float32"):
        perplexity(causal_lm, torch.zeros(30), 10)


def _generate_directly(model, tokenizer, sources: list[str], max_new_tokens: int) -> list[str]:
    enc = tokenizer(sources, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
    return [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]


SOURCES = ["add: 1 2", "add: 3 4 5", "a b c", "h g", "add: 9", "c c c d", "e", "f a"]


def test_greedy_answers_match_generate(seq2seq, word_tokenizer) -> None:
    expected = [_generate_directly(seq2seq, word_tokenizer, [s], 5)[0] for s in SOURCES]
    assert greedy_answers(seq2seq, word_tokenizer, SOURCES, 5, batch_size=3) == expected


def test_exact_match_counts_equal_answers(seq2seq, word_tokenizer) -> None:
    answers = greedy_answers(seq2seq, word_tokenizer, SOURCES, 5)
    # Targets equal to the greedy answer for the first 3 examples, different for the other 5.
    examples = [(s, a) for s, a in zip(SOURCES[:3], answers[:3], strict=True)]
    examples += [(s, a + " h h") for s, a in zip(SOURCES[3:], answers[3:], strict=True)]
    assert exact_match(seq2seq, word_tokenizer, examples, 5) == pytest.approx(3 / 8)
    assert exact_match(seq2seq, word_tokenizer, examples[:3], 5) == 1.0
    # Surrounding whitespace in a target does not matter.
    padded = [(s, f"  {t} ") for s, t in examples[:2]]
    assert exact_match(seq2seq, word_tokenizer, padded, 5) == 1.0


def test_exact_match_accepts_objects_with_source_and_target(seq2seq, word_tokenizer) -> None:
    from moelab.corpora import Example

    answer = greedy_answers(seq2seq, word_tokenizer, ["a b"], 4)[0]
    assert exact_match(seq2seq, word_tokenizer, [Example("a b", answer)], 4) == 1.0


def test_exact_match_rejects_bad_input(seq2seq, word_tokenizer, causal_lm) -> None:
    with pytest.raises(ValueError, match="examples is empty"):
        exact_match(seq2seq, word_tokenizer, [], 4)
    with pytest.raises(TypeError, match=r"\(source, target\) pair or have .source and .target"):
        exact_match(seq2seq, word_tokenizer, ["just a string"], 4)
    with pytest.raises(ValueError, match="need an encoder-decoder model, got MixtralForCausalLM"):
        exact_match(causal_lm, word_tokenizer, [("a", "b")], 4)
    with pytest.raises(ValueError, match="max_new_tokens and batch_size must be >= 1"):
        exact_match(seq2seq, word_tokenizer, [("a", "b")], 0)
