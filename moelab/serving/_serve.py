"""Serve a request stream with an engine and a scheduler; every request gets an outcome.

The clock is the trace's: requests arrive at their ``arrival_s``; the engine's work (switches,
prefill, decode) takes the time it is measured to take. While the engine is idle the clock
jumps to the next arrival instead of sleeping, which changes no request's timing (an idle
engine starts a request the moment it arrives either way); ``realtime=True`` sleeps instead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from labcore.checks import check_int, check_type
from moelab.serving._engines import Engine
from moelab.serving._requests import Request, check_requests
from moelab.serving._schedulers import Scheduler, get_scheduler

__all__ = ["Outcome", "ServingRun", "serve"]


@dataclass(frozen=True)
class Outcome:
    """What happened to one request.

    Parameters
    ----------
    request : Request
        The request.
    status : {"done", "rejected", "failed"}
        ``"rejected"``: never admitted (the reason says why); ``"failed"``: admitted, but its
        generation raised (the reason is the error).
    reason : str
        Empty when done.
    start_s, first_token_s, finish_s : float
        When it left the queue, produced its first token, and finished (NaN if not reached).
    tokens : tuple of int
        Generated tokens.
    switch_s : float
        Seconds spent configuring the engine for it (0 if its tenant was active).
    reconfigured : bool
        Whether the engine changed tenants for it (the first configuration of a fresh engine
        is not a reconfiguration).
    """

    request: Request
    status: str
    reason: str = ""
    start_s: float = float("nan")
    first_token_s: float = float("nan")
    finish_s: float = float("nan")
    tokens: tuple[int, ...] = ()
    switch_s: float = 0.0
    reconfigured: bool = False


@dataclass
class ServingRun:
    """Outcomes of every request and the queue length over time.

    Attributes
    ----------
    engine : str
    scheduler : str
    outcomes : list of Outcome
        In request order.
    queue : list of (float, int)
        ``(time, queue length)`` after every admission and every start.
    """

    engine: str
    scheduler: str
    outcomes: list[Outcome]
    queue: list[tuple[float, int]] = field(default_factory=list)

    def requests(self) -> pd.DataFrame:
        """One row per request: tenant, status, reason, times and their differences.

        Returns
        -------
        pandas.DataFrame
            Columns ``request_id``, ``tenant``, ``status``, ``reason``, ``arrival_s``,
            ``start_s``, ``first_token_s``, ``finish_s``, ``queue_wait_s``, ``ttft_s`` (arrival
            to first token), ``tpot_s`` (time per output token after the first),
            ``turnaround_s`` (arrival to finish), ``new_tokens``, ``switch_s``.
        """
        rows = []
        for o in self.outcomes:
            r = o.request
            n = len(o.tokens)
            rows.append(
                {
                    "request_id": r.request_id,
                    "tenant": r.tenant,
                    "status": o.status,
                    "reason": o.reason,
                    "arrival_s": r.arrival_s,
                    "start_s": o.start_s,
                    "first_token_s": o.first_token_s,
                    "finish_s": o.finish_s,
                    "queue_wait_s": o.start_s - r.arrival_s,
                    "ttft_s": o.first_token_s - r.arrival_s,
                    "tpot_s": (o.finish_s - o.first_token_s) / (n - 1) if n > 1 else float("nan"),
                    "turnaround_s": o.finish_s - r.arrival_s,
                    "new_tokens": n,
                    "switch_s": o.switch_s,
                    "reconfigured": o.reconfigured,
                }
            )
        return pd.DataFrame(rows, columns=REQUEST_COLUMNS)

    def summary(self) -> pd.Series:
        """Per-run figures: counts by status, means, throughput and reconfigurations.

        Returns
        -------
        pandas.Series
            ``requests``, ``done``, ``rejected``, ``failed``, ``mean_turnaround_s``,
            ``p95_turnaround_s``, ``mean_ttft_s``, ``mean_queue_wait_s``, ``mean_tpot_s``,
            ``requests_per_min`` and ``tokens_per_s`` (done requests over the span from the
            first arrival to the last finish), ``reconfigurations``, ``switch_s``.
        """
        table = self.requests()
        done = table[table["status"] == "done"]
        span = (done["finish_s"].max() - table["arrival_s"].min()) if len(done) else float("nan")
        return pd.Series(
            {
                "engine": self.engine,
                "scheduler": self.scheduler,
                "requests": len(table),
                "done": len(done),
                "rejected": int((table["status"] == "rejected").sum()),
                "failed": int((table["status"] == "failed").sum()),
                "mean_turnaround_s": done["turnaround_s"].mean(),
                "p95_turnaround_s": done["turnaround_s"].quantile(0.95)
                if len(done)
                else float("nan"),
                "mean_ttft_s": done["ttft_s"].mean(),
                "mean_queue_wait_s": done["queue_wait_s"].mean(),
                "mean_tpot_s": done["tpot_s"].mean(),
                "requests_per_min": 60 * len(done) / span if span > 0 else float("nan"),
                "tokens_per_s": done["new_tokens"].sum() / span if span > 0 else float("nan"),
                "reconfigurations": int(table["reconfigured"].sum()),
                "switch_s": table["switch_s"].sum(),
            }
        )


REQUEST_COLUMNS = [
    "request_id", "tenant", "status", "reason", "arrival_s", "start_s", "first_token_s",
    "finish_s", "queue_wait_s", "ttft_s", "tpot_s", "turnaround_s", "new_tokens", "switch_s",
    "reconfigured",
]  # fmt: skip


def _rejection(request: Request, engine: Engine, queued: int, max_queue: int) -> str:
    if request.tenant not in engine.tenants:
        return f"unknown tenant {request.tenant!r}; this engine serves {', '.join(engine.tenants)}"
    vocab = getattr(engine, "vocab_size", 0)
    outside = [t for t in request.prompt_ids if t < 0 or (vocab and t >= vocab)]
    if outside:
        return (
            f"token id {outside[0]} is outside the model's vocabulary of {vocab} (0..{vocab - 1})"
        )
    length = len(request.prompt_ids) + request.max_new_tokens
    if length > engine.max_context:
        return (
            f"prompt ({len(request.prompt_ids)}) + max_new_tokens ({request.max_new_tokens}) = "
            f"{length} tokens exceeds the model's context of {engine.max_context}"
        )
    if queued >= max_queue:
        return f"queue full ({max_queue} request{'s' if max_queue != 1 else ''} waiting)"
    return ""


def serve(
    engine: Engine,
    requests: Sequence[Request],
    scheduler: str | Scheduler = "fifo",
    *,
    max_queue: int = 256,
    realtime: bool = False,
) -> ServingRun:
    """Serve a request stream, one request at a time, and record what happened to each.

    Parameters
    ----------
    engine : Engine
        A :class:`ConsolidatedEngine`, :class:`SingleEngine` or :class:`SwapEngine`.
    requests : sequence of Request
        The stream (e.g. :func:`poisson_arrivals` or :func:`load_trace`).
    scheduler : str or Scheduler, default "fifo"
        See :func:`available_schedulers`.
    max_queue : int, default 256
        Requests that may wait; one arriving to a full queue is rejected. A request that
        arrives at an idle engine starts at once and does not count as waiting, also when
        others arrive at the same instant.
    realtime : bool, default False
        Sleep through idle gaps instead of jumping the clock to the next arrival.

    Returns
    -------
    ServingRun
        One :class:`Outcome` per request, in request order: done, rejected (unknown tenant,
        too long for the context, queue full) or failed (its generation raised; the engine
        goes on with the next request).

    Raises
    ------
    TypeError
        An engine that is not an :class:`Engine`, requests that are not a list of
        :class:`Request`, or a scheduler that is neither a name nor a :class:`Scheduler`.
    ValueError
        ``max_queue < 1`` or an unknown scheduler name.
    """
    check_type(engine, Engine, "engine", expected="an Engine (e.g. ConsolidatedEngine)")
    check_requests(requests)
    check_int(max_queue, "max_queue", minimum=1)
    policy = get_scheduler(scheduler)
    order = sorted(
        range(len(requests)), key=lambda i: (requests[i].arrival_s, requests[i].request_id)
    )
    outcomes: list[Outcome | None] = [None] * len(requests)
    queue: list[int] = []
    timeline: list[tuple[float, int]] = []
    clock, nxt = 0.0, 0

    def admit(until: float) -> None:
        # The engine is idle from ``until`` on: one queued request leaves the queue now, so
        # arrivals at that instant have one more place than those that came while it was busy.
        nonlocal nxt
        while nxt < len(order) and requests[order[nxt]].arrival_s <= until:
            index = order[nxt]
            nxt += 1
            starting = int(requests[index].arrival_s >= until)
            reason = _rejection(requests[index], engine, len(queue) - starting, max_queue)
            if reason:
                outcomes[index] = Outcome(requests[index], "rejected", reason)
            else:
                queue.append(index)
            timeline.append((requests[index].arrival_s, len(queue)))

    while nxt < len(order) or queue:
        admit(clock)
        if not queue:
            if nxt >= len(order):
                break  # the last arrivals were rejected
            arrival = requests[order[nxt]].arrival_s
            if realtime and arrival > clock:
                time.sleep(arrival - clock)
            clock = max(clock, arrival)
            continue
        index = queue.pop(policy.pick([requests[i] for i in queue], engine.active))
        request, start = requests[index], clock
        timeline.append((start, len(queue)))
        began, before, switch_s = time.perf_counter(), engine.active, 0.0
        reconfigured = before is not None and before != request.tenant
        try:
            switch_s = engine.switch(request.tenant)
            result = engine.generate(request.prompt_ids, request.max_new_tokens)
        except Exception as err:  # a failing request is answered, and the engine goes on
            clock = start + time.perf_counter() - began
            reason = f"{type(err).__name__}: {err}"
            outcomes[index] = Outcome(
                request,
                "failed",
                reason,
                start_s=start,
                finish_s=clock,
                switch_s=switch_s,
                reconfigured=reconfigured,
            )
            continue
        clock = start + switch_s + result.total_s
        outcomes[index] = Outcome(
            request,
            "done",
            start_s=start,
            first_token_s=start + switch_s + result.first_token_s,
            finish_s=clock,
            tokens=result.tokens,
            switch_s=switch_s,
            reconfigured=reconfigured,
        )
    return ServingRun(engine.name, policy.name, [o for o in outcomes if o is not None], timeline)
