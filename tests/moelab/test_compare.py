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
    claims_table,
    compare_methods,
    quality_memory_figure,
    scalability_figure,
    summarize,
)
from moelab.evaluate import perplexity, perplexity_sliding_window
from moelab.reconfigure import storage_bytes


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


def test_rows_memory_and_quality(mixtral_zoo, tmp_path):
    table = compare_methods(mixtral_zoo, tenants=(2, 3), budgets=(1.0, 0.0), methods=FEW, progress=False)
    assert tuple(table.columns) == COLUMNS
    # separate, average, ties: 1 config each; consolidated: 2 budgets -> 5 configs per N.
    assert len(table) == 5 * 2 + 5 * 3
    one_model = storage_bytes(list(mixtral_zoo.base.parameters()))
    merged = table.query("method == 'average' and tenants == 3")
    assert (merged["total_bytes"] == one_model).all()
    separate = table.query("method == 'separate' and tenants == 3")
    assert (separate["total_bytes"] == 3 * one_model).all()
    # Nothing shared: the consolidated model scores exactly what each tenant's own model scores.
    nothing = table.query("method == 'consolidated' and tenants == 3 and shared_fraction == 0")
    assert list(nothing["quality"]) == list(separate["quality"])
    assert nothing["total_bytes"].iloc[0] > 3 * one_model - 1000  # buffers and index tables only
    every = table.query("method == 'consolidated' and tenants == 3 and shared_fraction == 1")
    assert (every["n_shared"] == 8).all() and every["total_bytes"].iloc[0] < nothing["total_bytes"].iloc[0]
    own = perplexity(mixtral_zoo.variants["b"], mixtral_zoo.heldout_ids("b"), 16, 3)
    assert separate.set_index("tenant")["quality"]["b"] == pytest.approx(own, rel=1e-12)


def test_results_file_resumes_and_skips_finished_configs(mixtral_zoo, tmp_path, monkeypatch):
    path = tmp_path / "out" / "results.csv"
    first = compare_methods(mixtral_zoo, tenants=(2,), budgets=(1.0,), methods=("separate", "average"),
                            results=path, progress=False)
    on_disk = pd.read_csv(path)
    assert len(on_disk) == len(first) == 4
    from moelab import compare

    calls = []
    original = compare._separate

    def counting(*args):
        calls.append(args[1])
        return original(*args)

    monkeypatch.setitem(compare._SERVING, "separate", compare.ServingMethod("separate", False, counting))
    again = compare_methods(mixtral_zoo, tenants=(2, 3), budgets=(1.0,), methods=("separate", "average"),
                            results=path, progress=False)
    assert calls == [["a", "b", "c"]]  # N=2 was finished and skipped
    assert len(pd.read_csv(path)) == len(again) == 4 + 6
    pd.testing.assert_frame_equal(again.iloc[:4].reset_index(drop=True), first, check_dtype=False)
    assert not list(path.parent.glob(".*.tmp"))


def test_owner_policies_run_separately(mixtral_zoo):
    table = compare_methods(mixtral_zoo, tenants=(2,), budgets=(1.0,), methods=("consolidated", "average"),
                            owner=("round_robin", "mean"), progress=False)
    assert list(dict.fromkeys(table["config"])) == [
        "consolidated|N=2|shared=1|owner=round_robin", "consolidated|N=2|shared=1|owner=mean", "average|N=2",
    ]
    assert list(table["owner"]) == ["round_robin"] * 2 + ["mean"] * 2 + ["", ""]
    by_owner = table.groupby("owner", sort=False)["quality"].mean()
    assert by_owner["round_robin"] != by_owner["mean"]


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
        compare_methods(mixtral_zoo, tenants=(2,), methods=("separate",), results=bad, progress=False)


