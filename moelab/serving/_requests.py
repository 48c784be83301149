"""Requests and the streams they arrive in: Poisson arrivals per tenant, and trace files."""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labcore.atomic import atomic_write_text
from labcore.checks import check_int, check_name, check_type

__all__ = ["Request", "check_requests", "load_trace", "poisson_arrivals", "save_trace"]

TRACE_COLUMNS = ("request_id", "tenant", "arrival_s", "max_new_tokens", "prompt_ids")


@dataclass(frozen=True)
class Request:
    """One generation request.

    Parameters
    ----------
    tenant : str
        Which model it is for.
    prompt_ids : tuple of int
        The prompt's token ids.
    max_new_tokens : int
        Tokens to generate (greedy), at least 1.
    arrival_s : float
        When it arrives, in seconds from the start of the run.
    request_id : int, default 0
        Its number in the stream (arrival order).

    Raises
    ------
    TypeError, ValueError
        On a field of the wrong type or out of range (an empty prompt, a negative arrival).
    """

    tenant: str
    prompt_ids: tuple[int, ...]
    max_new_tokens: int
    arrival_s: float
    request_id: int = 0

    def __post_init__(self) -> None:
        check_name(self.tenant, "Request.tenant")
        if isinstance(self.prompt_ids, (str, bytes)):
            raise TypeError("Request.prompt_ids must be token ids, got text; tokenize it first")
        object.__setattr__(self, "prompt_ids", tuple(int(t) for t in self.prompt_ids))
        if not self.prompt_ids:
            raise ValueError(f"request {self.request_id}: the prompt is empty")
        check_int(self.max_new_tokens, "Request.max_new_tokens", minimum=1)
        check_type(self.arrival_s, numbers.Real, "Request.arrival_s", expected="a number")
        if not 0 <= self.arrival_s < math.inf:
            raise ValueError(f"Request.arrival_s must be finite and >= 0, got {self.arrival_s}")
        check_int(self.request_id, "Request.request_id", minimum=0)


def check_requests(requests: Sequence[Request], what: str = "requests") -> None:
    """Raise ``TypeError`` unless ``requests`` is a sequence (not text) of :class:`Request`.

    Parameters
    ----------
    requests : sequence of Request
        A stream.
    what : str, default "requests"
        The argument's name in the message.
    """
    expected = "a list of Request (e.g. from poisson_arrivals or load_trace)"
    if isinstance(requests, (str, bytes)):
        raise TypeError(f"{what} must be {expected}, got str")
    check_type(requests, Sequence, what, expected=expected)
    for i, request in enumerate(requests):
        check_type(request, Request, f"{what}[{i}]", expected="a Request")


def check_path(path: str | os.PathLike[str], what: str = "path") -> None:
    """Raise ``TypeError`` unless ``path`` is a file path (a str or an ``os.PathLike``)."""
    check_type(path, (str, os.PathLike), what, expected="a file path (str or pathlib.Path)")


def _check_rates(rates: Mapping[str, float], duration_s: float) -> None:
    check_type(rates, Mapping, "rates", expected="a dict {tenant: requests per second}")
    check_type(duration_s, numbers.Real, "duration_s", expected="a number")
    for tenant, rate in rates.items():
        check_type(rate, numbers.Real, f"rates[{tenant!r}]", expected="a number")
    values = [duration_s, *rates.values()]
    if not all(0 <= v < math.inf for v in values):
        raise ValueError(
            f"rates and duration_s must be finite numbers >= 0, got {dict(rates)} and {duration_s}"
        )


