"""Offline zoo of tiny trained mixture-of-experts models.

No model hub is needed: each zoo is trained here, deterministically from its :class:`ZooSpec`,
on corpora every Python install carries (see :mod:`moelab.corpora`). A base model is pre-trained
on a mixture of domains, then fully fine-tuned into one variant per domain, so the variants share
the base's architecture and start from its weights, like fine-tunes of Mixtral-8x7B or
Switch-Base-8.

Zoos
    ``"mixtral-tiny"``  ``MixtralForCausalLM``, 8 experts top-2; variants prose, code,
    arithmetic, sorting; scored by held-out perplexity.
    ``"switch-tiny"``   ``SwitchTransformersForConditionalGeneration``, 8 experts, every other
    block sparse; variants add, sort, reverse, dedup; scored by exact match.

Opening
    load_zoo, ensure_zoo, build_zoo, build_zoos, Zoo, ZooCacheWarning, BUILD_BUDGET_SECONDS
Recipes
    ZooSpec, ZOO_SPECS, get_spec, spec_key, build_environment, ZOO_FORMAT_VERSION
    (``_spec``); get_recipe, exact_match_accepted, parameter_breakdown: how a family is
    checked, trained and accepted, and which variants it takes (``_recipes``);
    train_tokenizer, SPECIAL_TOKENS: the byte-level BPE tokenizer (``_tokenizer``)
Cache
    zoo_root, zoo_dir, ZOO_DIR_ENV (``MOELAB_ZOO_DIR``), file_hashes (``_store``); a build is
    published with :func:`labcore.atomic.atomic_dir`
Training
    train_threads, train_jobs (``MOELAB_TRAIN_THREADS``, ``MOELAB_TRAIN_JOBS``), the
    optimizer loop (``_training``); the process pool of training jobs (``_jobs``)

A zoo lives in ``<root>/<name>-v<format>-<spec hash>/`` with ``base/``, ``variants/<name>/``
(``save_pretrained`` folders, safetensors), ``tokenizer/``, ``heldout.json`` and
``manifest.json`` (recipe, versions, SHA-256 per file, loss curves, evaluation, parameter
breakdown experts vs non-experts).

Examples
--------
>>> from moelab.zoo import load_zoo
>>> zoo = load_zoo("mixtral-tiny")  # doctest: +SKIP
>>> zoo.manifest["evaluation"]["acceptance"]["passed"]  # doctest: +SKIP
True
"""

from __future__ import annotations

from moelab.zoo._recipes import exact_match_accepted, get_recipe, parameter_breakdown
from moelab.zoo._spec import (
    ZOO_FORMAT_VERSION,
    ZOO_SPECS,
    ZooSpec,
    build_environment,
    get_spec,
    spec_key,
)
from moelab.zoo._store import ZOO_DIR_ENV, file_hashes, zoo_dir, zoo_root
from moelab.zoo._tokenizer import SPECIAL_TOKENS, train_tokenizer
from moelab.zoo._training import TRAIN_JOBS_ENV, TRAIN_THREADS_ENV, train_jobs, train_threads
from moelab.zoo._zoo import (
    BUILD_BUDGET_SECONDS,
    Zoo,
    ZooCacheWarning,
    build_zoo,
    build_zoos,
    ensure_zoo,
    load_zoo,
)

__all__ = [
    "BUILD_BUDGET_SECONDS",
    "SPECIAL_TOKENS",
    "TRAIN_JOBS_ENV",
    "TRAIN_THREADS_ENV",
    "ZOO_DIR_ENV",
    "ZOO_FORMAT_VERSION",
    "ZOO_SPECS",
    "Zoo",
    "ZooCacheWarning",
    "ZooSpec",
    "build_environment",
    "build_zoo",
    "build_zoos",
    "ensure_zoo",
    "exact_match_accepted",
    "file_hashes",
    "get_recipe",
    "get_spec",
    "load_zoo",
    "parameter_breakdown",
    "spec_key",
    "train_jobs",
    "train_threads",
    "train_tokenizer",
    "zoo_dir",
    "zoo_root",
]
