"""Serving: request streams, decoding, engines, schedulers, and an outcome for every request."""

from __future__ import annotations

import math

import pytest
import torch
from test_reconfigure import make_tenants
from torch import nn

from moelab.consolidation import plan_consolidation
from moelab.reconfigure import ConsolidatedMoE
from moelab.serving import (
    ConsolidatedEngine,
    CostModel,
    Engine,
    Generation,
    Request,
    SimulatedEngine,
    SingleEngine,
    StaticDecoder,
    SwapEngine,
    TenantGroupingScheduler,
    available_schedulers,
    calibrate,
    get_mig_profile,
    get_scheduler,
    greedy_decode,
    load_trace,
    poisson_arrivals,
    save_trace,
    serve,
    serve_partitioned,
)


class TimedEngine(Engine):
    """Fixed service times, no model: switch 1 s, first token 2 s after start, 1 s per token."""

    name = "timed"

    def __init__(self, tenants=("a", "b"), context=64, fail_on=()):
        super().__init__(tenants, nn.Linear(1, 1))
        self.max_context, self.fail_on, self.switches = context, set(fail_on), 0

    def switch(self, tenant):
        if tenant == self.active:
            return 0.0
        self.active, self.switches = tenant, self.switches + 1
        return 1.0

    def generate(self, prompt_ids, max_new_tokens):
        if prompt_ids[0] in self.fail_on:
            raise RuntimeError("device lost")
        return Generation(tuple(range(max_new_tokens)), 2.0, 2.0 + (max_new_tokens - 1))


def req(tenant, arrival, i, prompt=(5,), new=3):
    return Request(tenant, prompt, new, arrival, request_id=i)


# ----------------------------------------------------------------------------- requests
def test_request_validates_its_fields():
    with pytest.raises(ValueError, match="the prompt is empty"):
        Request("a", (), 4, 0.0)
    with pytest.raises(TypeError, match="Request.max_new_tokens must be an int"):
        Request("a", (1,), 4.0, 0.0)
    with pytest.raises(ValueError, match="Request.arrival_s must be finite and >= 0"):
        Request("a", (1,), 4, -1.0)


def test_poisson_arrivals_are_seeded_and_have_their_rates():
    prompts = {"a": [[1, 2], [3]], "b": [[4]]}
    stream = poisson_arrivals({"a": 5.0, "b": 1.0}, 400.0, prompts, 8, seed=3)
    assert stream == poisson_arrivals({"a": 5.0, "b": 1.0}, 400.0, prompts, 8, seed=3)
    assert [r.request_id for r in stream] == list(range(len(stream)))
    assert all(x.arrival_s <= y.arrival_s for x, y in zip(stream, stream[1:]))
    counts = {t: sum(r.tenant == t for r in stream) for t in prompts}
    # Poisson counts: 2000 +- 45 and 400 +- 20 (one standard deviation).
    assert abs(counts["a"] - 2000) < 4 * 45 and abs(counts["b"] - 400) < 4 * 20
    with pytest.raises(ValueError, match="tenant 'c' has a rate but no prompts"):
        poisson_arrivals({"c": 1.0}, 10.0, prompts, 8)


def test_trace_round_trip_and_bad_rows(tmp_path):
    stream = poisson_arrivals({"a": 2.0, "b": 1.0}, 20.0, {"a": [[1, 2]], "b": [[7, 8, 9]]}, 4)
    path = save_trace(stream, tmp_path / "trace.csv")
    assert load_trace(path) == stream
    bad = tmp_path / "bad.csv"
    bad.write_text("request_id,tenant,arrival_s,max_new_tokens,prompt_ids\n0,a,0.5,0,1 2\n")
    with pytest.raises(ValueError, match="bad.csv', line 2: Request.max_new_tokens must be >= 1"):
        load_trace(bad)
    (tmp_path / "cols.csv").write_text("tenant,arrival_s\na,0\n")
    with pytest.raises(ValueError, match="lacks columns"):
        load_trace(tmp_path / "cols.csv")