def poisson_arrivals(
    rates: Mapping[str, float],
    duration_s: float,
    prompts: Mapping[str, Sequence[Sequence[int]]],
    max_new_tokens: int,
    seed: int = 0,
) -> list[Request]:
    """Independent Poisson arrivals per tenant, merged into one stream (the paper's workload).

    Parameters
    ----------
    rates : dict of str to float
        Requests per second of each tenant (0 for none).
    duration_s : float
        Arrivals fall in ``[0, duration_s)``.
    prompts : dict of str to list of token-id sequences
        Each tenant's prompt pool; every request draws one uniformly.
    max_new_tokens : int
        Tokens generated per request.
    seed : int, default 0
        Seeds the arrival times and the prompt draws.

    Returns
    -------
    list of Request
        Sorted by arrival; ``request_id`` is the position.

    Raises
    ------
    TypeError
        ``rates`` or ``prompts`` that is not a dict, or a rate or duration that is not a number.
    ValueError
        A negative rate or duration, or a tenant without prompts.

    Examples
    --------
    >>> reqs = poisson_arrivals({"a": 2.0, "b": 1.0}, 10.0, {"a": [[1, 2]], "b": [[3]]}, 4)
    >>> all(r.arrival_s < 10 for r in reqs), reqs[0].request_id
    (True, 0)
    """
    _check_rates(rates, duration_s)
    check_type(prompts, Mapping, "prompts", expected="a dict {tenant: list of token-id sequences}")
    rng = np.random.default_rng(seed)
    drawn: list[tuple[float, str, tuple[int, ...]]] = []
    for tenant, rate in rates.items():
        pool = list(prompts.get(tenant, []))
        if rate > 0 and not pool:
            raise ValueError(f"tenant {tenant!r} has a rate but no prompts to draw from")
        if pool and isinstance(pool[0], numbers.Integral):
            raise TypeError(
                f"prompts[{tenant!r}] must be a list of prompts (token-id sequences), got one "
                f"sequence of ints; wrap it: [ids]"
            )
        t = 0.0
        while rate > 0:
            t += rng.exponential(1.0 / rate)
            if t >= duration_s:
                break
            drawn.append((t, tenant, tuple(pool[rng.integers(len(pool))])))
    drawn.sort(key=lambda item: item[0])
    return [
        Request(tenant, prompt, max_new_tokens, arrival, request_id=i)
        for i, (arrival, tenant, prompt) in enumerate(drawn)
    ]


def save_trace(requests: Sequence[Request], path: str | os.PathLike[str]) -> Path:
    """Write requests to a CSV trace (atomically), to replay the same stream elsewhere.

    Columns: ``request_id, tenant, arrival_s, max_new_tokens, prompt_ids`` (ids separated by
    spaces).

    Returns
    -------
    Path
        The file.

    Raises
    ------
    TypeError
        ``requests`` that is not a list of Request, or ``path`` that is not a file path.
    """
    check_requests(requests)
    check_path(path)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TRACE_COLUMNS)
    for r in requests:
        prompt = " ".join(map(str, r.prompt_ids))
        writer.writerow(
            [r.request_id, r.tenant, repr(float(r.arrival_s)), r.max_new_tokens, prompt]
        )
    return atomic_write_text(path, out.getvalue())


def load_trace(path: str | os.PathLike[str]) -> list[Request]:
    """Read a CSV trace written by :func:`save_trace` (or by hand, with the same columns).

    Returns
    -------
    list of Request
        In arrival order.

    Raises
    ------
    TypeError
        ``path`` that is not a file path (an int would be read as an open file descriptor).
    ValueError
        Missing columns, or a row that is not a valid request (the message names the line).
    """
    check_path(path)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in TRACE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"trace {str(path)!r} lacks columns {missing}; expected {TRACE_COLUMNS}"
            )
        requests = []
        for line, row in enumerate(reader, start=2):
            try:
                requests.append(
                    Request(
                        row["tenant"],
                        tuple(int(t) for t in row["prompt_ids"].split()),
                        int(row["max_new_tokens"]),
                        float(row["arrival_s"]),
                        request_id=int(row["request_id"]),
                    )
                )
            except (TypeError, ValueError) as err:
                raise ValueError(f"trace {str(path)!r}, line {line}: {err}") from err
    return sorted(requests, key=lambda r: (r.arrival_s, r.request_id))
