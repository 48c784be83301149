"""Byte-level BPE tokenizer of a zoo, trained with ``tokenizers`` and wrapped for transformers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from labcore.registry import Registry

__all__ = ["SPECIAL_TOKENS", "train_tokenizer"]

#: Special tokens, in id order: padding (and Switch's decoder start), begin and end of text,
#: unknown. Byte-level BPE never needs ``<unk>``, but transformers expects one to exist.
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<s>", "</s>", "<unk>")

TokenizerStyle = Literal["causal", "seq2seq"]

# Where each style puts its special tokens (a template of ``TemplateProcessing``).
_TEMPLATES: Registry[str] = Registry("tokenizer style", plural="styles", sort=False)
_TEMPLATES.add("causal", "<s> $A")
_TEMPLATES.add("seq2seq", "$A </s>")


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, *, style: TokenizerStyle
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts``.

    Digits are split one per token (as in Llama and Mixtral's tokenizer), so generated arithmetic
    is learnable digit by digit. A causal tokenizer prepends ``<s>`` like Mixtral's; a seq2seq
    tokenizer appends ``</s>`` like T5 and Switch Transformers.

    Parameters
    ----------
    texts : iterable of str
        Training text; only the train splits of the corpora, never held-out text.
    vocab_size : int
        Upper bound on the vocabulary (BPE stops earlier when no pair is left to merge).
    style : {"causal", "seq2seq"}
        Where the special tokens go.

    Returns
    -------
    PreTrainedTokenizerFast
        Ready for ``save_pretrained``; ``AutoTokenizer.from_pretrained`` reloads it.

    Raises
    ------
    ValueError
        Unknown style, or a vocabulary too small for the 256 byte symbols plus specials.
    """
    template = _TEMPLATES.get(style)
    n_min = 256 + len(SPECIAL_TOKENS)
    if vocab_size < n_min:
        raise ValueError(
            f"vocab_size={vocab_size} cannot hold the 256 byte symbols and {len(SPECIAL_TOKENS)} "
            f"special tokens; use at least {n_min}"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    special_ids = [(tok, SPECIAL_TOKENS.index(tok)) for tok in ("<s>", "</s>")]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=special_ids
    )
    pad, bos, eos, unk = SPECIAL_TOKENS
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=pad,
        bos_token=bos,
        eos_token=eos,
        unk_token=unk,
        # Byte-level decoding is exact; the default clean-up would rewrite " ," to ",".
        clean_up_tokenization_spaces=False,
        padding_side="right" if style == "seq2seq" else "left",
    )