# ------------------------------------------------------------------------------ decoding
def test_greedy_decode_equals_generate(tiny_model):
    model = tiny_model("mixtral", 2)
    prompt = [3, 9, 4, 1]
    out = greedy_decode(model, prompt, 7)
    with torch.no_grad():
        expected = model.generate(torch.tensor([prompt]), max_new_tokens=7, do_sample=False)
    assert list(out.tokens) == expected[0, len(prompt) :].tolist()
    assert 0 <= out.first_token_s <= out.total_s
    with pytest.raises(ValueError, match="is an encoder-decoder"):
        greedy_decode(tiny_model("switch_transformers", 0), prompt, 2)


def test_greedy_decode_checks_its_arguments(tiny_model):
    model = tiny_model("mixtral", 2)
    with pytest.raises(ValueError, match="prompt_ids is empty; pass at least one token id"):
        greedy_decode(model, [], 4)
    with pytest.raises(ValueError, match="token id 999, outside the model's vocabulary of 64"):
        greedy_decode(model, [3, 999], 4)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1, got -1"):
        greedy_decode(model, [3], -1)
    with pytest.raises(TypeError, match="max_new_tokens must be an int, got float"):
        greedy_decode(model, [3], 2.0)
    with pytest.raises(TypeError, match="got text; tokenize it first"):
        greedy_decode(model, "hello", 4)
    with pytest.raises(TypeError, match="each of prompt_ids must be an int, got float"):
        greedy_decode(model, [3.0], 4)
    with pytest.raises(TypeError, match="model must be a torch module"):
        greedy_decode("model", [3], 4)