def test_exact_match_on_a_seq2seq_zoo(tiny_model, tmp_path):
    from moelab.zoo._tokenizer import train_tokenizer

    texts = [f"add: {i} + {j} {i + j}" for i in range(20) for j in range(5)]
    tokenizer = train_tokenizer(texts, 300, style="seq2seq")
    base = tiny_model("switch_transformers", 0, vocab_size=len(tokenizer),
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id)
    variants = {name: perturbed(base, i + 1) for i, name in enumerate(("add", "sort"))}
    examples = {t: [(f"{t}: 1 2", "3"), (f"{t}: 4 5", "9")] for t in variants}
    zoo = StandInZoo(base, variants, tmp_path, "exact_match", tokenizer=tokenizer, examples=examples)
    table = compare_methods(zoo, tenants=(2,), budgets=(0.0,), methods=("separate", "consolidated"),
                            progress=False)
    assert set(table["metric"]) == {"exact_match"}
    assert table["quality"].between(0, 1).all()
    sep = table.query("method == 'separate'")["quality"].to_numpy()
    con = table.query("method == 'consolidated'")["quality"].to_numpy()
    assert np.array_equal(sep, con)
    rouge = compare_methods(zoo, tenants=(2,), methods=("separate",), quality="rouge1", progress=False)
    assert set(rouge["metric"]) == {"rouge1"}


def synthetic(metric: str, values: dict) -> pd.DataFrame:
    rows = []
    for (method, fraction, *owner), per_n in values.items():
        for n, q in per_n.items():
            for i in range(n):
                rows.append({
                    "config": f"{method}|{n}|{fraction}|{owner}", "method": method, "tenants": n,
                    "tenant_set": "x", "shared_fraction": fraction,
                    "owner": owner[0] if owner else ("" if pd.isna(fraction) else "round_robin"),
                    "n_shared": 0,
                    "total_bytes": 1000 * n, "tenant": f"t{i}", "metric": metric, "quality": q,
                })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def test_claims_table_for_perplexity_and_accuracy():
    ppl = synthetic("perplexity", {
        ("separate", np.nan): {2: 10.0, 3: 10.0},
        ("consolidated", 1.0): {2: 11.0, 3: 13.0},
        ("consolidated", 0.5): {2: 10.4, 3: 10.6},
        ("average", np.nan): {2: 12.0, 3: 12.5},
    })
    claims = claims_table(ppl).set_index(["tenants", "claim"])["holds"]
    assert set(claims_table(ppl)["owner"]) == {"round_robin"}
    assert claims[(2, "all shared beats average")] and not claims[(3, "all shared beats average")]
    assert claims[(2, "half shared within 5% of separate")]
    ratios = claims_table(ppl).set_index(["tenants", "claim"])["ratio"]
    assert ratios[(3, "half shared within 5% of separate")] == pytest.approx(10.6 / 10.0)
    assert not claims[(3, "half shared within 5% of separate")]
    acc = synthetic("exact_match", {
        ("separate", np.nan): {2: 0.8},
        ("consolidated", 1.0): {2: 0.5},
        ("consolidated", 0.5): {2: 0.77},
        ("ties", np.nan): {2: 0.4},
    })
    claims = claims_table(acc).set_index("claim")["holds"]
    assert claims["all shared beats ties"] and claims["half shared within 5% of separate"]
    with pytest.raises(ValueError, match="needs 'consolidated' rows"):
        claims_table(acc[acc["method"] != "consolidated"])
    with pytest.raises(ValueError, match="needs 'consolidated' with 2 tenants at 50% shared"):
        claims_table(acc[acc["shared_fraction"] != 0.5])
    # Each owner policy is judged on its own.
    two = synthetic("exact_match", {
        ("separate", np.nan): {2: 0.8},
        ("consolidated", 1.0, "round_robin"): {2: 0.5},
        ("consolidated", 0.5, "round_robin"): {2: 0.70},
        ("consolidated", 1.0, "mean"): {2: 0.6},
        ("consolidated", 0.5, "mean"): {2: 0.78},
    })
    claims = claims_table(two).set_index(["owner", "claim"])["holds"]
    assert not claims[("round_robin", "half shared within 5% of separate")]
    assert claims[("mean", "half shared within 5% of separate")]


def test_summaries_and_figures():
    table = synthetic("perplexity", {
        ("separate", np.nan): {2: 10.0, 3: 10.0},
        ("consolidated", 1.0): {2: 11.0, 3: 13.0},
    })
    summary = summarize(table)
    assert list(summary["label"]) == [
        "separate", "separate", "consolidated (100% shared, round_robin)",
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
    assert perplexity_sliding_window(model, ids, 16, 16) == pytest.approx(perplexity(model, ids, 16), rel=1e-6)
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
