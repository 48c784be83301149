"""compare_methods on small stand-in zoos: rows, true memory, resumability, claims, figures."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from moelab.compare import (
    COLUMNS,
    ServingMethod,
    claims_table,
    compare_methods,
    get_serving_method,
    register_serving_method,
    summarize,
)
from moelab.evaluate import perplexity, perplexity_sliding_window
from moelab.families import get_family
from moelab.reconfigure import storage_bytes
from moelab.viz import quality_memory_figure, scalability_figure


@dataclass
class StandInZoo:
    """Duck-typed :class:`moelab.zoo.Zoo` over tiny random models (no training)."""

    base: torch.nn.Module
    variants: dict
    root: Path
    metric: str
    name: str = "stand-in"
    tokenizer: object = None
    examples: dict = field(default_factory=dict)

    @property
    def tasks(self):
        return tuple(self.variants)

    @property
    def manifest(self):
        return {
            "spec": {"eval_chunk_len": 16, "eval_max_chunks": 3, "eval_max_new_tokens": 4},
            "evaluation": {"metric": self.metric},
        }

    def load_model(self, variant="base"):
        return copy.deepcopy(self.base if variant == "base" else self.variants[variant])

    def heldout_ids(self, tenant):
        seed = self.tasks.index(tenant)
        return torch.randint(1, 64, (64,), generator=torch.Generator().manual_seed(seed)).tolist()

    def heldout_examples(self, tenant):
        return self.examples[tenant]

    def load_tokenizer(self):
        return self.tokenizer


def perturbed(model, seed, scale=0.05):
    out = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * scale)
    return out


@pytest.fixture
def mixtral_zoo(tiny_model, tmp_path):
    base = tiny_model("mixtral", 0)
    variants = {name: perturbed(base, i + 1) for i, name in enumerate("abcd")}
    return StandInZoo(base, variants, tmp_path, "perplexity")


FEW = ("separate", "consolidated", "average", "ties")


# Bytes of the stand-in zoo's tiny Mixtral (conftest: vocab 64, hidden 16, FFN 24, 2 layers,
# 2 heads of 8 with 1 key-value head, 4 experts), float32, counted by hand:
#   non-expert: embed 64x16 + lm_head 64x16 + per layer (q 16x16 + k 8x16 + v 8x16 + o 16x16
#   + router 4x16 + 2 norms of 16) x 2 + final norm 16 = 1024 + 1024 + 864 x 2 + 16 = 3792 floats
NON_EXPERT_BYTES = 3792 * 4  # 15168
#   one expert slot: gate_up 48x16 + down 16x24 = 1152 floats
SLOT_BYTES = 1152 * 4  # 4608
#   one model: 3792 + 8 slots x 1152 = 13008 floats
ONE_MODEL_BYTES = 13008 * 4  # 52032
#   consolidated extras: rotary inv_freq and original_inv_freq (4 floats each) and one int64
#   index per expert and layer for each tenant and for the live table the experts read:
#   32 + (3 tenants + 1 live) x 2 layers x 4 x 8 = 32 + 256
SMALL_BYTES_3 = 32 + 256


def test_rows_memory_and_quality(mixtral_zoo, tmp_path):
    table = compare_methods(
        mixtral_zoo, tenants=(2, 3), budgets=(1.0, 0.0), methods=FEW, progress=False
    )
    assert tuple(table.columns) == COLUMNS
    # separate, average, ties: 1 config each; consolidated: 2 budgets -> 5 configs per N.
    assert len(table) == 5 * 2 + 5 * 3
    assert storage_bytes(list(mixtral_zoo.base.parameters())) == ONE_MODEL_BYTES
    merged = table.query("method == 'average' and tenants == 3")
    assert (merged["total_bytes"] == ONE_MODEL_BYTES).all()
    separate = table.query("method == 'separate' and tenants == 3")
    assert (separate["total_bytes"] == 3 * ONE_MODEL_BYTES).all()
    # Nothing shared: the consolidated model scores exactly what each tenant's own model scores.
    nothing = table.query("method == 'consolidated' and tenants == 3 and shared_fraction == 0")
    assert list(nothing["quality"]) == list(separate["quality"])
    # Three whole models plus buffers and index tables: 3 x 52032 + 224 = 156320.
    assert (nothing["total_bytes"] == 3 * ONE_MODEL_BYTES + SMALL_BYTES_3).all()
    every = table.query("method == 'consolidated' and tenants == 3 and shared_fraction == 1")
    assert (every["n_shared"] == 8).all()
    # Three non-expert sets, each of the 8 slots once: 3 x 15168 + 8 x 4608 + 224 = 82592.
    assert (every["total_bytes"] == 3 * NON_EXPERT_BYTES + 8 * SLOT_BYTES + SMALL_BYTES_3).all()
    own = perplexity(mixtral_zoo.variants["b"], mixtral_zoo.heldout_ids("b"), 16, 3)
    assert separate.set_index("tenant")["quality"]["b"] == pytest.approx(own, rel=1e-12)


def test_results_file_resumes_and_skips_finished_configs(mixtral_zoo, tmp_path):
    path = tmp_path / "out" / "results.csv"
    first = compare_methods(
        mixtral_zoo,
        tenants=(2,),
        budgets=(1.0,),
        methods=("separate", "average"),
        results=path,
        progress=False,
    )
    on_disk = pd.read_csv(path)
    assert len(on_disk) == len(first) == 4
    calls = []
    original = get_serving_method("separate")

    def counting(*args):
        calls.append(args[1])
        return original.build(*args)

    register_serving_method(ServingMethod("separate", False, counting), overwrite=True)
    try:
        again = compare_methods(
            mixtral_zoo,
            tenants=(2, 3),
            budgets=(1.0,),
            methods=("separate", "average"),
            results=path,
            progress=False,
        )
    finally:
        register_serving_method(original, overwrite=True)
    assert calls == [["a", "b", "c"]]  # N=2 was finished and skipped
    assert len(pd.read_csv(path)) == len(again) == 4 + 6
    pd.testing.assert_frame_equal(again.iloc[:4].reset_index(drop=True), first, check_dtype=False)
    assert not list(path.parent.glob(".*.tmp"))


def flat_expert(model, slot):
    return torch.cat(
        [t.reshape(-1) for t in get_family("mixtral").get_expert(model, slot).values()]
    )


def test_owner_policies_run_separately(mixtral_zoo):
    table = compare_methods(
        mixtral_zoo,
        tenants=(2,),
        budgets=(1.0,),
        methods=("consolidated", "average"),
        owner=("round_robin", "mean"),
        progress=False,
    )
    assert list(dict.fromkeys(table["config"])) == [
        "consolidated|N=2|shared=1|owner=round_robin",
        "consolidated|N=2|shared=1|owner=mean",
        "average|N=2",
    ]
    assert list(table["owner"]) == ["round_robin"] * 2 + ["mean"] * 2 + ["", ""]
    # What each policy must serve, built here: every slot shared; round robin gives the slots,
    # closest pair first, to a, b, a, b, ...; mean stores the average of a's and b's expert.
    family = get_family("mixtral")
    a, b = mixtral_zoo.variants["a"], mixtral_zoo.variants["b"]
    ranked = sorted(
        family.expert_slots(a), key=lambda s: float((flat_expert(a, s) - flat_expert(b, s)).norm())
    )
    round_robin = {slot: (a, b)[rank % 2] for rank, slot in enumerate(ranked)}
    quality = table.query("method == 'consolidated'").set_index(["owner", "tenant"])["quality"]
    for name, own in (("a", a), ("b", b)):
        by_owner, by_mean = copy.deepcopy(own), copy.deepcopy(own)
        for slot, owner in round_robin.items():
            family.set_expert(by_owner, slot, family.get_expert(owner, slot))
            ea, eb = family.get_expert(a, slot), family.get_expert(b, slot)
            family.set_expert(by_mean, slot, {k: (ea[k] + eb[k]) / 2 for k in ea})
        ids = mixtral_zoo.heldout_ids(name)
        assert quality["round_robin", name] == pytest.approx(
            perplexity(by_owner, ids, 16, 3), rel=1e-9
        )
        assert quality["mean", name] == pytest.approx(perplexity(by_mean, ids, 16, 3), rel=1e-9)


def test_bad_arguments(mixtral_zoo, tmp_path):
    with pytest.raises(ValueError, match=r"tenants must be counts in \[2, 4\]"):
        compare_methods(mixtral_zoo, tenants=(5,), progress=False)
    with pytest.raises(ValueError, match="unknown serving method 'soup'"):
        compare_methods(mixtral_zoo, methods=("soup",), progress=False)
    with pytest.raises(ValueError, match="unknown owner policy 'eldest'"):
        compare_methods(mixtral_zoo, owner="eldest", progress=False)
    with pytest.raises(ValueError, match=r"each in \[0, 1\]"):
        compare_methods(mixtral_zoo, budgets=(1.5,), progress=False)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"x": [1]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="is not a compare_methods table"):
        compare_methods(
            mixtral_zoo, tenants=(2,), methods=("separate",), results=bad, progress=False
        )


def test_exact_match_on_a_seq2seq_zoo(tiny_model, tmp_path):
    from moelab.evaluate import exact_match, greedy_answers
    from moelab.zoo import train_tokenizer

    texts = [f"add: {i} + {j} {i + j}" for i in range(20) for j in range(5)]
    tokenizer = train_tokenizer(texts, 300, style="seq2seq")
    base = tiny_model(
        "switch_transformers",
        0,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    variants = {name: perturbed(base, i + 1, scale=0.3) for i, name in enumerate(("add", "sort"))}
    # A random model solves no task, so the targets are made here: each tenant's first three
    # targets are its own greedy answers, the fourth is text no model writes. Its own model
    # then scores exactly 3/4, and the other tenant's model scores less (checked), so serving
    # a tenant with the wrong weights shows in the score.
    examples = {}
    for name, model in variants.items():
        sources = [f"{name}: {i} {j}" for i, j in ((1, 2), (4, 5), (7, 3), (2, 8))]
        answers = greedy_answers(model, tokenizer, sources, 4, batch_size=256)
        examples[name] = [*zip(sources[:3], answers[:3]), (sources[3], "no such answer")]
    for name, other in (("add", "sort"), ("sort", "add")):
        assert exact_match(variants[other], tokenizer, examples[name], 4, batch_size=256) < 0.75
    zoo = StandInZoo(
        base, variants, tmp_path, "exact_match", tokenizer=tokenizer, examples=examples
    )
    table = compare_methods(
        zoo, tenants=(2,), budgets=(0.0,), methods=("separate", "consolidated"), progress=False
    )
    assert set(table["metric"]) == {"exact_match"}
    quality = table.set_index(["method", "tenant"])["quality"]
    assert quality["separate"].to_dict() == {"add": 0.75, "sort": 0.75}
    assert quality["consolidated"].to_dict() == {"add": 0.75, "sort": 0.75}
    rouge = compare_methods(
        zoo, tenants=(2,), methods=("separate",), quality="rouge1", progress=False
    )
    assert set(rouge["metric"]) == {"rouge1"}


def synthetic(metric: str, values: dict) -> pd.DataFrame:
    rows = []
    for (method, fraction, *owner), per_n in values.items():
        for n, q in per_n.items():
            for i in range(n):
                rows.append(
                    {
                        "config": f"{method}|{n}|{fraction}|{owner}",
                        "method": method,
                        "tenants": n,
                        "tenant_set": "x",
                        "shared_fraction": fraction,
                        "owner": owner[0]
                        if owner
                        else ("" if pd.isna(fraction) else "round_robin"),
                        "n_shared": 0,
                        "total_bytes": 1000 * n,
                        "tenant": f"t{i}",
                        "metric": metric,
                        "quality": q,
                    }
                )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def test_claims_table_for_perplexity_and_accuracy():
    ppl = synthetic(
        "perplexity",
        {
            ("separate", np.nan): {2: 10.0, 3: 10.0},
            ("consolidated", 1.0): {2: 11.0, 3: 13.0},
            ("consolidated", 0.5): {2: 10.4, 3: 10.6},
            ("average", np.nan): {2: 12.0, 3: 12.5},
        },
    )
    claims = claims_table(ppl).set_index(["tenants", "claim"])["holds"]
    assert set(claims_table(ppl)["owner"]) == {"round_robin"}
    assert claims[(2, "all shared beats average")] and not claims[(3, "all shared beats average")]
    assert claims[(2, "half shared within 5% of separate")]
    ratios = claims_table(ppl).set_index(["tenants", "claim"])["ratio"]
    assert ratios[(3, "half shared within 5% of separate")] == pytest.approx(10.6 / 10.0)
    assert not claims[(3, "half shared within 5% of separate")]
    acc = synthetic(
        "exact_match",
        {
            ("separate", np.nan): {2: 0.8},
            ("consolidated", 1.0): {2: 0.5},
            ("consolidated", 0.5): {2: 0.77},
            ("ties", np.nan): {2: 0.4},
        },
    )
    claims = claims_table(acc).set_index("claim")["holds"]
    assert claims["all shared beats ties"] and claims["half shared within 5% of separate"]
    with pytest.raises(ValueError, match="needs 'consolidated' rows"):
        claims_table(acc[acc["method"] != "consolidated"])
    with pytest.raises(ValueError, match="needs 'consolidated' with 2 tenants at 50% shared"):
        claims_table(acc[acc["shared_fraction"] != 0.5])
    # Each owner policy is judged on its own.
    two = synthetic(
        "exact_match",
        {
            ("separate", np.nan): {2: 0.8},
            ("consolidated", 1.0, "round_robin"): {2: 0.5},
            ("consolidated", 0.5, "round_robin"): {2: 0.70},
            ("consolidated", 1.0, "mean"): {2: 0.6},
            ("consolidated", 0.5, "mean"): {2: 0.78},
        },
    )
    claims = claims_table(two).set_index(["owner", "claim"])["holds"]
    assert not claims[("round_robin", "half shared within 5% of separate")]
    assert claims[("mean", "half shared within 5% of separate")]
    assert claims[("mean", "half shared beats all shared")]  # 0.78 > 0.6
    assert "all shared beats without_reconfiguration" not in set(claims_table(two)["claim"])
    # Reconfiguration and the budget, judged on the metric's own direction.
    swaps = synthetic(
        "perplexity",
        {
            ("separate", np.nan): {2: 10.0},
            ("consolidated", 1.0): {2: 11.0},
            ("consolidated", 0.5): {2: 11.5},
            ("without_reconfiguration", 1.0): {2: 14.0},
        },
    )
    claims = claims_table(swaps).set_index("claim")
    assert claims.loc["all shared beats without_reconfiguration", "holds"]
    assert claims.loc["all shared beats without_reconfiguration", "theirs"] == 14.0
    assert not claims.loc["half shared beats all shared", "holds"]  # 11.5 is worse than 11.0


def test_summaries_and_figures():
    table = synthetic(
        "perplexity",
        {
            ("separate", np.nan): {2: 10.0, 3: 10.0},
            ("consolidated", 1.0): {2: 11.0, 3: 13.0},
        },
    )
    summary = summarize(table)
    assert list(summary["label"]) == [
        "separate",
        "separate",
        "consolidated (100% shared, round_robin)",
        "consolidated (100% shared, round_robin)",
    ]
    assert list(summary["total_mb"]) == [0.002, 0.003, 0.002, 0.003]
    assert isinstance(quality_memory_figure(table), go.Figure)
    fig = scalability_figure(table)
    assert [list(trace.x) for trace in fig.data] == [[2, 3], [2, 3]]
    only = scalability_figure(table, methods=["consolidated"])
    assert [trace.name for trace in only.data] == ["consolidated (100% shared, round_robin)"]
    with pytest.raises(ValueError, match="no rows to draw"):
        quality_memory_figure(table, methods=["ties"])


# ----------------------------------------------------------------- evaluation additions
def reference_sliding_window(model, ids, max_length, stride):
    """The loop of transformers' "Perplexity of fixed-length models" guide, with the model's loss."""
    ids = torch.tensor(ids)[None]
    nll, count, prev_end = 0.0, 0, 0
    for begin in range(0, ids.shape[1], stride):
        end = min(begin + max_length, ids.shape[1])
        window = ids[:, begin:end]
        labels = window.clone()
        labels[:, : -(end - prev_end)] = -100
        with torch.no_grad():
            loss = model(input_ids=window, labels=labels).loss
        predicted = int((labels[:, 1:] != -100).sum())  # the model shifts labels by one
        nll += float(loss) * predicted
        count += predicted
        prev_end = end
        if end == ids.shape[1]:
            break
    return float(np.exp(nll / count))


@pytest.mark.parametrize(("max_length", "stride"), [(16, 8), (16, 5), (12, 12), (16, 1)])
def test_sliding_window_matches_the_transformers_guide(tiny_model, max_length, stride):
    model = tiny_model("mixtral", 3)
    ids = torch.randint(1, 64, (70,), generator=torch.Generator().manual_seed(1)).tolist()
    ours = perplexity_sliding_window(model, ids, max_length, stride, batch_size=3)
    assert ours == pytest.approx(reference_sliding_window(model, ids, max_length, stride), rel=1e-5)


def test_sliding_window_with_stride_equal_to_window_is_disjoint_chunks(tiny_model):
    model = tiny_model("mixtral", 3)
    ids = torch.randint(1, 64, (64,), generator=torch.Generator().manual_seed(2)).tolist()
    assert perplexity_sliding_window(model, ids, 16, 16) == pytest.approx(
        perplexity(model, ids, 16), rel=1e-6
    )
    with pytest.raises(ValueError, match=r"stride must lie in \[1, max_length=16\], got 17"):
        perplexity_sliding_window(model, ids, 16, 17)
    with pytest.raises(ValueError, match="max_length must be >= 2"):
        perplexity_sliding_window(model, ids, 1, 1)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        perplexity_sliding_window(model, ids[:1], 16, 8)


def test_rouge1_averages_the_reference_f1(monkeypatch):
    from moelab import evaluate

    answers = ["1 2 4", "3 2 1", "7"]
    monkeypatch.setattr(evaluate, "greedy_answers", lambda *args, **kwargs: answers)
    examples = [("sort: 2 1 3", "1 2 3"), ("reverse: 1 2 3", "3 2 1"), ("add: 3 + 4", "7 0")]
    # F1: 2/3 (two of three unigrams), 1, 2/3 (precision 1, recall 1/2).
    score = evaluate.rouge1(None, None, examples, max_new_tokens=4)
    assert score == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