# ------------------------------------------------------------------------------- engines
def test_engines_generate_what_each_tenant_generates(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    consolidated = ConsolidatedEngine(ConsolidatedMoE.from_plan(plan_consolidation(tenants, 1.0)))
    swap = SwapEngine(tenants)
    stream = [
        req(t, 0.1 * i, i, prompt=(3, 1 + i), new=5) for i, t in enumerate("t0 t1 t1 t0".split())
    ]
    for engine in (consolidated, swap):
        run = serve(engine, stream)
        for outcome in run.outcomes:
            own = greedy_decode(tenants[outcome.request.tenant], outcome.request.prompt_ids, 5)
            assert outcome.status == "done" and outcome.tokens == own.tokens, engine.name
        assert run.summary()["reconfigurations"] == 2  # t0 | t1 t1 | t0: two changes
    assert swap.switched_bytes == 3 * sum(
        p.numel() * p.element_size() for p in tenants["t0"].parameters()
    )
    single = serve(SingleEngine(tenants["t0"], ["t0", "t1"]), stream)
    assert single.summary()["reconfigurations"] == 0
    assert all(
        o.tokens == greedy_decode(tenants["t0"], o.request.prompt_ids, 5).tokens
        for o in single.outcomes
    )


def test_a_partition_slice_with_host_tier_experts_serves_with_a_static_cache(tiny_model):
    # One tenant alone under a device budget that leaves most experts in host memory, as in a
    # MIG slice too small for the model: it decodes without graphs and copies experts on use.
    tenant = make_tenants(tiny_model, "mixtral", 1)
    probe = plan_consolidation(tenant, 10**12, unit="bytes", placement="offload")
    config = tenant["t0"].config
    rows = config.num_experts_per_tok * config.num_hidden_layers  # one token's experts
    budget = probe.memory.device_non_expert_bytes + (rows + 2) * probe.memory.slot_bytes
    cmoe = ConsolidatedMoE.from_plan(
        plan_consolidation(tenant, budget, unit="bytes", placement="offload"), device="cpu"
    )
    assert cmoe.copies_experts_on_use and probe.memory.host_bytes == 0
    engine = ConsolidatedEngine(cmoe, static_cache=16)
    assert engine.decoder is not None and not engine.decoder.use_graphs
    run = serve(engine, [req("t0", 0.0, 0, prompt=(3, 7, 1), new=6)])
    assert run.outcomes[0].tokens == greedy_decode(tenant["t0"], (3, 7, 1), 6).tokens
    assert cmoe.copied_expert_bytes() > 0
    with pytest.raises(ValueError, match="cannot be compiled whole; pass compile=False"):
        ConsolidatedEngine(cmoe, static_cache=16, compile=True)


# ------------------------------------------------------------------------------- serving
def test_clock_and_metrics_follow_the_trace():
    # a@0 runs 0..(1 switch + 2 + 2) = 5; b@1 waits, then 5..10; a@20 arrives to an idle engine.
    run = serve(TimedEngine(), [req("a", 0.0, 0), req("b", 1.0, 1), req("a", 20.0, 2)])
    table = run.requests().set_index("request_id")
    assert table["start_s"].tolist() == [0.0, 5.0, 20.0]
    assert table["first_token_s"].tolist() == [3.0, 8.0, 23.0]
    assert table["finish_s"].tolist() == [5.0, 10.0, 25.0]
    assert table["queue_wait_s"].tolist() == [0.0, 4.0, 0.0]
    assert table["turnaround_s"].tolist() == [5.0, 9.0, 5.0]
    assert table["tpot_s"].tolist() == [1.0, 1.0, 1.0]
    summary = run.summary()
    assert summary["done"] == 3 and summary["reconfigurations"] == 2  # a -> b -> a
    assert math.isclose(summary["tokens_per_s"], 9 / 25)


def test_every_request_is_answered_with_a_reason():
    stream = [
        req("a", 0.0, 0),
        req("nobody", 0.1, 1),
        req("a", 0.2, 2, new=100),  # 1 + 100 tokens > context 64
        req("b", 0.3, 3, prompt=(13,)),  # its generation raises
        req("a", 0.4, 4),
        req("a", 0.5, 5),
        req("a", 0.6, 6),  # requests 3, 4, 5 fill the queue (max 3) while 0 runs
    ]
    run = serve(TimedEngine(fail_on={13}), stream, max_queue=3)
    by_id = {o.request.request_id: o for o in run.outcomes}
    assert [o.request.request_id for o in run.outcomes] == list(range(7))
    assert by_id[1].status == "rejected" and "unknown tenant 'nobody'" in by_id[1].reason
    assert by_id[2].status == "rejected" and "exceeds the model's context of 64" in by_id[2].reason
    assert by_id[3].status == "failed" and by_id[3].reason == "RuntimeError: device lost"
    assert by_id[6].status == "rejected" and by_id[6].reason == "queue full (3 requests waiting)"
    assert [by_id[i].status for i in (0, 4, 5)] == ["done"] * 3


def test_a_request_starting_at_an_idle_engine_is_not_counted_as_waiting():
    # Three arrive at once at an idle engine with room for one waiting request: the first
    # starts, the second waits, the third finds the queue full. One arriving later, while the
    # engine is busy and the second waits, is rejected as well.
    stream = [req("a", 0.0, i) for i in range(3)] + [req("a", 1.0, 3)]
    run = serve(TimedEngine(), stream, max_queue=1)
    assert [o.status for o in run.outcomes] == ["done", "done", "rejected", "rejected"]
    assert run.outcomes[2].reason == "queue full (1 request waiting)"
    table = run.requests()
    assert table["start_s"].tolist()[:2] == [0.0, 5.0]


def test_tenant_grouping_saves_switches_within_its_fairness_limit():
    stream = [req("ab"[i % 2], 0.01 * i, i) for i in range(12)]  # a b a b ... all queued at once
    fifo = serve(TimedEngine(), stream, "fifo")
    grouped = serve(TimedEngine(), stream, TenantGroupingScheduler(fairness_limit=2))
    assert fifo.summary()["reconfigurations"] == 11  # every request after the first
    assert grouped.summary()["reconfigurations"] < fifo.summary()["reconfigurations"]
    order = [o.request.request_id for o in sorted(grouped.outcomes, key=lambda o: o.start_s)]
    # No request is overtaken by more than 2 later ones.
    assert all(sum(later > rid for later in order[: order.index(rid)]) <= 2 for rid in order)
    assert available_schedulers() == ("fifo", "tenant_grouping")
    with pytest.raises(ValueError, match="unknown scheduler 'lifo'"):
        serve(TimedEngine(), stream, "lifo")


def test_partitioned_slices_run_side_by_side_at_their_share_of_the_device():
    profile = get_mig_profile("3g.71gb")
    assert (profile.prefill_slowdown, profile.decode_slowdown) == (7 / 3, 2.0)
    stream = [req("a", 0.0, 0), req("b", 0.0, 1), req("a", 1.0, 2), req("x", 2.0, 3)]
    run = serve_partitioned({"a": TimedEngine(("a",)), "b": TimedEngine(("b",))}, stream)
    table = run.requests().set_index("request_id")
    # On its slice: switch 1 s x 2 (a copy: bandwidth), first token 2 s x 7/3, 2 more tokens
    # 2 s x 2: 2 + 14/3 + 4 = 32/3 s for a first request, 14/3 + 4 = 26/3 s once configured.
    assert table.loc[[0, 1], "start_s"].tolist() == [0.0, 0.0]  # side by side
    assert math.isclose(table.loc[0, "finish_s"], 32 / 3)
    assert math.isclose(table.loc[2, "start_s"], 32 / 3)  # queued behind 0 on slice a
    assert math.isclose(table.loc[2, "finish_s"], 32 / 3 + 26 / 3)
    assert (
        table.loc[3, "status"] == "rejected" and "the slices serve a, b" in table.loc[3, "reason"]
    )
    assert run.engine.startswith("partitioned (2 x 3g.71gb)")
    with pytest.raises(ValueError, match="an H200 holds at most 2 of them"):
        serve_partitioned({t: TimedEngine((t,)) for t in "abc"}, stream)


def test_a_calibrated_simulation_reproduces_a_deterministic_engine():
    cost = calibrate(TimedEngine(), [(1, 2), (1, 2, 3, 4, 5)], new_tokens=4)
    assert (cost.prefill_s, cost.prefill_per_token_s, cost.decode_per_token_s, cost.switch_s) == (
        pytest.approx(2.0),
        pytest.approx(0.0, abs=1e-12),
        1.0,
        1.0,
    )
    stream = poisson_arrivals({"a": 0.3, "b": 0.2}, 60.0, {"a": [[5, 1]], "b": [[5]]}, 3, seed=1)
    real = serve(TimedEngine(), stream, "tenant_grouping").requests()
    simulated = serve(SimulatedEngine(cost, ("a", "b"), 64), stream, "tenant_grouping").requests()
    for column in ("start_s", "first_token_s", "finish_s", "switch_s"):
        assert simulated[column].tolist() == pytest.approx(real[column].tolist()), column
    # An engine built configured for its first tenant pays no switch for that tenant's request.
    started = serve(SimulatedEngine(cost, ("a", "b"), 64, active=stream[0].tenant), stream)
    assert started.outcomes[0].switch_s == 0 and not started.outcomes[0].reconfigured
    with pytest.raises(ValueError, match="active 'c' is not one of the tenants"):
        SimulatedEngine(cost, ("a", "b"), 64, active="c")
    with pytest.raises(TypeError, match="got the string 'ab'"):
        SimulatedEngine(cost, "ab", 64)
    # A single model modelled: no switch is paid and none counts as a reconfiguration.
    single = serve(SimulatedEngine(cost, ("a", "b"), 64, reconfigures=False), stream)
    assert single.summary()["reconfigurations"] == 0 and single.summary()["switch_s"] == 0
    assert single.outcomes[0].finish_s - single.outcomes[0].start_s == pytest.approx(2 + 2)
    with pytest.raises(ValueError, match="prompts of two lengths at least"):
        calibrate(TimedEngine(), [(1, 2), (3, 4)])


def test_static_decoder_decodes_a_batch_as_each_prompt_alone(tiny_model):
    model = tiny_model("mixtral", 6)
    prompts = [[3, 9, 4, 1], [7, 2, 2, 8], [5, 5, 6, 1]]
    decoder = StaticDecoder(model, max_cache_len=20, batch_size=3)
    for _ in range(2):  # the cache and the token buffer are reset in between
        out = decoder.generate_batch(prompts, 8)
        assert [o.tokens for o in out] == [greedy_decode(model, p, 8).tokens for p in prompts]
    assert 0 <= out[0].first_token_s <= out[0].total_s
    with pytest.raises(ValueError, match="expected 3 prompts of one length, got 2 of lengths"):
        decoder.generate_batch(prompts[:2], 4)
    with pytest.raises(ValueError, match=r"of lengths \[2, 4\]"):
        decoder.generate_batch([[1, 2], *prompts[1:]], 4)
    with pytest.raises(ValueError, match="decodes batches of 3; call generate_batch"):
        decoder.generate(prompts[0], 4)
    for bad in (0, -5):
        with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
            decoder.generate_batch(prompts, bad)


def test_static_decoder_generates_what_greedy_decoding_does(tiny_model):
    model = tiny_model("mixtral", 4)
    decoder = StaticDecoder(model, max_cache_len=32)
    assert not decoder.use_graphs  # CPU: the same step, run eagerly
    for prompt in ([3, 9, 4, 1], [7, 2], [5, 5, 5, 5, 5, 5]):  # the cache is reset in between
        assert decoder.generate(prompt, 9).tokens == greedy_decode(model, prompt, 9).tokens
    with pytest.raises(ValueError, match="do not fit the static cache of 32"):
        decoder.generate([1] * 30, 5)


def test_engines_with_a_static_cache_generate_the_same_tokens(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    plan = plan_consolidation(tenants, 0.75)
    stream = [
        req(t, 0.1 * i, i, prompt=(3, 1 + i), new=6) for i, t in enumerate("t0 t1 t0".split())
    ]
    for mode in ("swap", "copy"):
        eager = ConsolidatedEngine(ConsolidatedMoE.from_plan(plan, device="cpu", mode=mode))
        static = ConsolidatedEngine(
            ConsolidatedMoE.from_plan(plan, device="cpu", mode=mode), static_cache=16
        )
        assert [o.tokens for o in serve(static, stream).outcomes] == [
            o.tokens for o in serve(eager, stream).outcomes
        ]
        assert static.max_context == 16
        assert static.warmup() >= 0 and static.active == "t0"
    swap = SwapEngine(tenants, static_cache=16)
    assert [o.tokens for o in serve(swap, stream).outcomes] == [
        greedy_decode(tenants[r.tenant], r.prompt_ids, 6).tokens for r in stream
    ]


def test_sweep_and_figures_of_runs():
    from moelab.serving import sweep_loads
    from moelab.viz import qos_figure, serving_timeline

    streams = {
        rate: poisson_arrivals({"a": rate / 2, "b": rate / 2}, 30.0, {"a": [[5]], "b": [[5]]}, 3)
        for rate in (0.05, 0.2)
    }
    table = sweep_loads(
        {
            "timed": lambda s: serve(TimedEngine(), s),
            "partitioned": lambda s: serve_partitioned(
                {"a": TimedEngine(("a",)), "b": TimedEngine(("b",))}, s
            ),
        },
        streams,
        progress=False,
    )
    assert list(table[["engine", "rate_per_s"]].itertuples(index=False, name=None)) == [
        ("timed", 0.05),
        ("partitioned", 0.05),
        ("timed", 0.2),
        ("partitioned", 0.2),
    ]
    assert (table["done"] == [len(streams[r]) for r in table["rate_per_s"]]).all()
    fig = qos_figure(table)
    assert qos_figure(table, log=True).layout.xaxis.type == "log" and fig.layout.xaxis.type != "log"
    assert [t.name for t in fig.data] == ["timed", "partitioned"]
    with pytest.raises(ValueError, match="qos_figure needs columns"):
        qos_figure(table, y="nope")
    timeline = serving_timeline(serve(TimedEngine(), streams[0.2]))
    assert {t.name for t in timeline.data} >= {"a served", "b waiting", "queue", "switch to a"}


def test_review_cases_are_answered_not_crashed(tiny_model):
    # The last arrival rejected, an empty stream, a wrong token id: outcomes, not exceptions.
    run = serve(TimedEngine(), [req("a", 0.0, 0), req("nobody", 0.5, 1)])
    assert [o.status for o in run.outcomes] == ["done", "rejected"]
    assert serve(TimedEngine(), [req("zz", 0.0, 0)]).outcomes[0].status == "rejected"
    empty = serve(TimedEngine(), [])
    assert empty.requests().empty and empty.summary()["requests"] == 0
    model = tiny_model("mixtral", 1)
    engine = SingleEngine(model, ["a"])
    outside = serve(engine, [req("a", 0.0, 0, prompt=(5, 99999))]).outcomes[0]
    assert outside.status == "rejected" and "outside the model's vocabulary of 64" in outside.reason
    with pytest.raises(ValueError, match="rates and duration_s must be finite"):
        poisson_arrivals({"a": 1.0}, float("nan"), {"a": [[1]]}, 4)
    with pytest.raises(TypeError, match="wrap it"):
        poisson_arrivals({"a": 1.0}, 2.0, {"a": [1, 2, 3]}, 4)
    with pytest.raises(TypeError, match="tokenize it first"):
        Request("a", "hello", 4, 0.0)
    with pytest.raises(TypeError, match="got the string 'a'"):
        SingleEngine(model, "a")
    with pytest.raises(ValueError, match="is an encoder-decoder"):
        SingleEngine(tiny_model("switch_transformers", 0), ["a"])


def test_a_consolidated_engine_follows_whoever_activated_its_model(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    cmoe = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 1.0), device="cpu")
    engine = ConsolidatedEngine(cmoe)
    assert engine.active == "t0"  # bound at build: the first t0 request needs no switch
    cmoe.activate("t1")
    run = serve(engine, [req("t0", 0.0, 0, prompt=(3, 4), new=4)])
    assert run.outcomes[0].tokens == greedy_decode(tenants["t0"], (3, 4), 4).tokens
    assert run.summary()["reconfigurations"] == 1


# ------------------------------------------------------------------------ argument checks
def test_request_streams_and_traces_check_their_arguments(tmp_path):
    with pytest.raises(TypeError, match=r"rates must be a dict \{tenant: requests per second\}"):
        poisson_arrivals([1.0], 10.0, {"a": [[1]]}, 4)
    with pytest.raises(TypeError, match=r"rates\['a'\] must be a number, got str"):
        poisson_arrivals({"a": "1"}, 10.0, {"a": [[1]]}, 4)
    with pytest.raises(TypeError, match="duration_s must be a number, got str"):
        poisson_arrivals({"a": 1.0}, "10", {"a": [[1]]}, 4)
    with pytest.raises(TypeError, match="prompts must be a dict"):
        poisson_arrivals({"a": 1.0}, 10.0, [[1]], 4)
    with pytest.raises(ValueError, match="must be finite numbers >= 0"):
        poisson_arrivals({"a": -1.0}, 10.0, {"a": [[1]]}, 4)
    with pytest.raises(TypeError, match="requests must be a list of Request"):
        save_trace("r", tmp_path / "t.csv")
    with pytest.raises(TypeError, match=r"requests\[0\] must be a Request, got int"):
        save_trace([1], tmp_path / "t.csv")
    with pytest.raises(TypeError, match="path must be a file path"):
        save_trace([], 5)
    with pytest.raises(TypeError, match="path must be a file path"):
        load_trace(5)
    assert not list(tmp_path.iterdir())


def test_serve_and_schedulers_check_their_arguments():
    with pytest.raises(TypeError, match="requests must be a list of Request"):
        serve(TimedEngine(), "reqs")
    with pytest.raises(TypeError, match="engine must be an Engine"):
        serve("eng", [])
    with pytest.raises(TypeError, match="scheduler must be a Scheduler or one of the names fifo"):
        get_scheduler(3)
    with pytest.raises(ValueError, match="unknown scheduler 'lifo'; known schedulers: fifo"):
        get_scheduler("lifo")
    with pytest.raises(ValueError, match="fairness_limit must be >= 0, got -1"):
        TenantGroupingScheduler(-1)
    with pytest.raises(TypeError, match="fairness_limit must be an int, got float"):
        TenantGroupingScheduler(1.5)
    # A limit of 0 is documented: nothing overtakes the oldest request (first come first served),
    # while a limit of 1 lets the active tenant's request run before the other tenant's.
    stream = [Request("b", (1,), 1, 0.0, 0), Request("a", (1,), 1, 0.0, 1)]
    stream.append(Request("b", (1,), 1, 0.0, 2))
    for limit, order in [(0, [0, 1, 2]), (1, [0, 2, 1])]:
        run = serve(TimedEngine(), stream, TenantGroupingScheduler(limit))
        started = sorted(run.outcomes, key=lambda o: o.start_s)
        assert [o.request.request_id for o in started] == order, limit


def test_cost_models_refuse_times_that_are_not_seconds():
    with pytest.raises(TypeError, match="prefill_s must be a number of seconds, got 'a'"):
        CostModel("a", 0.0, 0.01, 0.0)
    with pytest.raises(ValueError, match="switch_s must be a finite, non-negative number"):
        CostModel(0.1, 0.0, 0.01, -1)
    assert CostModel(0.1, 0.0, 0.01, 0).generation(4, 3) == pytest.approx((0.1, 0.12))
